import ArgumentParser
import Synchronization
import UnixSignals
import Foundation
import SweepKit
import Wire
import ZeroMQ

/// The default state directory: database, artifacts, logs, reports.
let defaultStateDirectory = "./.sparsegrid"
let defaultControlEndpoint = "tcp://127.0.0.1:5557"
let defaultWorkerEndpoint = "tcp://127.0.0.1:5555"

/// A user-facing failure: printed as one paragraph on stderr, exit status 1. No stack trace.
struct UserError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

func printErr(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Runs a command body, turning known errors into a paragraph on stderr and exit status 1.
func userFacing<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// Where a running coordinator can be found; written by `coordinator` and `run` into the
/// state directory so `status`, `cancel` and `retry` find it without flags.
struct CoordinatorInfo: Codable {
    var pid: Int32
    var workerEndpoint: String
    var dataEndpoint: String
    var controlEndpoint: String
    var startedAt: Double

    static func path(state: String) -> String { "\(state)/coordinator.json" }

    func write(state: String) throws {
        let data = try JSONEncoder().encode(self)
        try data.write(to: URL(fileURLWithPath: CoordinatorInfo.path(state: state)), options: .atomic)
    }

    /// The running coordinator of a state directory, if its process is alive.
    static func read(state: String) -> CoordinatorInfo? {
        guard let data = FileManager.default.contents(atPath: path(state: state)),
            let info = try? JSONDecoder().decode(CoordinatorInfo.self, from: data), kill(info.pid, 0) == 0
        else { return nil }
        return info
    }

    static func remove(state: String) { try? FileManager.default.removeItem(atPath: path(state: state)) }
}

/// A request/reply client for the coordinator's control socket.
final class ControlClient {
    private let context: Context
    private let socket: Socket
    private let token: [UInt8]
    let endpoint: String

    /// Authenticates with CURVE keys when `credentials` has them (a remote control socket),
    /// else with the control token (`<state>/control.token` unless --token-file says).
    init(endpoint: String, state: String, credentials: ControlAuth = ControlAuth()) throws {
        self.endpoint = endpoint
        let tokenPath = credentials.tokenFile ?? ControlToken.path(state: state)
        context = try Context()
        socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        if let keyFile = credentials.curveKey, let serverKey = credentials.serverKey {
            let secret = try readKey(keyFile, what: "your secret key")
            try socket.setCurveClient(serverPublicKey: try readKey(serverKey, what: "coordinator's public key"),
                                      publicKey: try ZMQ.curvePublic(fromSecret: secret), secretKey: secret)
            token = (try? ControlToken.read(path: tokenPath)) ?? []
        } else {
            do {
                token = try ControlToken.read(path: tokenPath)
            } catch {
                throw UserError("\(error)")
            }
        }
        do {
            try socket.connect(endpoint)
        } catch {
            throw UserError("'\(endpoint)' is not a coordinator address: \(error). Pass the control address "
                + "`sparsegrid coordinator` printed, e.g. --coordinator \(defaultControlEndpoint).")
        }
    }

    deinit { socket.close() }

    func request<T: Encodable>(_ type: MessageType, _ header: T, timeout: Double = 5) throws -> ControlReply {
        try socket.send(Codec.frames(type, header, payload: token))
        let fired = try Poller.poll([PollItem(socket: socket, events: .readable)],
                                    timeoutMilliseconds: Int(timeout * 1000))
        guard fired[0].contains(.readable), let frames = try socket.receive(dontWait: true) else {
            throw UserError("no coordinator answered at \(endpoint) within \(Int(timeout)) s. Start one with "
                + "`sparsegrid coordinator --state DIR` (it prints its control address), or pass the right "
                + "address with --coordinator; for a finished sweep, `sparsegrid results --state DIR` reads the "
                + "database without a coordinator.")
        }
        let reply = try Codec.parse(frames).decode(ControlReply.self)
        if !reply.ok { throw UserError(reply.error ?? "the coordinator refused the request") }
        return reply
    }
}

/// How a CLI command proves it may use a coordinator's control socket.
struct ControlCredentials: ParsableArguments {
    @Option(name: .customLong("token-file"), help: "The control token file (default: <state>/control.token).")
    var tokenFile: String?

    @Option(name: .customLong("curve-key"), help: "Your CURVE secret key file, for a coordinator whose control socket takes CURVE clients (--authorized-clients).")
    var curveKey: String?

    @Option(name: .customLong("server-key"), help: "The coordinator's public key (its .pub file or the 40-character key), with --curve-key.")
    var serverKey: String?

    func validate() throws {
        if (curveKey == nil) != (serverKey == nil) {
            throw ValidationError("--curve-key and --server-key go together: your secret key and the coordinator's public key.")
        }
    }

    var auth: ControlAuth { ControlAuth(tokenFile: tokenFile, curveKey: curveKey, serverKey: serverKey) }
}

/// The credentials themselves (the option group is only for parsing).
struct ControlAuth {
    var tokenFile: String? = nil
    var curveKey: String? = nil
    var serverKey: String? = nil
}

/// Loads a spec, printing its validation errors as they are (file:line: key: what to do).
func loadPlan(_ path: String, maxTasks: Int = SpecLimits.defaultMaxTasks) throws -> SweepPlan {
    do {
        return try SpecLoader.load(path: path, limits: SpecLimits(maxTasks: maxTasks))
    } catch let error as SpecError {
        printErr(error.description)
        throw ExitCode(1)
    }
}

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

/// Set at the first SIGINT or SIGTERM once `SignalWatcher.interrupts()` traps them (for `run`,
/// which polls between status updates; long-running services use a `ServiceGroup` instead).
final class InterruptFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

enum SignalWatcher {
    static func interrupts() async -> InterruptFlag {
        let flag = InterruptFlag()
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        Task {
            for await _ in signals { flag.set() }
        }
        return flag
    }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

import Store

func databasePath(state: String) -> String { "\(state)/sparsegrid.db" }

/// The state directory's database for reading; a clear error when there is none.
func openReadOnlyStore(state: String) throws -> SweepStore {
    guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
        throw UserError("no sparsegrid state at \(state): run `sparsegrid run SPEC` (or a coordinator) first, "
            + "or pass --state DIR with the directory it used.")
    }
    return try SweepStore.openReadOnly(path: databasePath(state: state))
}

/// The state directory's database for writing, when no coordinator is running on it.
func openStore(state: String) throws -> SweepStore {
    guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
        throw UserError("no sparsegrid state at \(state): pass --state DIR with the directory your sweep used.")
    }
    return try SweepStore(path: databasePath(state: state))
}

/// Flushes stdout (all C streams: `stdout` itself is not concurrency-safe to name in Swift 6).
func flushOutput() { fflush(nil) }
