import Foundation
import Worker

/// Finds the built-in "sparsity" engine (the PyTorch engine), in this order:
///
/// 1. `--engine sparsity=COMMAND` (the caller's flag: checked by the caller, not here);
/// 2. `$SPARSEGRID_PYTHON`: that Python runs `-m sparsegrid_engine` (with the source tree's
///    `engine/` on PYTHONPATH when there is one, else the package installed in that Python);
/// 3. `sparsegrid-engine` on the PATH (`pip install` of engine/ or its wheel);
/// 4. the source checkout's `.venv`, running the sources in `engine/` (found above the working
///    directory or the binary, or `$SPARSEGRID_ENGINE_DIR`).
enum EngineLocator {
    /// What was chosen and why, for the worker's startup log and `validate`'s ranges line.
    struct Choice {
        var command: EngineCommand
        /// One line: the command, then which rule picked it.
        var summary: String
    }

    /// The four ways, first match wins, for the error (or warning) when none applies.
    static let ways = [
        "--engine sparsity=COMMAND (any command that speaks engine/CONTRACT.md)",
        "SPARSEGRID_PYTHON=/path/to/python (a Python that can import sparsegrid_engine and torch)",
        "`sparsegrid-engine` on the PATH (pip install the engine's wheel, or engine/ from the sources)",
        "a source checkout with its .venv (`make venv`; the binary or the working directory inside the "
            + "checkout, or SPARSEGRID_ENGINE_DIR=/path/to/engine)",
    ]
    static let notFound = "the sparsity engine (PyTorch) was not found"

    /// Several lines, for an error.
    static var howToProvide: String {
        "\(notFound). Give it to the worker in one of these ways, first match wins:\n"
            + ways.enumerated().map { "  \($0.offset + 1). \($0.element)" }.joined(separator: "\n")
    }

    /// One line, for a log.
    static var howToProvideInOneLine: String {
        "\(notFound); ways, first match wins: "
            + ways.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: "; ")
    }

    /// Rules 2 to 4; nil when none applies. Throws when $SPARSEGRID_PYTHON names no executable
    /// (it was asked for: falling through to another engine would hide the mistake).
    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Choice? {
        let engineDir = engineDirectory(environment: environment)
        if let python = environment["SPARSEGRID_PYTHON"], !python.isEmpty {
            guard let resolved = executable(python, path: environment["PATH"]) else {
                throw UserError(
                    "SPARSEGRID_PYTHON=\(python) is not an executable file (nor a program on the PATH). "
                        + "Point it at a Python that can import sparsegrid_engine and torch, or unset it.")
            }
            if let engineDir {
                return Choice(
                    command: EngineCommand(
                        executable: resolved, arguments: ["-m", "sparsegrid_engine"],
                        environment: ["PYTHONPATH": engineDir]),
                    summary: "`\(resolved) -m sparsegrid_engine` with the sources in \(engineDir) "
                        + "(from $SPARSEGRID_PYTHON)")
            }
            return Choice(
                command: EngineCommand(executable: resolved, arguments: ["-m", "sparsegrid_engine"]),
                summary: "`\(resolved) -m sparsegrid_engine`, the package installed in that Python "
                    + "(from $SPARSEGRID_PYTHON; no engine sources found)")
        }
        if let installed = executable("sparsegrid-engine", path: environment["PATH"], searchOnly: true) {
            return Choice(
                command: EngineCommand(executable: installed),
                summary: "\(installed) (`sparsegrid-engine` found on the PATH; $SPARSEGRID_PYTHON is not set)")
        }
        if let engineDir {
            let venv = URL(fileURLWithPath: engineDir).deletingLastPathComponent()
                .appendingPathComponent(".venv/bin/python").standardizedFileURL.path
            if FileManager.default.isExecutableFile(atPath: venv) {
                return Choice(
                    command: EngineCommand(
                        executable: venv, arguments: ["-m", "sparsegrid_engine"],
                        environment: ["PYTHONPATH": engineDir]),
                    summary: "`\(venv) -m sparsegrid_engine` with the sources in \(engineDir) (the source "
                        + "checkout's .venv; $SPARSEGRID_PYTHON is not set and no `sparsegrid-engine` is on the PATH)")
            }
        }
        return nil
    }

    /// `engine/` next to the repository the binary was built in (or above the working
    /// directory), or $SPARSEGRID_ENGINE_DIR.
    static func engineDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let dir = environment["SPARSEGRID_ENGINE_DIR"], !dir.isEmpty { return dir }
        var candidates: [URL] = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        for start in candidates {
            var dir = start
            for _ in 0..<6 {
                let engine = dir.appendingPathComponent("engine")
                if FileManager.default.fileExists(atPath: engine.appendingPathComponent("sparsegrid_engine").path) {
                    return engine.path
                }
                dir.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// `name` as an executable file: a path (with a slash) as is, else the first match on
    /// `path`. `searchOnly`: only a PATH search (for a program name, never a relative path).
    static func executable(_ name: String, path: String?, searchOnly: Bool = false) -> String? {
        let fm = FileManager.default
        if name.contains("/") {
            guard !searchOnly else { return nil }
            let full = URL(fileURLWithPath: name).standardizedFileURL.path
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: full, isDirectory: &isDir) && !isDir.boolValue
                && fm.isExecutableFile(atPath: full) ? full : nil
        }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where !dir.isEmpty {
            // An empty or relative PATH entry means the working directory: not searched, so a
            // worker started in some folder does not run a `sparsegrid-engine` that lies there.
            guard dir.hasPrefix("/") else { continue }
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name).standardizedFileURL.path
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
                fm.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }
}

/// The path of the running binary, so `run` can start workers with the same build.
func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
