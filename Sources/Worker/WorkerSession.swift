import SweepKit
import Wire
import ZeroMQ

/// The worker's side of the protocol as a pure state machine: whether the coordinator has
/// welcomed us, credits, results kept until acknowledged, heartbeats, reconnecting with
/// backoff, time limits and shutdown. No sockets, no clock reads, no threads: events come in
/// with the time as `now`, decisions go out as `WorkerEffect`s that `WorkerNode` drains and
/// carries out (like `Scheduler` on the coordinator's side).
///
/// Credits: the welcome's `ready` counts the free slots afresh; an attempt that ends while
/// welcomed frees its slot with `ready(1)` after its result (none while draining or stopping,
/// nor while a hello is unanswered: the welcome counts it). The built-in `null` engine answers at
/// once with `credit: 1` folded into its result and uses no slot.
///
/// Time limits: an attempt is stopped after the smaller of its stage's `timeout` (in the assign)
/// and `config.taskTimeout`, or after `config.idleTimeout` with no event from its engine; its
/// failure is reported as outcome `timeout` (retryable), with the limit that fired.
///
/// Stopping: `stopRequested` drains (no new work; running attempts may finish for
/// `config.drainGrace`), `stopNow` cancels the running attempts at once (retryable); `bye` goes
/// once none runs.
struct WorkerSession: Sendable {
    let config: WorkerConfig
    /// This process's id, for `hello`.
    let pid: Int32
    /// Offered in `hello` (the null engine and each engine's `describe`); grows when an engine
    /// described in the background becomes available (`enginesChanged`).
    private(set) var engines: [String: JSONValue]

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
    /// What the coordinator's refusal of this worker's key means, from the socket monitor;
    /// nil once a welcome came (or before any refusal).
    private(set) var refusal: String? = nil
    /// A hello went out on a live connection (new engines) and its welcome has not come yet:
    /// finished attempts send no `ready` meanwhile, since the welcome's counts every free slot.
    private(set) var helloPending = false
    /// When a drain ends and the running attempts are stopped.
    private(set) var drainDeadline: Double? = nil
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
    var isStopping: Bool { phase == .stopping || phase == .draining }
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
                running[cancel.attemptId]?.cancel = .coordinator
                log(
                    "cancel", attempt: cancel.attemptId,
                    "the coordinator cancelled \(cancel.attemptId): \(cancel.reason)")
                effects.append(.cancelJob(attemptId: cancel.attemptId, reason: cancel.reason, retryable: false))
            }
        case .ack(let ack):
            // Whatever the outcome (stored, duplicate, unknown, refused), sending it again cannot help.
            unacknowledged.removeAll { $0.attemptId == ack.attemptId }
            if phase == .draining { byeIfIdle() }
        case .reject(let reject): handleReject(reject)
        case .heartbeat: break
        }
    }

    /// A message that could not be decoded: dropped, but the coordinator was heard from.
    mutating func receivedUnreadable(_ reason: String, now: Double) {
        guard isLive else { return }
        lastHeard = now
        log("unreadable", level: .warn, "ignored a message from the coordinator: \(reason)")
    }

    /// An attempt ended: `frames` is the `result` or `failed` message its job produced. The
    /// failure of an attempt stopped at a time limit is reported as outcome `timeout`.
    mutating func jobFinished(attemptId: String, type: MessageType, frames: [[UInt8]], now: Double) {
        guard isLive else { return }
        var frames = frames
        let attempt = running.removeValue(forKey: attemptId)
        if let attempt {
            freeSlots.append(attempt.slot)
            freeSlots.sort { $0.index < $1.index }
            if type == .failed, case .timeout(let reason) = attempt.cancel {
                frames = Self.timedOut(frames, reason: reason)
            }
            if type == .result { frames = Self.withCoTenancy(frames, of: attempt) }
        }
        keepUntilAcknowledged(attemptId: attemptId, type: type, frames: frames)
        let seconds = attempt.map { Self.seconds(now - $0.startedAt) } ?? "?"
        if type == .result {
            log("finished", attempt: attemptId, task: attempt?.assign.taskId, "finished \(attemptId) in \(seconds)")
        } else {
            let why = (try? Codec.parse(frames).decode(TaskFailed.self)).map { ": \($0.error.prefix(300))" } ?? ""
            log(
                "failed", level: .warn, attempt: attemptId, task: attempt?.assign.taskId,
                "attempt \(attemptId) failed after \(seconds)\(why)")
        }
        if welcomed {
            effects.append(.send(type, frames))
            if phase == .running, !helloPending { send(.ready, Ready(credits: 1)) }
        }
        byeIfIdle()
    }

    /// An engine's progress or metric event: the attempt is alive (the idle timeout counts from
    /// here); sent on while welcomed, dropped otherwise.
    mutating func progress(_ progress: TaskProgress, now: Double) {
        guard isLive else { return }
        running[progress.attemptId]?.lastEvent = now
        guard welcomed else { return }
        send(.progress, progress)
    }

    /// Engines were described in the background (or their description changed): offered
    /// from now on, with a new hello so the coordinator learns them.
    mutating func enginesChanged(_ engines: [String: JSONValue], now: Double) {
        guard engines != self.engines else { return }
        self.engines = engines
        guard phase == .running else { return }
        if welcomed { helloPending = true }
        hello()
    }

    /// Time passes: task time limits, draining, heartbeats, a silent coordinator, reconnecting.
    mutating func tick(now: Double) {
        guard isLive else { return }
        for id in runningAttemptIds {
            guard let attempt = running[id], !attempt.cancelRequested,
                let reason = timeLimitReached(attempt, now: now)
            else { continue }
            running[id]?.cancel = .timeout(reason: reason)
            log("timeout", level: .warn, attempt: id, task: attempt.assign.taskId, "stopping \(id): \(reason)")
            effects.append(.cancelJob(attemptId: id, reason: reason, retryable: true))
        }
        if phase == .draining, let deadline = drainDeadline, now >= deadline {
            log(
                "drain", level: .warn,
                "the drain grace of \(Self.seconds(config.drainGrace)) passed; stopping "
                    + "\(running.count) running attempt(s) (they run again elsewhere)")
            stopNow(now: now)
            if phase == .ended { return }
        }

        if welcomed, lastHeartbeat.map({ now - $0 >= heartbeatInterval }) ?? true {
            send(.heartbeat, Heartbeat(running: runningAttemptIds))
            lastHeartbeat = now
        }

        let silence = now - lastHeard
        if welcomed, silence > deadAfter {
            log("reconnect", level: .warn, "the coordinator went silent for \(Int(silence)) s; reconnecting")
            reconnect(now: now)
        } else if !welcomed, now - connectedAt > backoff {
            if let limit = config.connectTimeout, !everWelcomed, now - firstContact > limit {
                phase = .ended
                if let refusal {
                    effects.append(.fail(WorkerError("\(refusal) Gave up after --connect-timeout \(Int(limit)) s.")))
                    return
                }
                effects.append(
                    .fail(
                        WorkerError(
                            "no coordinator answered at \(config.coordinator) within \(Int(limit)) s. Check that "
                                + "`sparsegrid coordinator` is running there and that this address is the one it printed "
                                + "(--bind); a remote coordinator must bind a non-loopback address.")))
                return
            }
            if !warnedUnreachable, now - firstContact > Timing.waitingNotice {
                log(
                    "waiting", level: .warn,
                    "waiting for a coordinator at \(config.coordinator) (is `sparsegrid coordinator` running?)")
                warnedUnreachable = true
            }
            reconnect(now: now)
            backoff = min(backoff * 2, Timing.maxBackoff)
        }
    }

    /// The coordinator's ZAP handler refused this worker's CURVE key (the socket monitor saw
    /// the handshake fail with `status`). Logged as an error at the first refusal since the
    /// last welcome; the worker keeps trying (the key may be added and the coordinator's list
    /// reloaded), and with a connect timeout it gives up with this explanation.
    mutating func keyRefused(status: UInt32, endpoint: String, now: Double) {
        guard isLive, let curve = config.curve else { return }
        let fingerprint = Self.keyFingerprint(curve.publicKey)
        let explanation =
            "the coordinator at \(endpoint.isEmpty ? config.coordinator : endpoint) refused this worker's CURVE key "
            + "(ZAP status \(status)): its public key \(curve.publicKey) (fingerprint \(fingerprint)) is not on the "
            + "coordinator's allow-list. Add that key (this worker's .pub file) as a line of the file the coordinator "
            + "was given with --authorized-keys, then send the coordinator SIGHUP (kill -HUP PID) or wait a few "
            + "seconds: it re-reads the file when it changes."
        guard refusal == nil else { return }
        refusal = explanation
        log("refused", level: .error, explanation + " This worker keeps retrying.")
    }

    /// "SHA256:" and the first 16 hex digits of the SHA-256 of the key's 32 bytes: short enough
    /// to compare by eye with the coordinator's log; the key itself is public too.
    static func keyFingerprint(_ publicKey: String) -> String {
        let raw = (try? ZMQ.z85Decode(publicKey)) ?? Array(publicKey.utf8)
        return "SHA256:" + ArtifactFiles.sha256(bytes: raw).prefix(16)
    }

    /// The first SIGTERM: drain. No new work; running attempts may finish for
    /// `config.drainGrace` seconds (then they are stopped as by `stopNow`); `bye` once none runs
    /// and their results are acknowledged. With a grace of 0, the same as `stopNow`.
    mutating func stopRequested(now: Double) {
        guard phase == .running else { return }
        guard config.drainGrace > 0, !running.isEmpty || !unacknowledged.isEmpty else {
            stopNow(now: now)
            return
        }
        phase = .draining
        drainDeadline = now + config.drainGrace
        log(
            "drain",
            "draining: taking no new work; \(running.count) running attempt(s) may finish within "
                + "\(Self.seconds(config.drainGrace)) (--drain-grace); send SIGTERM again to stop them now")
        byeIfIdle()
    }

    /// Stop now (a second SIGTERM, or the drain grace passed): cancel the running attempts
    /// (retryable: they run again elsewhere), report how they ended, then `bye`.
    mutating func stopNow(now: Double) {
        guard phase == .running || phase == .draining else { return }
        phase = .stopping
        let ids = runningAttemptIds.filter { running[$0]?.cancelRequested == false }
        if !ids.isEmpty { log("stop", "stopping \(ids.count) running attempt(s); they run again elsewhere") }
        for id in ids {
            running[id]?.cancel = .shutdown
            effects.append(.cancelJob(attemptId: id, reason: Self.shutdownReason, retryable: true))
        }
        byeIfIdle()
    }

    static let shutdownReason = "the worker is shutting down"
    static let drainingReason = "is draining (shutting down): it takes no new work"

    /// The limit an attempt has passed, as the reason its engine is stopped; nil while within them.
    func timeLimitReached(_ attempt: RunningAttempt, now: Double) -> String? {
        let limit = effectiveTimeout(of: attempt.assign)
        if now - attempt.startedAt > limit.seconds { return limit.reason }
        if let idle = config.idleTimeout, idle > 0, now - attempt.lastEvent > idle {
            return "no event from the engine for \(Self.seconds(idle)) (the worker's --idle-timeout)"
        }
        return nil
    }

    /// The smaller of the stage's `timeout` and the worker's `--task-timeout`, and how a
    /// failure says it fired.
    func effectiveTimeout(of assign: Assign) -> (seconds: Double, reason: String) {
        if let stage = assign.timeout, stage <= config.taskTimeout {
            return (stage, "it ran longer than the stage's timeout of \(Self.seconds(stage))")
        }
        return (
            config.taskTimeout, "it ran longer than the worker's --task-timeout of \(Self.seconds(config.taskTimeout))"
        )
    }

    /// "3600 s", "0.5 s".
    static func seconds(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded)) s" : "\(rounded) s"
    }

    /// A job's `result` message with the attempt's device and co-tenants (what the session saw
    /// on its slots while it ran). Whatever the job could not encode stays as it was.
    static func withCoTenancy(_ frames: [[UInt8]], of attempt: RunningAttempt) -> [[UInt8]] {
        guard var result = try? Codec.parse(frames).decode(TaskResult.self) else { return frames }
        result.cotenancy = CoTenancy(
            device: attempt.slot.device,
            taskIds: Array(attempt.coTenants.sorted().prefix(WireLimits.maxCoTenants)),
            atOnce: min(attempt.atOnce, WireLimits.maxSlots))
        return Codec.frames(.result, result)
    }

    /// The free slot (its position in `freeSlots`) whose device runs the fewest attempts now,
    /// the lowest index among equals: tasks spread over the GPUs before they stack on one.
    func leastBusySlot() -> Int {
        var load: [String: Int] = [:]
        for attempt in running.values { load[attempt.slot.device, default: 0] += 1 }
        var best = 0
        for (i, slot) in freeSlots.enumerated()
        where load[slot.device, default: 0] < load[freeSlots[best].device, default: 0] {
            best = i
        }
        return best
    }

    /// A new attempt runs: it and the attempts already on its device are each other's
    /// co-tenants, and each counts how many run there at once. Returns that count.
    private mutating func recordCoTenants(of attemptId: String) -> Int {
        guard let new = running[attemptId] else { return 0 }
        let neighbours = running.filter { $0.key != attemptId && $0.value.slot.device == new.slot.device }
        let atOnce = neighbours.count + 1
        for (id, other) in neighbours {
            if other.assign.taskId != new.assign.taskId {
                // The first `maxCoTenants` to come: a long attempt beside many short ones stays bounded.
                if other.coTenants.count < WireLimits.maxCoTenants {
                    running[id]!.coTenants.insert(new.assign.taskId)
                }
                if running[attemptId]!.coTenants.count < WireLimits.maxCoTenants {
                    running[attemptId]!.coTenants.insert(other.assign.taskId)
                }
            }
            running[id]!.atOnce = max(other.atOnce, atOnce)
        }
        running[attemptId]!.atOnce = atOnce
        return atOnce
    }

    /// A job's `failed` message for an attempt stopped at a time limit, as outcome `timeout`
    /// (retryable) with the limit as its error. Whatever the job could not encode stays as it was.
    static func timedOut(_ frames: [[UInt8]], reason: String) -> [[UInt8]] {
        guard var failed = try? Codec.parse(frames).decode(TaskFailed.self) else { return frames }
        failed.error = reason
        failed.retryable = true
        failed.outcome = .timeout
        return Codec.frames(.failed, failed)
    }

    // MARK: - Messages

    private var isLive: Bool { phase == .running || phase == .draining || phase == .stopping }

    private mutating func handleWelcome(_ welcome: Welcome) {
        let again = helloPending && welcomed
        welcomed = true
        everWelcomed = true
        helloPending = false
        warnedUnreachable = false
        refusal = nil
        backoff = Timing.firstBackoff
        heartbeatInterval = welcome.heartbeatInterval
        deadAfter = welcome.deadAfter
        dataEndpoint = welcome.dataEndpoint
        if again {
            log("connected", "the coordinator knows our engines now: \(engines.keys.sorted().joined(separator: ", "))")
        } else {
            log("connected", "connected to \(config.coordinator) as \(config.workerId)")
        }
        for kept in unacknowledged { effects.append(.send(kept.type, kept.frames)) }
        if phase == .running, !freeSlots.isEmpty { send(.ready, Ready(credits: freeSlots.count)) }
        byeIfIdle()
    }

    private mutating func handleAssign(_ assign: Assign, now: Double) {
        if running[assign.attemptId] != nil { return }
        guard welcomed, let dataEndpoint else { return }
        if phase != .running {
            // Draining or stopping: refused, so the task runs elsewhere at once.
            log(
                "refused", attempt: assign.attemptId, task: assign.taskId,
                "refused \(assign.attemptId): this worker \(Self.drainingReason)")
            send(
                .failed,
                TaskFailed(
                    attemptId: assign.attemptId, taskId: assign.taskId,
                    error: "worker \(config.workerId) \(Self.drainingReason)", exitCode: nil,
                    stderrTail: nil, retryable: true))
            return
        }
        if assign.engine == "null" {
            // The built-in null engine: no process, the result goes back at once.
            var result = TaskResult(
                attemptId: assign.attemptId, taskId: assign.taskId, metrics: [:], units: [:],
                details: .null, artifacts: [])
            keepUntilAcknowledged(attemptId: assign.attemptId, type: .result, frames: Codec.frames(.result, result))
            // Sent once with the slot's credit; a resend after a reconnect has none
            // (the welcome's ready counts free slots afresh).
            result.credit = 1
            send(.result, result)
            return
        }
        guard !freeSlots.isEmpty else {
            send(
                .failed,
                TaskFailed(
                    attemptId: assign.attemptId, taskId: assign.taskId,
                    error: "worker \(config.workerId) had no free slot", exitCode: nil,
                    stderrTail: nil, retryable: true))
            return
        }
        let slot = freeSlots.remove(at: leastBusySlot())
        running[assign.attemptId] = RunningAttempt(assign: assign, slot: slot, startedAt: now, lastEvent: now)
        let sharing = recordCoTenants(of: assign.attemptId)
        var what = [assign.stage]
        for key in ["model", "method"] { if let v = assign.params[key]?.displayText { what.append(v) } }
        let limit = effectiveTimeout(of: assign)
        log(
            "running", attempt: assign.attemptId, task: assign.taskId,
            "running \(what.joined(separator: " ")) (\(assign.attemptId)) on \(slot.device)"
                + (sharing > 1 ? " (\(sharing) tasks on it now)" : "") + ", time limit \(Self.seconds(limit.seconds))")
        effects.append(.startJob(assign, slot: slot, dataEndpoint: dataEndpoint))
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
            helloPending = false
            log("refused", level: .warn, "the coordinator refused our hello: \(reject.reason); trying again")
        default:
            log(
                "rejected", level: .warn,
                "the coordinator rejected a message (\(reject.code.rawValue)): \(reject.reason)")
        }
    }

    // MARK: - Helpers

    private mutating func send<T: WireMessage>(_ type: MessageType, _ message: T) {
        effects.append(.send(type, Codec.frames(type, message)))
    }

    private mutating func log(
        _ event: String, level: LogLine.Level = .info, attempt: String? = nil,
        task: String? = nil, _ message: String
    ) {
        effects.append(.log(WorkerLog(level: level, event: event, attemptId: attempt, taskId: task, message: message)))
    }

    private mutating func hello() {
        send(
            .hello,
            Hello(
                workerId: config.workerId, host: config.host, pid: pid, slots: config.slots,
                engines: engines, running: runningAttemptIds))
    }

    /// A fresh socket: everything learnt from the last welcome is void until the next one.
    private mutating func reconnect(now: Double) {
        welcomed = false
        helloPending = false
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

    /// `bye` once nothing runs; a drain also waits for its results to be acknowledged (until
    /// its grace ends), so a coordinator that was away for a moment still gets them.
    private mutating func byeIfIdle() {
        guard phase == .stopping || phase == .draining, running.isEmpty else { return }
        if phase == .draining, !unacknowledged.isEmpty { return }
        log("bye", "nothing runs any more; saying bye")
        send(.bye, Empty())
        phase = .ended
        effects.append(.finished)
    }
}
