import Foundation
import SweepKit
import Wire

/// What each engine's `describe` printed, kept on disk so a worker says hello with its engines
/// at once after the first start (describing the PyTorch engine imports torch: up to a minute
/// on a loaded host).
///
/// An entry is keyed on the engine's command line (program, arguments, extra environment) and
/// on the size and modification time of the files that make the engine: the program itself
/// (and, for a Python in a virtual environment, its `site-packages` folders, which change when
/// a package is installed or removed), and the engine's own code — every file of the package
/// for `-m PACKAGE` (found on PYTHONPATH), or the files beside the script for `python SCRIPT`.
/// When any of them changes, the key does, and the engine is described afresh. A command whose
/// code cannot be located (`-m` of a package that is not on PYTHONPATH) is never cached.
struct DescribeCache: Sendable {
    let directory: String

    /// The entry's key for this command, or nil when the command cannot be cached.
    static func key(for command: EngineCommand, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String?
    {
        var parts = ["sparsegrid-describe-v1"]
        let program = resolve(command.executable, environment: environment)
        parts.append("program \(program)")
        parts.append("arguments " + command.arguments.joined(separator: "\u{1F}"))
        for (k, v) in command.environment.sorted(by: { $0.key < $1.key }) { parts.append("env \(k)=\(v)") }
        // What `describe` reports about devices depends on these.
        for name in ["CUDA_VISIBLE_DEVICES"] { parts.append("inherited \(name)=\(environment[name] ?? "")") }
        guard let programStamp = stamp(program) else { return nil }
        parts.append("program-file \(programStamp)")
        for dir in sitePackages(ofProgram: program) { parts.append("site-packages \(dir) \(stamp(dir) ?? "-")") }

        let args = command.arguments
        if let m = args.firstIndex(of: "-m"), m + 1 < args.count {
            let module = args[m + 1].split(separator: ".").first.map(String.init) ?? args[m + 1]
            let searchPath = command.environment["PYTHONPATH"] ?? environment["PYTHONPATH"] ?? ""
            var found: String? = nil
            for root in searchPath.split(separator: ":").map(String.init) where !root.isEmpty {
                for candidate in ["\(root)/\(module)", "\(root)/\(module).py"]
                where FileManager.default.fileExists(atPath: candidate) {
                    found = candidate
                    break
                }
                if found != nil { break }
            }
            guard let found, let code = tree(found) else { return nil }
            parts.append("module \(found) \(code)")
        } else if let script = args.first(where: { !$0.hasPrefix("-") }),
            FileManager.default.fileExists(atPath: script)
        {
            let path = URL(fileURLWithPath: script).standardizedFileURL
            guard let code = folder(path.deletingLastPathComponent().path) else { return nil }
            parts.append("script \(path.path) \(stamp(path.path) ?? "-") \(code)")
        }
        return ArtifactFiles.sha256(bytes: Array(parts.joined(separator: "\n").utf8))
    }

    /// The cached description of engine `name`, if there is one for this exact key.
    func load(name: String, key: String) -> JSONValue? {
        guard let data = FileManager.default.contents(atPath: path(name: name, key: key)),
            let entry = try? JSONValue.parse(String(decoding: data, as: UTF8.self)),
            entry["key"]?.stringValue == key, let described = entry["describe"], !described.isNull
        else { return nil }
        return described
    }

    /// Keeps a description (written whole, then renamed: a reader never sees half of one) and
    /// removes this engine's entries under other keys.
    func store(name: String, key: String, command: String, described: JSONValue, now: Double) {
        let fm = FileManager.default
        guard (try? fm.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return }
        let entry: JSONValue = [
            "key": .string(key), "engine": .string(name), "command": .string(command),
            "describedAt": .number(now), "describe": described,
        ]
        let target = path(name: name, key: key)
        let temporary = "\(target).\(getpid()).tmp"
        guard fm.createFile(atPath: temporary, contents: Data(entry.canonicalText.utf8)) else { return }
        if rename(temporary, target) != 0 {
            try? fm.removeItem(atPath: temporary)
            return
        }
        let prefix = "\(Self.fileName(name))."
        for file in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        where file.hasPrefix(prefix) && file.hasSuffix(".json") && "\(directory)/\(file)" != target {
            try? fm.removeItem(atPath: "\(directory)/\(file)")
        }
    }

    func path(name: String, key: String) -> String { "\(directory)/\(Self.fileName(name)).\(key.prefix(32)).json" }

    // MARK: - Fingerprints

    static func fileName(_ name: String) -> String {
        String(
            name.unicodeScalars.map { c -> Character in
                let ok =
                    ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "-"
                    || c == "_"
                return ok ? Character(c) : "_"
            })
    }

    /// "size mtime" of a file or folder (symbolic links followed); nil when it does not exist.
    static func stamp(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// A bare program name as PATH finds it; a path as it is.
    static func resolve(_ executable: String, environment: [String: String]) -> String {
        if executable.contains("/") { return URL(fileURLWithPath: executable).standardizedFileURL.path }
        for dir in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return executable
    }

    /// For `PREFIX/bin/pythonX`: `PREFIX/lib/python*/site-packages`.
    static func sitePackages(ofProgram program: String) -> [String] {
        let bin = URL(fileURLWithPath: program).deletingLastPathComponent()
        guard bin.lastPathComponent == "bin" else { return [] }
        let lib = bin.deletingLastPathComponent().appendingPathComponent("lib").path
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []).filter {
            $0.hasPrefix("python")
        }
        return versions.sorted().map { "\(lib)/\($0)/site-packages" }
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// The files directly in a folder, as one stamp (at most `limit` entries; more: not cached).
    static func folder(_ dir: String, limit: Int = 1000) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir), names.count <= limit else {
            return nil
        }
        var lines: [String] = []
        for name in names.sorted() where !name.hasPrefix(".") {
            let full = "\(dir)/\(name)"
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue else { continue }
            lines.append("\(name) \(stamp(full) ?? "-")")
        }
        return ArtifactFiles.sha256(bytes: Array(lines.joined(separator: "\n").utf8))
    }

    /// Every file under a package folder (or the one file), as one stamp; caches and hidden
    /// files left out. nil for more than `limit` files.
    static func tree(_ root: String, limit: Int = 5000) -> String? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir) else { return nil }
        guard isDir.boolValue else { return stamp(root) }
        guard let walker = FileManager.default.enumerator(atPath: root) else { return nil }
        var lines: [String] = []
        while let relative = walker.nextObject() as? String {
            let last = (relative as NSString).lastPathComponent
            if last.hasPrefix(".") || last == "__pycache__" {
                walker.skipDescendants()
                continue
            }
            lines.append("\(relative) \(stamp("\(root)/\(relative)") ?? "-")")
            if lines.count > limit { return nil }
        }
        return ArtifactFiles.sha256(bytes: Array(lines.sorted().joined(separator: "\n").utf8))
    }
}
