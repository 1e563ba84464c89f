import Foundation

/// Finds the engine sources and the Python that runs them, for the built-in "sparsity" engine.
enum EngineLocator {
    /// `engine/` next to the repository the binary was built in, or $SPARSEGRID_ENGINE_DIR.
    static func engineDirectory() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["SPARSEGRID_ENGINE_DIR"] { return dir }
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

    /// $SPARSEGRID_PYTHON, else the repository's .venv, else python3.
    static func python(engineDirectory: String?) -> String {
        if let p = ProcessInfo.processInfo.environment["SPARSEGRID_PYTHON"], !p.isEmpty { return p }
        if let dir = engineDirectory {
            let venv = URL(fileURLWithPath: dir).deletingLastPathComponent().appendingPathComponent(".venv/bin/python")
            if FileManager.default.isExecutableFile(atPath: venv.path) { return venv.path }
        }
        return "python3"
    }
}

/// The path of the running binary, so `run` can start workers with the same build.
func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
