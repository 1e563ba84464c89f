import Foundation
import SweepKit
import Synchronization
import Wire

/// Asks engines to `describe` themselves, off the socket thread: the worker says hello with
/// the engines it already knows (the built-in null engine and every engine the describe cache
/// answers for) and offers the others once their `describe` has run (`WorkerSession.enginesChanged`).
/// `cancel()` kills a `describe` in progress, so a worker stopped during start-up exits at once.
final class EngineDescriber: Sendable {
    let config: WorkerConfig
    private let cache: DescribeCache
    private let log: @Sendable (WorkerLog) -> Void
    /// The `describe` process now running, if any, and whether the describer was cancelled.
    private let state = Mutex<(process: Process?, cancelled: Bool)>((nil, false))
    /// A `describe` that has not answered after this long is killed (the engine is not offered).
    static let describeTimeout = 300.0
    /// More than this on stdout is not a description.
    static let maxOutputBytes = 4 << 20

    init(config: WorkerConfig, log: @escaping @Sendable (WorkerLog) -> Void) {
        self.config = config
        self.cache = DescribeCache(directory: config.describeCache)
        self.log = log
    }

    /// The engines to offer at once, and those still to describe (with their cache keys).
    func known() -> (engines: [String: JSONValue], pending: [(name: String, key: String?)]) {
        var engines: [String: JSONValue] = ["null": ["builtin": true]]
        var pending: [(String, String?)] = []
        for (name, command) in config.engines.sorted(by: { $0.key < $1.key }) {
            guard config.describeEngines else {
                engines[name] = ["command": .string(Self.commandLine(command))]
                continue
            }
            let key = DescribeCache.key(for: command)
            if let key, let described = cache.load(name: name, key: key) {
                engines[name] = described
                log(
                    WorkerLog(
                        event: "describe",
                        message: "engine \(name): described from the cache "
                            + "(\(cache.path(name: name, key: key)))"))
            } else {
                pending.append((name, key))
            }
        }
        return (engines, pending)
    }

    /// Describes `pending` one after the other on a thread of its own; `done` gets each answer
    /// (nil: the engine is not offered, and the log says why).
    func start(_ pending: [(name: String, key: String?)], done: @escaping @Sendable (String, JSONValue?) -> Void) {
        guard !pending.isEmpty else { return }
        Thread.detachNewThread { [self] in
            for (name, key) in pending {
                if state.withLock({ $0.cancelled }) { return }
                let described = describe(name: name, key: key)
                if state.withLock({ $0.cancelled }) { return }
                done(name, described)
            }
        }
    }

    /// Whether a `describe` process is running now.
    var isDescribing: Bool { state.withLock { $0.process != nil } }

    /// Kills a `describe` in progress; nothing more is described.
    func cancel() {
        let process = state.withLock { s -> Process? in
            s.cancelled = true
            return s.process
        }
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    static func commandLine(_ command: EngineCommand) -> String {
        ([command.executable] + command.arguments).joined(separator: " ")
    }

    private func describe(name: String, key: String?) -> JSONValue? {
        guard let command = config.engines[name] else { return nil }
        let started = Date()
        log(
            WorkerLog(
                event: "describe",
                message: "describing engine \(name) "
                    + (key == nil
                        ? "(its code could not be located, so it is described at every start)…"
                        : "(first start, cached afterwards)…")))
        do {
            let (status, output, errors) = try run(command)
            let seconds = Date().timeIntervalSince(started)
            if state.withLock({ $0.cancelled }) { return nil }
            guard status == 0, let described = try? JSONValue.parse(output), case .object = described else {
                let how = status.map { "exited with status \($0)" } ?? "was killed"
                log(
                    WorkerLog(
                        level: .warn, event: "describe",
                        message: "engine '\(name)' is not offered: `describe` \(how) after "
                            + "\(WorkerSession.seconds(seconds)): \(errors.suffix(300))"))
                return nil
            }
            if let key {
                cache.store(
                    name: name, key: key, command: Self.commandLine(command), described: described,
                    now: Date().timeIntervalSince1970)
            }
            log(
                WorkerLog(
                    event: "describe",
                    message: "engine \(name) described in \(WorkerSession.seconds(seconds)); "
                        + "offering it"))
            return described
        } catch {
            log(WorkerLog(level: .warn, event: "describe", message: "engine '\(name)' is not offered: \(error)"))
            return nil
        }
    }

    /// Runs `<engine> describe`: exit status (nil: killed), stdout, the end of stderr.
    private func run(_ command: EngineCommand) throws -> (Int32?, String, String) {
        let process = Process()
        process.executableURL = URL(
            fileURLWithPath: DescribeCache.resolve(
                command.executable, environment: ProcessInfo.processInfo.environment))
        process.arguments = command.arguments + ["describe"]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in command.environment { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        let cancelled = state.withLock { s -> Bool in
            if !s.cancelled { s.process = process }
            return s.cancelled
        }
        if cancelled { throw WorkerError("the worker is stopping") }
        do {
            try process.run()
        } catch {
            state.withLock { $0.process = nil }
            throw WorkerError("cannot start \(command.executable): \(error.localizedDescription)")
        }
        defer { state.withLock { $0.process = nil } }
        // A cancel that came between registering the process and starting it found nothing to
        // kill: look again now that it runs.
        if state.withLock({ $0.cancelled }) { kill(process.processIdentifier, SIGKILL) }
        // A describe that hangs is killed; the engine is then not offered.
        let timer = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.describeTimeout, execute: timer)
        defer { timer.cancel() }

        let errors = Mutex<[UInt8]>([])
        let errorsDone = DispatchSemaphore(value: 0)
        let errorHandle = stderr.fileHandleForReading
        Thread.detachNewThread {
            while true {
                let data = errorHandle.availableData
                if data.isEmpty { break }
                errors.withLock { buffer in
                    buffer.append(contentsOf: data)
                    if buffer.count > 8192 { buffer.removeFirst(buffer.count - 4096) }
                }
            }
            errorsDone.signal()
        }
        var output: [UInt8] = []
        let handle = stdout.fileHandleForReading
        while true {
            let data = handle.availableData
            if data.isEmpty { break }
            if output.count < Self.maxOutputBytes { output.append(contentsOf: data) }
        }
        process.waitUntilExit()
        _ = errorsDone.wait(timeout: .now() + 2)
        let tail = errors.withLock { String(decoding: $0.suffix(2048), as: UTF8.self) }
        let status: Int32? = process.terminationReason == .uncaughtSignal ? nil : process.terminationStatus
        return (status, String(decoding: output, as: UTF8.self), tail)
    }
}
