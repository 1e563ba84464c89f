import Foundation
import SweepKit
import Synchronization
import Wire
import ZeroMQ

/// A worker process's connection to the coordinator. One thread owns the DEALER socket;
/// each attempt runs on its own job thread and hands its events back through `inbox`.
/// The worker keeps every result until the coordinator acknowledges it, so a coordinator
/// restart or a dropped connection loses nothing: after reconnecting, it says hello with
/// the attempts it still runs and sends the unacknowledged results again.
public final class WorkerNode: Sendable {
    public let config: WorkerConfig
    private let context: Context
    private let inbox = Mutex<[JobOutput]>([])
    private let stopRequested = Atomic<Bool>(false)
    private let log: @Sendable (String) -> Void
    private let routingId: [UInt8] = {
        var rng = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: 1...255, using: &rng) }
    }()

    public init(config: WorkerConfig, log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.config = config
        self.context = try Context()
        self.log = log
    }

    /// Asks the loop to finish: running engines are stopped and reported, then `bye`.
    public func stop() { stopRequested.store(true, ordering: .relaxed) }

    /// Runs until `stop()`. Throws only when the coordinator cannot be reached within
    /// `connectTimeout` (a one-paragraph error saying what to check).
    public func run() throws {
        let box = Mutex<(any Error)?>(nil)
        let thread = SocketThread.start(name: "sg-worker") { [self] in
            do { try loop() } catch { box.withLock { $0 = error } }
        }
        thread.join()
        if let error = box.withLock({ $0 }) { throw error }
    }

    private func post(_ output: JobOutput) { inbox.withLock { $0.append(output) } }

    /// Opens a DEALER socket to the coordinator. Throws only for an address that cannot be used.
    private func connect() throws -> Socket {
        let socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        // The same routing id on every connection of this process: a reconnect is recognised
        // as this worker (and keeps its attempts); it is random, so no other peer can claim it.
        try socket.setRoutingId(routingId)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        try socket.applyCurve(config.curve)
        do {
            try socket.connect(config.coordinator)
        } catch {
            throw WorkerError("cannot use coordinator address '\(config.coordinator)': \(error). "
                + "Pass --coordinator tcp://HOST:PORT, the address `sparsegrid coordinator` printed.")
        }
        return socket
    }

    /// The socket pump: the protocol's decisions are `WorkerSession`'s; this loop polls the
    /// socket, feeds it what arrived (messages, job outputs, the time, a stop) and carries out
    /// its effects.
    private func loop() throws {
        var session = WorkerSession(config: config, pid: getpid(), engines: describeEngines())
        var socket = try connect()
        var jobs: [String: Job] = [:]
        var stopSeen = false

        /// Carries out the session's effects in order; true once the loop is to end.
        func perform() throws -> Bool {
            for effect in session.drainEffects() {
                switch effect {
                case .send(_, let frames):
                    _ = try? socket.send(frames, dontWait: true)
                case .startJob(let assign, let slot, let dataEndpoint):
                    let job = Job(assign: assign, slot: slot, startedAt: wallClock())
                    jobs[assign.attemptId] = job
                    let config = self.config
                    let context = self.context
                    Thread.detachNewThread { [self] in
                        job.run(config: config, context: context, dataEndpoint: dataEndpoint) { self.post($0) }
                    }
                case .cancelJob(let attemptId, let reason, let retryable):
                    jobs[attemptId]?.cancel(reason: reason, retryable: retryable)
                case .reconnect:
                    // A fresh socket, so queued messages to a dead peer are dropped.
                    socket.close()
                    socket = try connect()
                case .log(let line):
                    log(line)
                case .fail(let error):
                    socket.close()
                    throw error
                case .finished:
                    Thread.sleep(forTimeInterval: 0.05)  // lets `bye` leave before the socket closes
                    socket.close()
                    return true
                }
            }
            return false
        }

        session.start(now: wallClock())
        if try perform() { return }
        while true {
            if !stopSeen, stopRequested.load(ordering: .relaxed) {
                stopSeen = true
                session.stopRequested(now: wallClock())
                if try perform() { return }
            }
            let fired = try Poller.poll([PollItem(socket: socket, events: .readable)], timeoutMilliseconds: 10)
            if fired[0].contains(.readable) {
                while let frames = try socket.receive(dontWait: true) {
                    do {
                        session.received(try Incoming.decode(frames), now: wallClock())
                    } catch {
                        session.receivedUnreadable("\(error)", now: wallClock())
                    }
                    if try perform() { return }
                }
            }

            // What the job threads produced since the last turn.
            let outputs = inbox.withLock { o -> [JobOutput] in
                defer { o.removeAll() }
                return o
            }
            for output in outputs {
                switch output {
                case .progress(let progress):
                    session.progress(progress)
                case .finished(let attemptId, let type, let frames):
                    jobs[attemptId] = nil
                    session.jobFinished(attemptId: attemptId, type: type, frames: frames, now: wallClock())
                }
                if try perform() { return }
            }

            session.tick(now: wallClock())
            if try perform() { return }
        }
    }

    /// Engines offered in `hello`: the built-in null engine, plus each configured engine's
    /// `describe` output (an engine whose describe fails is left out, with the reason logged).
    private func describeEngines() -> [String: JSONValue] {
        var out: [String: JSONValue] = ["null": ["builtin": true]]
        for (name, command) in config.engines {
            guard config.describeEngines else {
                out[name] = ["command": .string(([command.executable] + command.arguments).joined(separator: " "))]
                continue
            }
            do {
                let dir = FileManager.default.temporaryDirectory.path
                let process = try EngineProcess(command: command, arguments: ["describe"], environment: [:],
                                                directory: dir)
                var text = ""
                let ended = process.readLines { text += $0 }
                guard ended.exitCode == 0, let described = try? JSONValue.parse(text) else {
                    log("engine '\(name)' is not offered: `describe` exited \(ended.exitCode.map(String.init) ?? "by a signal")"
                        + ": \(ended.stderrTail.suffix(300))")
                    continue
                }
                out[name] = described
            } catch {
                log("engine '\(name)' is not offered: \(error)")
            }
        }
        return out
    }
}
