import Foundation
import SweepKit
import Synchronization
import Wire
import ZeroMQ

/// What the other threads hand the socket thread.
private enum PumpInput: Sendable {
    case job(JobOutput)
    /// An engine's `describe` finished in the background (nil: it is not offered).
    case described(name: String, description: JSONValue?)
}

/// A worker process's connection to the coordinator. One thread owns the DEALER socket and
/// does nothing that blocks (heartbeats go out on time however busy the engines are); each
/// attempt runs on its own job thread, and engines are described on another, all handing
/// their events back through `inbox`. The worker keeps every result until the coordinator
/// acknowledges it, so a coordinator restart or a dropped connection loses nothing: after
/// reconnecting, it says hello with the attempts it still runs and sends the unacknowledged
/// results again.
public final class WorkerNode: Sendable {
    public let config: WorkerConfig
    private let context: Context
    private let inbox = Mutex<[PumpInput]>([])
    /// 0: keep going; 1: drain (the first SIGTERM); 2: stop now (the second).
    private let stopLevel = Atomic<Int>(0)
    private let log: OperatorLog?
    /// One long-lived engine per slot, for engines that declare `serve` (`--engine-reuse`).
    let warm: WarmEngines
    private let routingId: [UInt8] = {
        var rng = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: 1...255, using: &rng) }
    }()

    /// `log`: the operator log (nil: silent).
    public init(config: WorkerConfig, log: OperatorLog? = nil) throws {
        self.config = config
        self.context = try Context()
        self.log = log
        self.warm = WarmEngines(reuse: config.engineReuse)
    }

    /// Whether an attempt of this engine runs in the slot's warm `serve` process: the engine's
    /// `describe` says `"serve": {"version": 1}`, `--engine-reuse` is above 0, and the attempt
    /// does not ask for isolation (`Assign.isolate`: then `run`, a process of its own).
    static func servesWarm(_ description: JSONValue?, reuse: Int, isolate: Bool = false) -> Bool {
        guard reuse > 0, !isolate, let serve = description?["serve"]?.objectValue else { return false }
        return serve["version"]?.doubleValue == 1
    }

    /// Drain: take no new work, let running attempts finish for `config.drainGrace`, then stop
    /// them (they run again elsewhere) and say `bye`.
    public func stop() { _ = stopLevel.compareExchange(expected: 0, desired: 1, ordering: .relaxed) }

    /// Stop now: running engines are stopped and reported (retryable), then `bye`.
    public func stopNow() { stopLevel.store(2, ordering: .relaxed) }

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

    private func post(_ input: PumpInput) { inbox.withLock { $0.append(input) } }

    private func write(_ entry: WorkerLog) {
        log?.write(
            LogLine(
                ts: wallClock(), level: entry.level, event: entry.event, worker: config.workerId,
                task: entry.taskId, attempt: entry.attemptId, msg: entry.message))
    }

    /// Opens a DEALER socket to the coordinator, with a monitor of its CURVE handshakes when
    /// CURVE is on (so a refused key is told here, not only in the coordinator's log). Throws
    /// only for an address that cannot be used.
    private func connect() throws -> (Socket, SocketMonitor?) {
        let socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        // The same routing id on every connection of this process: a reconnect is recognised
        // as this worker (and keeps its attempts); it is random, so no other peer can claim it.
        try socket.setRoutingId(routingId)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        try socket.applyCurve(config.curve)
        let monitor = config.curve == nil ? nil : try socket.monitor([.handshakeFailedAuth])
        do {
            try socket.connect(config.coordinator)
        } catch {
            throw WorkerError(
                "cannot use coordinator address '\(config.coordinator)': \(error). "
                    + "Pass --coordinator tcp://HOST:PORT, the address `sparsegrid coordinator` printed.")
        }
        return (socket, monitor)
    }

    /// The socket pump: the protocol's decisions are `WorkerSession`'s; this loop polls the
    /// socket, feeds it what arrived (messages, job outputs, the time, a stop) and carries out
    /// its effects.
    private func loop() throws {
        // Hello first, with the engines the describe cache knows; the others are described in
        // the background and offered when done.
        let describer = EngineDescriber(config: config) { [self] in write($0) }
        defer { describer.cancel() }
        let (known, pending) = describer.known()
        var engines = known
        var session = WorkerSession(config: config, pid: getpid(), engines: engines)
        // No warm engine outlives the loop: each is told (stdin closed), then stopped.
        defer { warm.shutdown() }
        var (socket, monitor) = try connect()
        defer { monitor?.close() }
        var jobs: [String: Job] = [:]
        var stopsSeen = 0

        /// Carries out the session's effects in order; true once the loop is to end.
        func perform() throws -> Bool {
            for effect in session.drainEffects() {
                switch effect {
                case .send(_, let frames):
                    _ = try? socket.send(frames, dontWait: true)
                case .startJob(let assign, let slot, let dataEndpoint):
                    let serve = Self.servesWarm(
                        engines[assign.engine], reuse: config.engineReuse, isolate: assign.isolate)
                    let job = Job(assign: assign, slot: slot, startedAt: wallClock(), warm: serve ? warm : nil)
                    jobs[assign.attemptId] = job
                    let config = self.config
                    let context = self.context
                    Thread.detachNewThread { [self] in
                        job.run(config: config, context: context, dataEndpoint: dataEndpoint) { self.post(.job($0)) }
                    }
                case .cancelJob(let attemptId, let reason, let retryable):
                    jobs[attemptId]?.cancel(reason: reason, retryable: retryable)
                case .reconnect:
                    // A fresh socket, so queued messages to a dead peer are dropped.
                    socket.close()
                    monitor?.close()
                    (socket, monitor) = try connect()
                case .log(let entry):
                    write(entry)
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
        describer.start(pending) { [self] name, description in post(.described(name: name, description: description)) }
        while true {
            let level = stopLevel.load(ordering: .relaxed)
            if level > stopsSeen {
                if stopsSeen < 1 { session.stopRequested(now: wallClock()) }
                if level >= 2 { session.stopNow(now: wallClock()) }
                stopsSeen = level
                describer.cancel()
                if try perform() { return }
            }
            var items = [PollItem(socket: socket, events: .readable)]
            if let monitor { items.append(PollItem(socket: monitor.socket, events: .readable)) }
            let fired = try Poller.poll(items, timeoutMilliseconds: 10)
            if let monitor, fired.count > 1, fired[1].contains(.readable) {
                while let event = try monitor.next() {
                    guard event.kind == .handshakeFailedAuth else { continue }
                    session.keyRefused(status: event.value, endpoint: event.endpoint, now: wallClock())
                }
                if try perform() { return }
            }
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

            // What the job and describe threads produced since the last turn.
            let inputs = inbox.withLock { o -> [PumpInput] in
                defer { o.removeAll() }
                return o
            }
            for input in inputs {
                switch input {
                case .job(.progress(let progress)):
                    session.progress(progress, now: wallClock())
                case .job(.finished(let attemptId, let type, let frames)):
                    jobs[attemptId] = nil
                    session.jobFinished(attemptId: attemptId, type: type, frames: frames, now: wallClock())
                case .described(let name, let description):
                    if let description {
                        engines[name] = description
                        session.enginesChanged(engines, now: wallClock())
                    }
                }
                if try perform() { return }
            }

            session.tick(now: wallClock())
            if try perform() { return }
        }
    }
}
