import Foundation
import Store
import SweepKit

/// Starts the real `sparsegrid` binary (built next to this test bundle) as separate processes,
/// with a state directory per test, and polls the real SQLite database for what happened.
enum Harness {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let binary: String = {
        let exe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary may sit inside a .xctest bundle directory.
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("sparsegrid").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return "\(repoRoot)/.build/debug/sparsegrid"
    }()

    /// The Python with torch that engine tests run with, and whose torch a fresh venv borrows:
    /// $SPARSEGRID_PYTHON (make test sets it), else the repository's venv.
    static let basePython: String = {
        if let p = ProcessInfo.processInfo.environment["SPARSEGRID_PYTHON"], !p.isEmpty { return p }
        return "\(repoRoot)/.venv/bin/python"
    }()

    /// The stdlib-only engine for system tests (no torch: tasks take milliseconds).
    static let testEngine = "test=python3 \(repoRoot)/Tests/Fixtures/test_engine.py"

    /// `count` consecutive loopback ports, free now, below the kernel's ephemeral range, for a
    /// coordinator that a test restarts on the same addresses. A port the kernel handed out for
    /// `tcp://127.0.0.1:*` lies in the ephemeral range, where any outgoing connection of another
    /// test may take it as its local port while the coordinator is down: a restart then fails to
    /// bind (EADDRINUSE; seen once in a clean-clone CI run). Below the range, only a process that
    /// names the port can take it, and the base is random so parallel tests do not pick the same.
    static func stablePorts(_ count: Int) throws -> [Int] {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        let low = min(range?.first ?? 32768, 32768)
        for _ in 0..<200 {
            let base = Int.random(in: 10_000..<(low - count))
            let ports = Array(base..<(base + count))
            if ports.allSatisfy(Harness.canBind) { return ports }
        }
        throw HarnessError("no \(count) free consecutive loopback ports below \(low)")
    }

    static func tempDir(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sg-\(name)-\(UUID().uuidString.prefix(8))").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts a long-running process (the `sparsegrid` binary, or `executable`); its output goes
    /// to `log`. `removing`: variables taken out of the inherited environment; `directory`: its
    /// working directory.
    static func start(
        _ arguments: [String], log: String, environment: [String: String] = [:], removing: [String] = [],
        directory: String? = nil, executable: String? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in removing { env.removeValue(forKey: key) }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the `sparsegrid` binary to completion (bounded by `timeout`, then killed).
    static func run(
        _ arguments: [String], timeout: Double = 120, environment: [String: String] = [:],
        directory: String? = nil
    ) async throws -> Output {
        try await exec(binary, arguments, timeout: timeout, environment: environment, directory: directory)
    }

    /// Runs any executable to completion (bounded by `timeout`, then killed), its output into
    /// files. Sleeping, not blocking: a test that blocks a thread of the cooperative pool (two on
    /// a two-core machine) in `waitUntilExit` or a pipe read keeps every other test's awaits
    /// from resuming meanwhile. `removing`: variables taken out of the inherited environment.
    static func exec(
        _ executable: String, _ arguments: [String], timeout: Double = 120, environment: [String: String] = [:],
        removing: [String] = [], directory: String? = nil, mergeStderr: Bool = false
    ) async throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in removing { env.removeValue(forKey: key) }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let dir = tempDir("out")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outPath = "\(dir)/stdout", errPath = "\(dir)/stderr"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardOutput = out
        process.standardError = mergeStderr ? out : try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError(
                "`\(([executable] + arguments).joined(separator: " "))` ran longer than \(Int(timeout)) s; "
                    + "stderr: \(read(errPath).suffix(2000))")
        }
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: read(outPath), stderr: read(errPath))
    }

    static func read(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes.
    static func waitFor(_ what: String, timeout: Double = 60, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? await condition()) == true { return }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw HarnessError("timed out after \(Int(timeout)) s waiting for \(what)")
    }

    /// Kills synchronously (for `defer`, which cannot await); prefer `stop`.
    static func kill9(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    static func stop(_ process: Process, signal: Int32 = SIGTERM) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    static func store(_ state: String) throws -> SweepStore {
        try SweepStore.openReadOnly(path: "\(state)/sparsegrid.db")
    }

    /// The endpoints a coordinator wrote into its state directory once bound.
    static func coordinatorEndpoints(_ state: String, timeout: Double = 60) async throws
        -> (workers: String, control: String)
    {
        var result: (String, String)? = nil
        try await waitFor("the coordinator to bind", timeout: timeout) {
            guard let data = FileManager.default.contents(atPath: "\(state)/coordinator.json"),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let w = json["workerEndpoint"] as? String, let c = json["controlEndpoint"] as? String
            else { return false }
            result = (w, c)
            return true
        }
        return result!
    }

    static func writeSpec(_ text: String, in dir: String, name: String = "spec.yaml") throws -> String {
        let path = "\(dir)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A spec for the test engine: `train` tasks (one per x) and optionally `finetune` tasks
    /// consuming them.
    static func testSpec(name: String, xs: [Int], trainParams: String, finetune: String? = nil, retries: Int = 2)
        -> String
    {
        var text = """
            name: \(name)
            engine: test
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
              x: [\(xs.map(String.init).joined(separator: ", "))]
            stages:
              train:
                params: {\(trainParams)}

            """
        if let finetune {
            text += """
                  finetune:
                    after: train
                    params: {\(finetune)}

                """
        }
        text += "retries: \(retries)\n"
        return text
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
