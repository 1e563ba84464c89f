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

    // The loop's state lives in this struct, owned by the socket thread.
    private struct Session {
        var socket: Socket
        var welcomed = false
        var lastHeard: Double
        var connectedAt: Double
        var heartbeatInterval = 1.0
        var deadAfter = 5.0
        var dataEndpoint: String? = nil
        var lastHeartbeat = 0.0
    }

    private func connect(now: Double) throws -> Session {
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
        return Session(socket: socket, lastHeard: now, connectedAt: now)
    }

    private func loop() throws {
        var jobs: [String: Job] = [:]
        var freeSlots = config.slots
        var unacked: [String: [[UInt8]]] = [:]   // attempt id → result/failed frames
        let engines = describeEngines()
        let firstContact = wallClock()
        var everWelcomed = false
        var backoff = 0.5
        var session = try connect(now: firstContact)
        var warnedUnreachable = false

        func send(_ frames: [[UInt8]]) { _ = try? session.socket.send(frames, dontWait: true) }
        func sendMessage<T: WireMessage>(_ type: MessageType, _ header: T) { send(Codec.frames(type, header)) }
        func hello() {
            sendMessage(.hello, Hello(workerId: config.workerId, host: config.host, pid: getpid(), slots: config.slots,
                                      engines: engines, running: jobs.keys.sorted()))
        }
        hello()

        while true {
            let now = wallClock()
            if stopRequested.load(ordering: .relaxed) {
                for job in jobs.values { job.cancel(reason: "the worker is shutting down", retryable: true) }
                if jobs.isEmpty {
                    sendMessage(.bye, Empty())
                    Thread.sleep(forTimeInterval: 0.05)
                    session.socket.close()
                    return
                }
            }
            let fired = try Poller.poll([PollItem(socket: session.socket, events: .readable)], timeoutMilliseconds: 10)
            if fired[0].contains(.readable) {
                while let frames = try session.socket.receive(dontWait: true) {
                    session.lastHeard = wallClock()
                    guard let envelope = try? Codec.parse(frames) else { continue }
                    switch envelope.type {
                    case .welcome:
                        guard let welcome = try? envelope.decode(Welcome.self) else { continue }
                        session.welcomed = true
                        everWelcomed = true
                        warnedUnreachable = false
                        backoff = 0.5
                        session.heartbeatInterval = welcome.heartbeatInterval
                        session.deadAfter = welcome.deadAfter
                        session.dataEndpoint = welcome.dataEndpoint
                        log("connected to \(config.coordinator) as \(config.workerId)")
                        for frames in unacked.values { send(frames) }
                        if !freeSlots.isEmpty { sendMessage(.ready, Ready(credits: freeSlots.count)) }
                    case .assign:
                        guard let assign = try? envelope.decode(Assign.self) else { continue }
                        if jobs[assign.attemptId] != nil { continue }
                        guard session.welcomed, let dataEndpoint = session.dataEndpoint else { continue }
                        if assign.engine == "null" {
                            // The built-in null engine: no process, the result goes back at once.
                            var result = TaskResult(attemptId: assign.attemptId, taskId: assign.taskId, metrics: [:],
                                                    units: [:], details: .null, artifacts: [])
                            unacked[assign.attemptId] = Codec.frames(.result, result)
                            // Sent once with the slot's credit; a resend after a reconnect has none
                            // (the welcome's ready counts free slots afresh).
                            result.credit = 1
                            send(Codec.frames(.result, result))
                            continue
                        }
                        guard !freeSlots.isEmpty else {
                            let failed = TaskFailed(attemptId: assign.attemptId, taskId: assign.taskId,
                                                    error: "worker \(config.workerId) had no free slot", exitCode: nil,
                                                    stderrTail: nil, retryable: true)
                            sendMessage(.failed, failed)
                            continue
                        }
                        let slot = freeSlots.removeFirst()
                        let job = Job(assign: assign, slot: slot, startedAt: now)
                        jobs[assign.attemptId] = job
                        log("running \(assign.stage) \(assign.params["model"]?.displayText ?? "") "
                            + "\(assign.params["method"]?.displayText ?? "") (\(assign.attemptId))")
                        let config = self.config
                        let context = self.context
                        Thread.detachNewThread { [self] in
                            job.run(config: config, context: context, dataEndpoint: dataEndpoint) { self.post($0) }
                        }
                    case .cancel:
                        if let cancel = try? envelope.decode(Cancel.self) {
                            jobs[cancel.attemptId]?.cancel(reason: cancel.reason)
                        }
                    case .ack:
                        if let ack = try? envelope.decode(Ack.self) { unacked[ack.attemptId] = nil }
                    case .reject:
                        guard let reject = try? envelope.decode(Reject.self) else { continue }
                        switch reject.code {
                        case .unknownWorker:
                            // The coordinator does not know us (it restarted, or declared us dead).
                            session.welcomed = false
                            hello()
                        case .idInUse:
                            // Our id is live on another connection (e.g. our previous one, until the
                            // coordinator declares it dead): the reconnect loop says hello again later.
                            session.welcomed = false
                            log("the coordinator refused our hello: \(reject.reason); trying again")
                        default:
                            log("the coordinator rejected a message (\(reject.code.rawValue)): \(reject.reason)")
                        }
                    default:
                        break
                    }
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
                    if session.welcomed { sendMessage(.progress, progress) }
                case .finished(let attemptId, let type, let frames):
                    if let job = jobs.removeValue(forKey: attemptId) {
                        freeSlots.append(job.slot)
                        freeSlots.sort { $0.index < $1.index }
                    }
                    unacked[attemptId] = frames
                    log("\(type == .result ? "finished" : "failed") \(attemptId)")
                    if session.welcomed {
                        send(frames)
                        if !stopRequested.load(ordering: .relaxed) { sendMessage(.ready, Ready(credits: 1)) }
                    }
                }
            }

            // Time limits on engines.
            if let limit = config.taskTimeout {
                for job in jobs.values where now - job.startedAt > limit {
                    job.cancel(reason: "it ran longer than the worker's --task-timeout of \(Int(limit)) s", retryable: true)
                }
            }

            // Heartbeats, and noticing a coordinator that went away.
            if session.welcomed, now - session.lastHeartbeat >= session.heartbeatInterval {
                sendMessage(.heartbeat, Heartbeat(running: jobs.keys.sorted()))
                session.lastHeartbeat = now
            }
            let silence = now - session.lastHeard
            if session.welcomed, silence > session.deadAfter {
                log("the coordinator went silent for \(Int(silence)) s; reconnecting")
                session.socket.close()
                session = try connect(now: now)
                hello()
            } else if !session.welcomed, now - session.connectedAt > backoff {
                if let limit = config.connectTimeout, !everWelcomed, now - firstContact > limit {
                    session.socket.close()
                    throw WorkerError(
                        "no coordinator answered at \(config.coordinator) within \(Int(limit)) s. Check that "
                            + "`sparsegrid coordinator` is running there and that this address is the one it printed "
                            + "(--bind); a remote coordinator must bind a non-loopback address.")
                }
                if !warnedUnreachable, now - firstContact > 3 {
                    log("waiting for a coordinator at \(config.coordinator) (is `sparsegrid coordinator` running?)")
                    warnedUnreachable = true
                }
                // Start over with a fresh socket so queued messages to a dead peer are dropped.
                session.socket.close()
                session = try connect(now: now)
                hello()
                backoff = min(backoff * 2, 10)
            }
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
