import Foundation
import Synchronization
import ZeroMQ

/// A file of CURVE public keys (`--authorized-keys`, `--authorized-clients`): one Z85 key
/// (40 characters) per line; blank lines and `#` comments are ignored.
public enum AllowListFile {
    /// The most a list file may hold; a larger one is refused rather than read.
    public static let maxBytes = 4 << 20

    /// The keys in `path`, or a sentence naming the file (and line) and what is wrong. `what`
    /// names the list in messages, e.g. "--authorized-keys".
    public static func load(_ path: String, what: String) throws(CoordinatorError) -> Set<String> {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        guard let size else {
            throw CoordinatorError("cannot read \(what) \(path): it should list public keys (.pub), one per line.")
        }
        guard size <= maxBytes else {
            throw CoordinatorError("\(what) \(path) is \(size) bytes, more than the \(maxBytes) a key list may be.")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= maxBytes,
            let text = String(data: data, encoding: .utf8)
        else {
            throw CoordinatorError(
                "cannot read \(what) \(path) as UTF-8 text: it should list public keys, one per line.")
        }
        return try parse(text, file: path, what: what)
    }

    /// The keys in `text` (the contents of `file`).
    public static func parse(_ text: String, file: String, what: String) throws(CoordinatorError) -> Set<String> {
        var keys: Set<String> = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard line.utf8.count == 40, (try? ZMQ.z85Decode(line)) != nil else {
                let shown = line.count > 60 ? String(line.prefix(60)) + "…" : line
                throw CoordinatorError(
                    "\(file):\(index + 1): '\(shown)' in \(what) is not a 40-character Z85 public key "
                        + "(the contents of a .pub file from `sparsegrid keygen`).")
            }
            keys.insert(line)
        }
        if keys.isEmpty { throw CoordinatorError("\(what) \(file) lists no keys.") }
        return keys
    }
}

/// Re-reads the coordinator's allow-list files when asked (SIGHUP) or when one changes on
/// disk (size or modification time), and hands the new lists to the ZAP handler. A file that
/// cannot be read or holds a malformed line leaves the lists as they were and says why.
/// Thread-safe.
public final class AllowListReloader: Sendable {
    public let workerKeysFile: String
    public let clientKeysFile: String?
    private let coordinator: Coordinator
    private let seen: Mutex<[String: FileStamp]>

    struct FileStamp: Equatable {
        var size: Int
        var modified: Double
    }

    /// `workerKeysFile`: the file the worker keys came from; `clientKeysFile`: the control
    /// clients' file, if the coordinator was started with one.
    public init(coordinator: Coordinator, workerKeysFile: String, clientKeysFile: String?) {
        self.coordinator = coordinator
        self.workerKeysFile = workerKeysFile
        self.clientKeysFile = clientKeysFile
        var stamps: [String: FileStamp] = [:]
        for file in [workerKeysFile] + (clientKeysFile.map { [$0] } ?? []) { stamps[file] = Self.stamp(file) }
        seen = Mutex(stamps)
    }

    /// Reloads if a file's size or modification time changed since the last look (`force`:
    /// reload regardless). Returns a sentence for the operator log, with `isError` set when the
    /// old lists were kept; nil when nothing changed.
    public func check(force: Bool) -> (message: String, isError: Bool)? {
        let files = [workerKeysFile] + (clientKeysFile.map { [$0] } ?? [])
        let changed = seen.withLock { stamps in
            var changed = false
            for file in files {
                let now = Self.stamp(file)
                if now != stamps[file] { changed = true }
                stamps[file] = now
            }
            return changed
        }
        guard force || changed else { return nil }
        let why = force ? "on SIGHUP" : "after a change on disk"
        do {
            let workers = try AllowListFile.load(workerKeysFile, what: "--authorized-keys")
            let clients = try clientKeysFile.map { file throws(CoordinatorError) in
                try AllowListFile.load(file, what: "--authorized-clients")
            }
            try coordinator.replaceAuthorizedKeys(workers: workers, clients: clients)
            var text = "reloaded the allow-lists \(why): \(workers.count) worker key(s)"
            if let clients { text += ", \(clients.count) control client key(s)" }
            return (text + "; they apply from the next handshake (connected peers stay)", false)
        } catch {
            return ("kept the previous allow-lists (reload \(why) failed): \(error)", true)
        }
    }

    private static func stamp(_ file: String) -> FileStamp? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: file) else { return nil }
        return FileStamp(
            size: (attributes[.size] as? NSNumber)?.intValue ?? -1,
            modified: (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
    }
}
