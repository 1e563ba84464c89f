import SweepKit
import Wire

/// The worker's side of the protocol as a pure state machine: whether the coordinator has
/// welcomed us, credits, results kept until acknowledged, heartbeats, reconnecting with
/// backoff, time limits and shutdown. No sockets, no clock reads, no threads: events come in
/// with the time as `now`, decisions go out as `WorkerEffect`s that `WorkerNode` drains and
/// carries out (like `Scheduler` on the coordinator's side).
///
/// Credits: the welcome's `ready` counts the free slots afresh; an attempt that ends while
/// welcomed frees its slot with `ready(1)` after its result (none while stopping). The built-in
/// `null` engine answers at once with `credit: 1` folded into its result and uses no slot.
struct WorkerSession: Sendable {
    let config: WorkerConfig
    /// This process's id, for `hello`.
    let pid: Int32
    /// Offered in `hello` (the null engine and each engine's `describe`).
    let engines: [String: JSONValue]

    private(set) var phase: Phase = .idle
    private(set) var welcomed = false
    private(set) var everWelcomed = false
    private(set) var heartbeatInterval = Timing.defaultHeartbeatInterval
    private(set) var deadAfter = Timing.defaultDeadAfter
    /// From the current connection's welcome; nil before it.
    private(set) var dataEndpoint: String? = nil
    private(set) var lastHeard = 0.0
    /// nil: none sent on this connection yet (the first goes at once after the welcome).
    private(set) var lastHeartbeat: Double? = nil
    /// When the current socket was opened (the backoff counts from here).
    private(set) var connectedAt = 0.0
    /// When the first socket was opened (the connect timeout counts from here).
    private(set) var firstContact = 0.0
    private(set) var backoff = Timing.firstBackoff
    private var warnedUnreachable = false
    /// Free slots, by index.
    private(set) var freeSlots: [SlotInfo]
    private(set) var running: [String: RunningAttempt] = [:]
    /// In the order they were produced (and resent).
    private(set) var unacknowledged: [Unacknowledged] = []
    private var effects: [WorkerEffect] = []

    init(config: WorkerConfig, pid: Int32, engines: [String: JSONValue]) {
        self.config = config
        self.pid = pid
        self.engines = engines
        self.freeSlots = config.slots.sorted { $0.index < $1.index }
    }

    /// Returns and clears the effects produced since the last call.
    mutating func drainEffects() -> [WorkerEffect] {
        defer { effects.removeAll(keepingCapacity: true) }
        return effects
    }

    var runningAttemptIds: [String] { running.keys.sorted() }
    var isStopping: Bool { phase == .stopping }
    var hasEnded: Bool { phase == .ended }

    // MARK: - Events

    /// The first socket is open: say hello.
    mutating func start(now: Double) {
        guard phase == .idle else { return }
        phase = .running
        firstContact = now
        connectedAt = now
        lastHeard = now
        hello()
    }

    /// A decoded message from the coordinator.
    mutating func received(_ message: Incoming, now: Double) {
        guard isLive else { return }
        lastHeard = now
        switch message {
        case .welcome(let welcome): handleWelcome(welcome)
        case .assign(let assign): handleAssign(assign, now: now)
        case .cancel(let cancel):
            if running[cancel.attemptId] != nil {
                running[cancel.attemptId]?.cancelRequested = true
                effects.append(.cancelJob(attemptId: cancel.attemptId, reason: cancel.reason, retryable: false))
            }
        case .ack(let ack):
            // Whatever the outcome (stored, duplicate, unknown, refused), sending it again cannot help.
            unacknowledged.removeAll { $0.attemptId == ack.attemptId }
        case .reject(let reject): handleReject(reject)
        case .heartbeat: break
        }
    }

    /// A message that could not be decoded: dropped, but the coordinator was heard from.
    mutating func receivedUnreadable(_ reason: String, now: Double) {
        guard isLive else { return }
        lastHeard = now
        effects.append(.log("ignored a message from the coordinator: \(reason)"))
    }

    /// An attempt ended: `frames` is the `result` or `failed` message its job produced.
    mutating func jobFinished(attemptId: String, type: MessageType, frames: [[UInt8]], now: Double) {
        guard isLive else { return }
        if let attempt = running.removeValue(forKey: attemptId) {
            freeSlots.append(attempt.slot)
            freeSlots.sort { $0.index < $1.index }
        }
        keepUntilAcknowledged(attemptId: attemptId, type: type, frames: frames)
        effects.append(.log("\(type == .result ? "finished" : "failed") \(attemptId)"))
        if welcomed {
            effects.append(.send(type, frames))
            if phase != .stopping { send(.ready, Ready(credits: 1)) }
        }
        if phase == .stopping { byeIfIdle() }
    }

    /// An engine's progress or metric event (dropped while not welcomed).
    mutating func progress(_ progress: TaskProgress) {
        guard isLive, welcomed else { return }
        send(.progress, progress)
    }

    /// Time passes: task time limits, heartbeats, a silent coordinator, reconnecting.
    mutating func tick(now: Double) {
        guard isLive else { return }
        if let limit = config.taskTimeout {
            for id in runningAttemptIds {
                guard let attempt = running[id], !attempt.cancelRequested, now - attempt.startedAt > limit else { continue }
                running[id]?.cancelRequested = true
                effects.append(.cancelJob(attemptId: id,
                                          reason: "it ran longer than the worker's --task-timeout of \(Int(limit)) s",
                                          retryable: true))
            }
        }

        if welcomed, lastHeartbeat.map({ now - $0 >= heartbeatInterval }) ?? true {
            send(.heartbeat, Heartbeat(running: runningAttemptIds))
            lastHeartbeat = now
        }

        let silence = now - lastHeard
        if welcomed, silence > deadAfter {
            effects.append(.log("the coordinator went silent for \(Int(silence)) s; reconnecting"))
            reconnect(now: now)
        } else if !welcomed, now - connectedAt > backoff {
            if let limit = config.connectTimeout, !everWelcomed, now - firstContact > limit {
                phase = .ended
                effects.append(.fail(WorkerError(
                    "no coordinator answered at \(config.coordinator) within \(Int(limit)) s. Check that "
                        + "`sparsegrid coordinator` is running there and that this address is the one it printed "
                        + "(--bind); a remote coordinator must bind a non-loopback address.")))
                return
            }
            if !warnedUnreachable, now - firstContact > Timing.waitingNotice {
                effects.append(.log(
                    "waiting for a coordinator at \(config.coordinator) (is `sparsegrid coordinator` running?)"))
                warnedUnreachable = true
            }
            reconnect(now: now)
            backoff = min(backoff * 2, Timing.maxBackoff)
        }
    }

    /// Finish: cancel the running attempts, report how they ended, then `bye`.
    mutating func stopRequested(now: Double) {
        guard phase == .running else { return }
        phase = .stopping
        for id in runningAttemptIds {
            running[id]?.cancelRequested = true
            effects.append(.cancelJob(attemptId: id, reason: Self.shutdownReason, retryable: true))
        }
        byeIfIdle()
    }

    static let shutdownReason = "the worker is shutting down"

    // MARK: - Messages

    private var isLive: Bool { phase == .running || phase == .stopping }

    private mutating func handleWelcome(_ welcome: Welcome) {
        welcomed = true
        everWelcomed = true
        warnedUnreachable = false
        backoff = Timing.firstBackoff
        heartbeatInterval = welcome.heartbeatInterval
        deadAfter = welcome.deadAfter
        dataEndpoint = welcome.dataEndpoint
        effects.append(.log("connected to \(config.coordinator) as \(config.workerId)"))
        for kept in unacknowledged { effects.append(.send(kept.type, kept.frames)) }
        if !freeSlots.isEmpty { send(.ready, Ready(credits: freeSlots.count)) }
    }

    private mutating func handleAssign(_ assign: Assign, now: Double) {
        if running[assign.attemptId] != nil { return }
        guard welcomed, let dataEndpoint else { return }
        if assign.engine == "null" {
            // The built-in null engine: no process, the result goes back at once.
            var result = TaskResult(attemptId: assign.attemptId, taskId: assign.taskId, metrics: [:], units: [:],
                                    details: .null, artifacts: [])
            keepUntilAcknowledged(attemptId: assign.attemptId, type: .result, frames: Codec.frames(.result, result))
            // Sent once with the slot's credit; a resend after a reconnect has none
            // (the welcome's ready counts free slots afresh).
            result.credit = 1
            send(.result, result)
            return
        }
        guard !freeSlots.isEmpty else {
            send(.failed, TaskFailed(attemptId: assign.attemptId, taskId: assign.taskId,
                                     error: "worker \(config.workerId) had no free slot", exitCode: nil,
                                     stderrTail: nil, retryable: true))
            return
        }
        let slot = freeSlots.removeFirst()
        running[assign.attemptId] = RunningAttempt(assign: assign, slot: slot, startedAt: now)
        effects.append(.log("running \(assign.stage) \(assign.params["model"]?.displayText ?? "") "
                                + "\(assign.params["method"]?.displayText ?? "") (\(assign.attemptId))"))
        effects.append(.startJob(assign, slot: slot, dataEndpoint: dataEndpoint))
        if phase == .stopping {
            // Assigned while shutting down: it starts and is stopped at once, and reported.
            running[assign.attemptId]?.cancelRequested = true
            effects.append(.cancelJob(attemptId: assign.attemptId, reason: Self.shutdownReason, retryable: true))
        }
    }

    private mutating func handleReject(_ reject: Reject) {
        switch reject.code {
        case .unknownWorker:
            // The coordinator does not know us (it restarted, or declared us dead).
            welcomed = false
            hello()
        case .idInUse:
            // Our id is live on another connection (e.g. our previous one, until the
            // coordinator declares it dead): the reconnect on the backoff says hello again.
            welcomed = false
            effects.append(.log("the coordinator refused our hello: \(reject.reason); trying again"))
        default:
            effects.append(.log("the coordinator rejected a message (\(reject.code.rawValue)): \(reject.reason)"))
        }
    }

    // MARK: - Helpers

    private mutating func send<T: WireMessage>(_ type: MessageType, _ message: T) {
        effects.append(.send(type, Codec.frames(type, message)))
    }

    private mutating func hello() {
        send(.hello, Hello(workerId: config.workerId, host: config.host, pid: pid, slots: config.slots,
                           engines: engines, running: runningAttemptIds))
    }

    /// A fresh socket: everything learnt from the last welcome is void until the next one.
    private mutating func reconnect(now: Double) {
        welcomed = false
        dataEndpoint = nil
        heartbeatInterval = Timing.defaultHeartbeatInterval
        deadAfter = Timing.defaultDeadAfter
        lastHeartbeat = nil
        connectedAt = now
        lastHeard = now
        effects.append(.reconnect)
        hello()
    }

    private mutating func keepUntilAcknowledged(attemptId: String, type: MessageType, frames: [[UInt8]]) {
        let kept = Unacknowledged(attemptId: attemptId, type: type, frames: frames)
        if let i = unacknowledged.firstIndex(where: { $0.attemptId == attemptId }) {
            unacknowledged[i] = kept
        } else {
            unacknowledged.append(kept)
        }
    }

    private mutating func byeIfIdle() {
        guard phase == .stopping, running.isEmpty else { return }
        send(.bye, Empty())
        phase = .ended
        effects.append(.finished)
    }
}
