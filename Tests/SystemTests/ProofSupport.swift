import Foundation
import GRDB
import SweepKit
import Wire
import ZeroMQ

// Helpers shared by the fault-injection suites (CoordinatorFuzzTests, ForgeryTests,
// ChaosTests, ControlAuthTests). Everything here has a deadline: no helper can hang a test.

/// A small seeded generator (SplitMix64), so a failing fuzz or chaos run can be replayed
/// from the seed it prints.
struct SeededRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The seed from `$name` when set (to replay a run), else a fresh one.
    static func seed(env name: String) -> UInt64 {
        if let text = ProcessInfo.processInfo.environment[name], let seed = UInt64(text) { return seed }
        return UInt64.random(in: 1...UInt64.max)
    }
}

/// A coordinator process on a state directory that can be SIGKILLed and started again on the
/// same state directory and the same three addresses.
final class CoordinatorUnderTest {
    let dir: String
    let state: String
    let heartbeat: String
    let deadAfter: String
    let retryBackoff: String
    private(set) var process: Process
    private(set) var workers = ""
    private(set) var data = ""
    private(set) var control = ""
    private(set) var starts = 1

    /// Starts on three free ports below the ephemeral range (`Harness.stablePorts`);
    /// `restart()` reuses them.
    init(dir: String, heartbeat: Double = 0.2, deadAfter: Double = 1, retryBackoff: Double = 0.1) async throws {
        self.dir = dir
        self.state = "\(dir)/state"
        self.heartbeat = String(heartbeat)
        self.deadAfter = String(deadAfter)
        self.retryBackoff = String(retryBackoff)
        let ports = try Harness.stablePorts(3).map { "tcp://127.0.0.1:\($0)" }
        process = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", ports[0], "--data", ports[1],
                "--control", ports[2], "--heartbeat", self.heartbeat, "--dead-after", self.deadAfter,
                "--retry-backoff", self.retryBackoff,
            ],
            log: "\(dir)/coordinator-1.log", environment: Self.environment)
        let info = try await Self.readInfo(state: state)
        (workers, data, control) = (info.workers, info.data, info.control)
    }

    /// No crash backtraces (they take seconds each); the fatal error line is still printed.
    static let environment = ["SWIFT_BACKTRACE": "enable=no"]

    var log: String { "\(dir)/coordinator-\(starts).log" }
    var isRunning: Bool { process.isRunning }

    /// How the current process ended, in words (for failure messages).
    var exitDescription: String {
        if process.isRunning { return "still running" }
        let why = process.terminationReason == .uncaughtSignal ? "signal" : "status"
        return "ended with \(why) \(process.terminationStatus)"
    }

    /// The last `Fatal error` line (or the log tail) of the current process.
    var crashText: String {
        let text = Harness.read(log)
        if let line = text.split(separator: "\n").last(where: {
            $0.contains("Fatal error") || $0.contains("could not commit")
        }) {
            return String(line.prefix(400))
        }
        return String(text.suffix(600))
    }

    func kill9() async { await Harness.stop(process, signal: SIGKILL) }

    /// Starts the coordinator again on the same state directory and addresses (after `kill9`
    /// or a crash) and waits until it has bound them.
    func restart() async throws {
        if process.isRunning { await kill9() }
        try? FileManager.default.removeItem(atPath: "\(state)/coordinator.json")
        starts += 1
        process = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", workers, "--data", data, "--control", control,
                "--heartbeat", heartbeat, "--dead-after", deadAfter, "--retry-backoff", retryBackoff,
            ],
            log: log, environment: Self.environment)
        // A port may linger for a moment after a SIGKILL: a failed bind is retried.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: "\(state)/coordinator.json") { return }
            if !process.isRunning {
                try await Task.sleep(nanoseconds: 200_000_000)
                process = try Harness.start(
                    [
                        "coordinator", "--state", state, "--bind", workers, "--data", data, "--control", control,
                        "--heartbeat", heartbeat, "--dead-after", deadAfter, "--retry-backoff", retryBackoff,
                    ],
                    log: log, environment: Self.environment)
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw HarnessError(
            "the coordinator did not come back on \(workers) within 30 s: \(Harness.read(log).suffix(1000))")
    }

    func stop() { Harness.kill9(process) }

    static func readInfo(state: String, timeout: Double = 60) async throws -> (
        workers: String, data: String, control: String
    ) {
        var result: (String, String, String)? = nil
        try await Harness.waitFor("the coordinator to bind", timeout: timeout) {
            guard let bytes = FileManager.default.contents(atPath: "\(state)/coordinator.json"),
                let json = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any],
                let w = json["workerEndpoint"] as? String, let d = json["dataEndpoint"] as? String,
                let c = json["controlEndpoint"] as? String
            else { return false }
            result = (w, d, c)
            return true
        }
        return result!
    }

    /// Starts a worker process (null engine always; the test engine when `testEngine`).
    func startWorker(
        id: String, slots: Int = 1, testEngine: Bool = false, environment: [String: String] = [:],
        logName: String? = nil
    ) throws -> Process {
        var args = [
            "worker", "--coordinator", workers, "--id", id, "--slots", String(slots), "--cache", "\(dir)/\(id)",
            "--no-describe",
        ]
        args += testEngine ? ["--engine", Harness.testEngine, "--only", "test"] : ["--only", "null"]
        return try Harness.start(args, log: "\(dir)/\(logName ?? id).log", environment: environment)
    }

    func launch(_ spec: String) async throws {
        let out = try await Harness.run(["launch", spec, "--coordinator", control, "--state", state], timeout: 60)
        if out.status != 0 { throw HarnessError("launch failed: \(out.stdout) \(out.stderr)") }
    }
}

/// A raw DEALER socket: what any local process (or, off loopback, any host) can open to the
/// coordinator's sockets without going through `sparsegrid worker`.
final class RawDealer {
    let socket: Socket
    let endpoint: String

    init(_ context: Context, _ endpoint: String) throws {
        self.endpoint = endpoint
        socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        try socket.connect(endpoint)
    }

    deinit { socket.close() }

    func send(_ frames: [[UInt8]]) {
        _ = try? socket.send(frames, dontWait: true)
    }

    func send<T: Encodable>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) {
        if let frames = try? Codec.frames(type, header, payload: payload) { send(frames) }
    }

    func send<T: WireMessage>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) {
        send(Codec.frames(type, header, payload: payload))
    }

    /// The next message, or nil after `timeout` seconds (never blocks a thread).
    func receive(timeout: Double) async -> [[UInt8]]? {
        let deadline = Date().addingTimeInterval(timeout)
        var pause: UInt64 = 200_000
        while true {
            if let frames = try? socket.receive(dontWait: true) { return frames }
            if Date() >= deadline { return nil }
            try? await Task.sleep(nanoseconds: pause)
            pause = min(pause * 2, 5_000_000)
        }
    }

    /// Receives until a message of `type` arrives (others are dropped), or nil at the deadline.
    func receive(_ type: MessageType, timeout: Double) async -> Envelope? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard let frames = await receive(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if let envelope = try? Codec.parse(frames), envelope.type == type { return envelope }
        }
        return nil
    }

    /// Drops whatever has arrived.
    func drain() {
        var n = 0
        while n < 100_000, (try? socket.receive(dontWait: true)) ?? nil != nil { n += 1 }
    }
}

/// Raw SQL on a state directory's database, read-only (the coordinator keeps writing).
enum SQL {
    static func read<T>(_ state: String, _ body: (Database) throws -> T) throws -> T {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: "\(state)/sparsegrid.db", configuration: config)
        return try queue.read(body)
    }

    static func int(_ state: String, _ sql: String, _ arguments: StatementArguments = []) throws -> Int {
        try read(state) { try Int.fetchOne($0, sql: sql, arguments: arguments) ?? 0 }
    }

    static func strings(_ state: String, _ sql: String, _ arguments: StatementArguments = []) throws -> [String] {
        try read(state) { try String.fetchAll($0, sql: sql, arguments: arguments) }
    }

    static func rows(_ state: String, _ sql: String, _ arguments: StatementArguments = []) throws -> [Row] {
        try read(state) { try Row.fetchAll($0, sql: sql, arguments: arguments) }
    }
}

enum ProofSpecs {
    /// A null-engine sweep of a × b tasks: results come back at once.
    static func null(name: String, a: Int, b: Int, retries: Int = 3) -> String {
        """
        name: \(name)
        engine: "null"
        grid:
          a: [\((1...a).map(String.init).joined(separator: ", "))]
          b: [\((1...b).map(String.init).joined(separator: ", "))]
        stages:
          work:
            params: {kind: proof}
        retries: \(retries)

        """
    }
}

extension Process {
    func signal(_ sig: Int32) { if isRunning { kill(processIdentifier, sig) } }
}

/// The text of frames for failure messages: printable bytes as they are, others as \xNN,
/// long frames cut.
func describeFrames(_ frames: [[UInt8]], limit: Int = 300) -> String {
    frames.map { frame -> String in
        var out = ""
        for byte in frame.prefix(limit) {
            if byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") {
                out.append(Character(UnicodeScalar(byte)))
            } else {
                out += String(format: "\\x%02x", byte)
            }
        }
        if frame.count > limit { out += "…(\(frame.count) bytes)" }
        return "[\(out)]"
    }.joined(separator: " ")
}
