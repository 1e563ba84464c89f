/// The coordinator's brain as a pure state machine: which task runs next and where, when a
/// worker is dead, what to do with a result or a failure. No sockets, no clock reads, no
/// database: time comes in as `now`, decisions go out as `SchedulerEffect`s (drained by the
/// I/O loop, persisted, then acted on). Everything is O(1) amortised per event so a sweep of
/// many short tasks is not limited by the scheduler.
public struct Scheduler: Sendable {
    public let config: SchedulerConfig

    struct Task: Sendable {
        var sweep: String
        var stage: String
        var priority: Int
        var state: TaskState
        var attemptsUsed: Int
        var inputs: [String]
        /// What an assign needs: the resolved parameters and the consumed tasks by stage.
        var params: [String: JSONValue]
        var inputsByStage: [String: String]
        var dependents: [String] = []
        var running: Set<String> = []
        /// Ready but held back until this time (retry backoff).
        var notBefore: Double = 0
        /// Bumped whenever the task is (re)queued, so stale queue entries can be skipped.
        var queueGeneration: Int = 0
    }

    struct Attempt: Sendable {
        var taskId: String
        var workerId: String
        var startedAt: Double
        /// The engine's last progress event (status display).
        var progress: JSONValue? = nil
    }

    struct Worker: Sendable {
        var capabilities: WorkerCapabilities
        var lastSeen: Double
        var alive: Bool
        var credits: Int
        var running: Set<String> = []
        /// Task ids whose artifacts this worker holds (it produced or downloaded them).
        var holds: Set<String> = []
        /// Who it is on the wire; nil for a worker restored from the database that has not
        /// said hello to this coordinator yet.
        var registration: WorkerRegistration? = nil
        /// A restored worker is not declared dead before this time (the restart grace).
        var graceUntil: Double = 0
        /// The CURVE key a restored worker registered with before the restart: only a hello
        /// under that key may adopt its attempts.
        var restoredKey: String? = nil
    }

    public struct SweepInfo: Sendable {
        public var engine: String
        public var device: String
        public var retries: Int
        public var cancelled: Bool
        /// The sweep's own dead interval (`dead_after`), if it sets one.
        public var deadAfter: Double? = nil
        /// Stages whose tasks run only on workers whose slots share no device (`exclusive`).
        public var exclusiveStages: Set<String> = []
    }

    struct QueueEntry: Sendable {
        var taskId: String
        var generation: Int
    }

    /// FIFO with a moving head; removed entries become tombstones that the head skips.
    struct Queue: Sendable {
        var entries: [QueueEntry?] = []
        var head = 0
        var live = 0

        mutating func push(_ e: QueueEntry) {
            entries.append(e)
            live += 1
        }

        mutating func compact() {
            while head < entries.count, entries[head] == nil { head += 1 }
            if head > 1024, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
        }
    }

    private(set) var tasks: [String: Task] = [:]
    private(set) var attempts: [String: Attempt] = [:]
    private(set) var workers: [String: Worker] = [:]
    /// Attempts that ended as lost or cancelled, by task: their late results still count if
    /// the task has none yet ("first valid result wins").
    private var endedAttempts: [String: Attempt] = [:]
    public private(set) var sweeps: [String: SweepInfo] = [:]
    /// Ready queues by priority (higher first).
    private var queues: [Int: Queue] = [:]
    private var priorities: [Int] = []
    /// Tasks waiting out a retry backoff.
    private var delayed: [String] = []
    /// Dead workers that still hold attempts of sweeps with a longer `dead_after` (see `tick`).
    private var holding: Set<String> = []
    private var effects: [SchedulerEffect] = []
    /// Routing identity → worker id, for registered (hello'd) workers that are alive.
    private var byIdentity: [[UInt8]: String] = [:]
    /// Artifacts of succeeded tasks (what their consumers download), by task id.
    private var artifacts: [String: [ArtifactDigest]] = [:]
    private let newAttemptId: @Sendable (Int) -> String
    private var attemptCounter = 0

    /// Attempt ids are 128 random bits (hex): a peer that did not get an assign cannot name
    /// another worker's attempt by guessing it.
    public init(config: SchedulerConfig = SchedulerConfig()) {
        self.config = config
        self.newAttemptId = { _ in Scheduler.randomAttemptId() }
    }

    /// Predictable attempt ids (`runId-N`), for tests only.
    public init(config: SchedulerConfig = SchedulerConfig(), runId: String) {
        self.config = config
        self.newAttemptId = { "\(runId)-\($0)" }
    }

    public static func randomAttemptId() -> String {
        var rng = SystemRandomNumberGenerator()
        let words = [rng.next() as UInt64, rng.next() as UInt64]
        return words.map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// Returns and clears the effects produced since the last call.
    public mutating func drainEffects() -> [SchedulerEffect] {
        defer { effects.removeAll(keepingCapacity: true) }
        return effects
    }

    // MARK: - Sweeps and tasks

    /// Adds a sweep's tasks, or refreshes them after a relaunch (states come from the store).
    /// `seeds` are all of the sweep's active tasks: a task of the sweep that the plan no longer
    /// has (a relaunch dropped it) stops running and is forgotten.
    public mutating func addSweep(
        name: String, engine: String, device: String, retries: Int, cancelled: Bool,
        deadAfter: Double? = nil, exclusiveStages: Set<String> = [], tasks seeds: [TaskSeed], now: Double = 0
    ) {
        sweeps[name] = SweepInfo(
            engine: engine, device: device, retries: retries, cancelled: cancelled,
            deadAfter: deadAfter, exclusiveStages: exclusiveStages)
        let keep = Set(seeds.map(\.id))
        var dropped: Set<String> = []
        for (id, task) in tasks where task.sweep == name && !keep.contains(id) {
            for attemptId in task.running {
                endAttempt(
                    attemptId, outcome: .cancelled, reason: "the relaunched plan no longer has this task",
                    cancelWorker: true, now: now)
            }
            tasks[id] = nil
            artifacts[id] = nil
            dropped.insert(id)
        }
        if !dropped.isEmpty { endedAttempts = endedAttempts.filter { !dropped.contains($0.value.taskId) } }
        for seed in seeds {
            if var existing = tasks[seed.id] {
                // A running task keeps running; anything else takes the store's state.
                if existing.state != .running {
                    existing.state = seed.state
                    existing.attemptsUsed = seed.attemptsUsed
                }
                tasks[seed.id] = existing
            } else {
                tasks[seed.id] = Task(
                    sweep: seed.sweep, stage: seed.stage, priority: seed.priority, state: seed.state,
                    attemptsUsed: seed.attemptsUsed, inputs: seed.inputs, params: seed.params,
                    inputsByStage: seed.inputsByStage)
            }
        }
        for seed in seeds {
            for input in seed.inputs where tasks[input] != nil {
                if !tasks[input]!.dependents.contains(seed.id) { tasks[input]!.dependents.append(seed.id) }
            }
        }
        for seed in seeds {
            guard let task = tasks[seed.id] else { continue }
            switch task.state {
            case .ready: enqueue(seed.id)
            case .pending: promoteIfInputsDone(seed.id)
            case .running where task.running.isEmpty:
                // Stored as running but no attempt survived: the store's attempts decide
                // (restoreAttempt); without one the task simply runs again.
                setState(seed.id, .ready, error: nil)
                enqueue(seed.id)
            default: break
            }
        }
    }

    /// Rebuilds the state after a coordinator restart, in the one order that keeps running
    /// work: tasks first, then the attempts the database still lists as running (so their
    /// tasks stay running instead of being requeued), then the queues. Each such attempt's
    /// worker has `config.restartGrace` to reconnect and claim it before it is lost.
    public mutating func restore(
        sweeps restored: [RestoredSweep], attempts running: [RestoredAttempt],
        artifacts stored: [String: [ArtifactDigest]], workerKeys: [String: String] = [:],
        now: Double
    ) {
        var seedsBySweep: [String: [TaskSeed]] = [:]
        for sweep in restored {
            sweeps[sweep.name] = SweepInfo(
                engine: sweep.engine, device: sweep.device, retries: sweep.retries,
                cancelled: sweep.cancelled, deadAfter: sweep.deadAfter, exclusiveStages: sweep.exclusiveStages)
            seedsBySweep[sweep.name] = sweep.tasks
            for seed in sweep.tasks where tasks[seed.id] == nil {
                tasks[seed.id] = Task(
                    sweep: seed.sweep, stage: seed.stage, priority: seed.priority, state: seed.state,
                    attemptsUsed: seed.attemptsUsed, inputs: seed.inputs, params: seed.params,
                    inputsByStage: seed.inputsByStage)
            }
        }
        for (taskId, refs) in stored { artifacts[taskId] = refs }
        for attempt in running {
            restoreAttempt(
                attemptId: attempt.id, taskId: attempt.taskId, workerId: attempt.workerId,
                startedAt: attempt.startedAt, now: now)
            if workers[attempt.workerId]?.registration == nil {
                workers[attempt.workerId]?.restoredKey = workerKeys[attempt.workerId]
            }
        }
        for sweep in restored {
            addSweep(
                name: sweep.name, engine: sweep.engine, device: sweep.device, retries: sweep.retries,
                cancelled: sweep.cancelled, deadAfter: sweep.deadAfter, exclusiveStages: sweep.exclusiveStages,
                tasks: seedsBySweep[sweep.name] ?? [])
        }
    }

    /// An attempt the store still lists as running, after a restart (see `restore`). One
    /// whose task is unknown or already final cannot be adopted: it ends as lost.
    public mutating func restoreAttempt(
        attemptId: String, taskId: String, workerId: String, startedAt: Double,
        now: Double
    ) {
        guard let task = tasks[taskId], !task.state.isFinal else {
            // A late result of it still answers as a duplicate rather than unknown.
            if tasks[taskId] != nil {
                endedAttempts[attemptId] = Attempt(taskId: taskId, workerId: workerId, startedAt: startedAt)
            }
            effects.append(
                .attemptEnded(
                    attemptId: attemptId, taskId: taskId, outcome: .lost,
                    error: "the coordinator restarted and its task is no longer runnable",
                    failure: nil))
            return
        }
        attempts[attemptId] = Attempt(taskId: taskId, workerId: workerId, startedAt: startedAt)
        tasks[taskId]!.running.insert(attemptId)
        tasks[taskId]!.state = .running
        if workers[workerId] == nil {
            workers[workerId] = Worker(
                capabilities: WorkerCapabilities(
                    engines: [], hasGPU: false, hasCPU: false,
                    slots: 0),
                lastSeen: now, alive: true, credits: 0)
            workers[workerId]!.graceUntil = now + config.restartGraceSeconds
        }
        workers[workerId]!.running.insert(attemptId)
    }

    public mutating func cancelSweep(_ name: String, now: Double) {
        guard sweeps[name] != nil else { return }
        sweeps[name]!.cancelled = true
        for (id, task) in tasks where task.sweep == name && !task.state.isFinal {
            for attemptId in task.running {
                endAttempt(attemptId, outcome: .cancelled, reason: "sweep cancelled", cancelWorker: true, now: now)
            }
            setState(id, .cancelled, error: "cancelled by the user")
        }
        effects.append(
            .log(kind: "cancel", sweep: name, taskId: nil, workerId: nil, message: "sweep \(name) cancelled"))
    }

    /// Failed and cancelled tasks of the sweep run again with a fresh retry budget.
    public mutating func retrySweep(_ name: String) -> Int {
        guard sweeps[name] != nil else { return 0 }
        sweeps[name]!.cancelled = false
        var ids: [String] = []
        for (id, task) in tasks where task.sweep == name && (task.state == .failed || task.state == .cancelled) {
            ids.append(id)
        }
        // Upstream tasks first, so dependents see their inputs pending rather than failed.
        ids.sort { tasks[$0]!.priority > tasks[$1]!.priority }
        for id in ids {
            tasks[id]!.attemptsUsed = 0
            effects.append(.attemptsUsed(taskId: id, count: 0))
            setState(id, .pending, error: nil)
        }
        for id in ids { promoteIfInputsDone(id) }
        return ids.count
    }

    // MARK: - Workers

    /// A worker said hello (first time or after a reconnect). Attempts it no longer runs are
    /// lost; attempts it runs that we no longer track are cancelled on it. `sameConnection`: a
    /// live worker said hello again on its connection (e.g. to offer an engine it has just
    /// described): an attempt assigned to it within `deadAfter` may still be on its way to it,
    /// so it is kept (the next heartbeats settle it, as in `workerRunning`).
    public mutating func workerConnected(
        id: String, capabilities: WorkerCapabilities, running: [String], now: Double,
        sameConnection: Bool = false
    ) {
        let claimed = Set(running)
        var inFlight: Set<String> = []
        if let old = workers[id] {
            for attemptId in old.running.sorted() where !claimed.contains(attemptId) {
                if sameConnection, let attempt = attempts[attemptId], now - attempt.startedAt <= config.deadAfter {
                    inFlight.insert(attemptId)
                    continue
                }
                endAttempt(
                    attemptId, outcome: .lost, reason: "worker \(id) reconnected without it", cancelWorker: false,
                    now: now)
            }
        }
        holding.remove(id)
        var worker = Worker(capabilities: capabilities, lastSeen: now, alive: true, credits: 0)
        worker.running = inFlight
        worker.holds = workers[id]?.holds ?? []
        for attemptId in claimed {
            if let attempt = attempts[attemptId], attempt.workerId == id {
                worker.running.insert(attemptId)
            } else {
                effects.append(
                    .cancel(
                        workerId: id, attemptId: attemptId,
                        reason: "the coordinator no longer tracks this attempt"))
            }
        }
        workers[id] = worker
    }

    /// A hello from a connection. A worker id that is alive under another connection or key
    /// is refused (a stolen id must not take a live worker's place or end its attempts); a
    /// reconnect from the same connection, a restored worker, or a dead one is registered.
    public mutating func workerHello(
        id: String, registration: WorkerRegistration, capabilities: WorkerCapabilities,
        running: [String], now: Double
    ) -> HelloDecision {
        if let old = workers[id], old.alive, let current = old.registration,
            current.identity != registration.identity || current.key != registration.key
        {
            effects.append(
                .log(
                    kind: "refused", sweep: nil, taskId: nil, workerId: id,
                    message: "refused a hello for worker \(id) from another connection: the id is live"))
            return .refused("worker id '\(id)' is live on another connection")
        }
        if let old = workers[id], old.registration == nil, let key = old.restoredKey, key != registration.key {
            effects.append(
                .log(
                    kind: "refused", sweep: nil, taskId: nil, workerId: id,
                    message: "refused a hello for restored worker \(id) under another CURVE key"))
            return .refused("worker id '\(id)' belongs to another key")
        }
        if let other = byIdentity[registration.identity], other != id, workers[other]?.alive == true {
            return .refused("this connection is already worker '\(other)'")
        }
        let old = workers[id]
        let sameConnection = old?.alive == true && old?.registration?.identity == registration.identity
        if let oldIdentity = old?.registration?.identity { byIdentity[oldIdentity] = nil }
        workerConnected(id: id, capabilities: capabilities, running: running, now: now, sameConnection: sameConnection)
        workers[id]!.registration = registration
        byIdentity[registration.identity] = id
        let devices = registration.info["slots"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let adopted = workers[id]!.running.count
        let what =
            sameConnection
            ? "said hello again (engines: \(capabilities.engines.sorted().joined(separator: ", ")))"
            : "joined from \(registration.host) with \(capabilities.slots) slot(s) [\(devices.joined(separator: ", "))], "
                + "engines: \(capabilities.engines.sorted().joined(separator: ", "))"
        effects.append(
            .log(
                kind: sameConnection ? "hello" : "joined", sweep: nil, taskId: nil, workerId: id,
                message: "worker \(id) \(what)" + (adopted > 0 ? "; running \(adopted) attempt(s)" : "")))
        return .accepted
    }

    /// The live worker registered on this connection (nil: it must say hello first).
    public func workerId(forIdentity identity: [UInt8]) -> String? {
        guard let id = byIdentity[identity], workers[id]?.alive == true else { return nil }
        return id
    }

    public func registration(ofWorker id: String) -> WorkerRegistration? { workers[id]?.registration }

    public mutating func workerSeen(id: String, now: Double) {
        if workers[id] != nil { workers[id]!.lastSeen = now }
    }

    /// Whether the worker is registered and alive (messages from others get a `reject`).
    public func isKnownAlive(_ id: String) -> Bool { workers[id]?.alive ?? false }

    /// Credit from the worker: slots it has free. Never more than its slots less the attempts
    /// assigned to it: after a repeated hello on the same connection the worker's ready counts
    /// slots whose assigns are still on their way to it (the scheduler keeps those attempts),
    /// and a credit for them would send a task the worker must refuse for want of a slot.
    public mutating func workerReady(id: String, credits: Int, now: Double) {
        guard let worker = workers[id], worker.alive else { return }
        workers[id]!.lastSeen = now
        let free = max(max(worker.capabilities.slots, 1) - worker.running.count, 0)
        workers[id]!.credits = min(worker.credits + max(credits, 0), free)
    }

    /// The worker said bye (or is otherwise gone for good): its attempts are lost and their
    /// tasks requeued.
    public mutating func workerGone(id: String, reason: String, now: Double) {
        guard let worker = workers[id], worker.alive else { return }
        markDead(id)
        let running = worker.running.sorted()
        effects.append(
            .log(
                kind: "left", sweep: nil, taskId: nil, workerId: id,
                message: "worker \(id) \(reason)"
                    + (running.isEmpty ? "" : "; \(running.count) attempt(s) requeued")))
        for attemptId in running {
            endAttempt(attemptId, outcome: .lost, reason: "worker \(id) \(reason)", cancelWorker: false, now: now)
        }
    }

    /// The worker has been silent for longer than the coordinator's `deadAfter`: it is dead (no
    /// more work, a message from it gets `unknown_worker`). Its attempts are lost, except those
    /// of sweeps whose own `dead_after` has not passed yet: the worker holds them until it has
    /// been silent that long (`tick`), or says hello again listing them (then they are adopted).
    mutating func workerSilent(id: String, now: Double) {
        guard let worker = workers[id], worker.alive else { return }
        markDead(id)
        let silence = now - worker.lastSeen
        let reason = "went silent for \(Self.seconds(silence))"
        var lost: [String] = []
        var held: [String] = []
        for attemptId in worker.running.sorted() {
            if silence > deadInterval(ofAttempt: attemptId) { lost.append(attemptId) } else { held.append(attemptId) }
        }
        var message = "worker \(id) \(reason): declared dead"
        if !lost.isEmpty { message += "; \(lost.count) attempt(s) lost and requeued" }
        if !held.isEmpty {
            message += "; \(held.count) attempt(s) kept until their sweep's dead_after has passed"
            holding.insert(id)
        }
        effects.append(.log(kind: "dead", sweep: nil, taskId: nil, workerId: id, level: .warn, message: message))
        for attemptId in lost {
            endAttempt(attemptId, outcome: .lost, reason: "worker \(id) \(reason)", cancelWorker: false, now: now)
        }
    }

    private mutating func markDead(_ id: String) {
        guard var worker = workers[id] else { return }
        worker.alive = false
        worker.credits = 0
        if let identity = worker.registration?.identity, byIdentity[identity] == id { byIdentity[identity] = nil }
        workers[id] = worker
        effects.append(.workerDead(workerId: id))
    }

    /// How long an attempt's worker may be silent before the attempt is lost: the coordinator's
    /// `deadAfter`, or its sweep's `dead_after` if that is longer.
    func deadInterval(ofAttempt attemptId: String) -> Double {
        guard let attempt = attempts[attemptId], let sweep = tasks[attempt.taskId].flatMap({ sweeps[$0.sweep] }),
            let own = sweep.deadAfter
        else { return config.deadAfter }
        return max(own, config.deadAfter)
    }

    /// A heartbeat listed what the worker runs. An attempt assigned to it more than `deadAfter`
    /// ago that it does not list never reached it or ended unreported: it is lost and its task
    /// runs again. (Younger attempts may still be in flight to the worker.)
    public mutating func workerRunning(id: String, running: [String], now: Double) {
        guard let worker = workers[id], worker.alive else { return }
        let listed = Set(running)
        for attemptId in worker.running.sorted() where !listed.contains(attemptId) {
            guard let attempt = attempts[attemptId], now - attempt.startedAt > config.deadAfter else { continue }
            endAttempt(
                attemptId, outcome: .lost, reason: "worker \(id) no longer runs it", cancelWorker: false, now: now)
        }
    }

    /// Records that a worker holds a task's artifacts (scheduling prefers it for consumers).
    public mutating func workerHolds(id: String, taskId: String) {
        workers[id]?.holds.insert(taskId)
    }

    // MARK: - Outcomes

    /// A result from worker `sender`. Only the worker the attempt was assigned to may report
    /// it; `artifacts` become the inputs of the task's consumers.
    public mutating func resultArrived(
        attemptId: String, from sender: String, artifacts produced: [ArtifactDigest] = [],
        now: Double
    ) -> ResultDecision {
        guard let attempt = attempts[attemptId] ?? endedAttempts[attemptId], let task = tasks[attempt.taskId] else {
            return .unknown
        }
        guard attempt.workerId == sender else {
            effects.append(
                .log(
                    kind: "refused", sweep: task.sweep, taskId: attempt.taskId, workerId: sender,
                    message: "refused a result for attempt \(attemptId) of worker \(attempt.workerId) "
                        + "sent by worker \(sender)"))
            return .notYours
        }
        if task.state == .failed || task.state == .cancelled {
            // Too late: the task ended for good and its consumers with it; storing this would
            // leave a succeeded task with failed consumers. `retry` runs it again.
            endedAttempts[attemptId] = nil
            effects.append(
                .log(
                    kind: "late", sweep: task.sweep, taskId: attempt.taskId, workerId: sender,
                    message: "late result of attempt \(attemptId) dropped: the task already "
                        + "\(task.state.rawValue)"))
            return .unknown
        }
        endedAttempts[attemptId] = nil
        let taskId = attempt.taskId
        if task.state == .succeeded {
            dropAttempt(attemptId)
            effects.append(
                .attemptEnded(
                    attemptId: attemptId, taskId: taskId, outcome: .duplicate,
                    error: "a result for this task was already stored", failure: nil))
            effects.append(
                .log(
                    kind: "duplicate", sweep: task.sweep, taskId: taskId, workerId: attempt.workerId,
                    message: "late result of attempt \(attemptId) dropped"))
            return .duplicate(taskId: taskId)
        }
        dropAttempt(attemptId)
        effects.append(
            .attemptEnded(attemptId: attemptId, taskId: taskId, outcome: .succeeded, error: nil, failure: nil))
        workers[attempt.workerId]?.holds.insert(taskId)
        if !produced.isEmpty { artifacts[taskId] = produced }
        for other in tasks[taskId]!.running {
            endAttempt(
                other, outcome: .cancelled, reason: "another attempt's result was stored", cancelWorker: true,
                now: now)
        }
        setState(taskId, .succeeded, error: nil)
        for dependent in tasks[taskId]!.dependents { promoteIfInputsDone(dependent) }
        return .accept(taskId: taskId)
    }

    /// Worker `sender` reported a failed attempt; the report travels in the `attemptEnded`
    /// effect. Only the attempt's own worker may fail it.
    public mutating func failureArrived(
        attemptId: String, from sender: String, _ report: FailureReport,
        now: Double
    ) -> FailureDecision {
        guard let attempt = attempts[attemptId] else { return .unknown }
        guard attempt.workerId == sender else {
            effects.append(
                .log(
                    kind: "refused", sweep: tasks[attempt.taskId]?.sweep, taskId: attempt.taskId,
                    workerId: sender,
                    message: "refused a failure for attempt \(attemptId) of worker \(attempt.workerId) "
                        + "sent by worker \(sender)"))
            return .notYours
        }
        dropAttempt(attemptId)
        // A time limit says nothing about the task itself: retried like a lost attempt.
        let retryable = report.retryable || report.timedOut
        let outcome: AttemptOutcome = report.timedOut ? .timeout : (retryable ? .failed : .invalid)
        effects.append(
            .attemptEnded(
                attemptId: attemptId, taskId: attempt.taskId, outcome: outcome,
                error: report.error, failure: report))
        settleAfterAttempt(
            attempt.taskId, attemptId: attemptId, retryable: retryable,
            error: report.timedOut ? "timed out: \(report.error)" : report.error, now: now,
            workerId: sender)
        return .recorded(tasks[attempt.taskId]?.state ?? .failed)
    }

    /// A progress or metric event from worker `sender`; false when the attempt is not its own.
    /// Only a `progress` event replaces the attempt's last progress, and only with the fields
    /// `status` shows, range-checked (`AttemptProgress.checked`): a metric event in between
    /// must not hide the epoch and loss.
    public mutating func progressArrived(attemptId: String, from sender: String, event: JSONValue) -> Bool {
        guard attempts[attemptId]?.workerId == sender else { return false }
        if let checked = AttemptProgress.checked(event) { attempts[attemptId]!.progress = checked }
        return true
    }

    /// Advances time: dead workers, held attempts whose sweep's `dead_after` passed, retry
    /// backoffs that expired.
    public mutating func tick(now: Double) {
        for (id, worker) in workers
        where worker.alive && now - worker.lastSeen > config.deadAfter && now > worker.graceUntil {
            workerSilent(id: id, now: now)
        }
        if !holding.isEmpty {
            for id in holding.sorted() {
                guard let worker = workers[id], !worker.alive else {
                    holding.remove(id)
                    continue
                }
                let silence = now - worker.lastSeen
                for attemptId in worker.running.sorted() where silence > deadInterval(ofAttempt: attemptId) {
                    endAttempt(
                        attemptId, outcome: .lost,
                        reason: "worker \(id) went silent for \(Self.seconds(silence)) (the sweep's dead_after)",
                        cancelWorker: false, now: now)
                }
                if workers[id]?.running.isEmpty ?? true { holding.remove(id) }
            }
        }
        if !delayed.isEmpty {
            var still: [String] = []
            for id in delayed {
                guard let task = tasks[id], task.state == .ready else { continue }
                if task.notBefore <= now { enqueue(id) } else { still.append(id) }
            }
            delayed = still
        }
    }

    /// Hands ready tasks to workers with credit. Call after any event that adds credit or work.
    public mutating func dispatch(now: Double) {
        if priorities.isEmpty { return }
        for id in workers.keys.sorted() {
            while let worker = workers[id], worker.alive, worker.credits > 0 {
                guard let taskId = nextTask(for: worker) else { break }
                start(taskId: taskId, workerId: id, now: now)
            }
        }
    }

    // MARK: - Queries (status display)

    public var readyCount: Int { queues.values.reduce(0) { $0 + $1.live } + delayed.count }
    public func state(of taskId: String) -> TaskState? { tasks[taskId]?.state }
    public func attemptsUsed(of taskId: String) -> Int? { tasks[taskId]?.attemptsUsed }
    public func taskOf(attempt: String) -> String? { attempts[attempt]?.taskId }
    public func progress(ofAttempt id: String) -> JSONValue? { attempts[id]?.progress }
    /// What an assign of this task carries: its parameters, stage and sweep, and for each
    /// consumed stage the artifact to download (the checkpoint, else the only artifact).
    public func assignment(of taskId: String) -> Assignment? {
        guard let task = tasks[taskId], let sweep = sweeps[task.sweep] else { return nil }
        var inputs: [String: (taskId: String, artifact: ArtifactDigest)] = [:]
        for (stage, inputTask) in task.inputsByStage {
            let produced = artifacts[inputTask] ?? []
            if let a = produced.first(where: { $0.name == "checkpoint" }) ?? produced.first {
                inputs[stage] = (inputTask, a)
            }
        }
        return Assignment(
            sweep: task.sweep, stage: task.stage, engine: sweep.engine, device: sweep.device,
            params: task.params, inputs: inputs)
    }
    public func workerOf(attempt: String) -> String? { attempts[attempt]?.workerId }
    public func runningAttempts(ofWorker id: String) -> [String] { workers[id]?.running.sorted() ?? [] }
    public func credits(ofWorker id: String) -> Int { workers[id]?.credits ?? 0 }
    public var aliveWorkers: [String] { workers.filter { $0.value.alive }.keys.sorted() }
    /// Workers that said hello to this coordinator, alive or not (status).
    public var knownWorkers: [String] { workers.filter { $0.value.registration != nil }.keys.sorted() }
    public func startedAt(attempt: String) -> Double? { attempts[attempt]?.startedAt }
    public func lastSeen(ofWorker id: String) -> Double? { workers[id]?.lastSeen }
    public func capabilities(ofWorker id: String) -> WorkerCapabilities? { workers[id]?.capabilities }

    /// Counts by state for one sweep.
    public func counts(sweep: String) -> [TaskState: Int] {
        var out: [TaskState: Int] = [:]
        for task in tasks.values where task.sweep == sweep { out[task.state, default: 0] += 1 }
        return out
    }

    /// Why a sweep's ready tasks are not running, if no alive worker can run them.
    public func waitingReason(sweep: String) -> String? {
        guard let info = sweeps[sweep], !info.cancelled else { return nil }
        let alive = workers.values.filter { $0.alive && $0.capabilities.slots > 0 }
        if alive.isEmpty { return "no worker is connected" }
        if !alive.contains(where: { $0.capabilities.canRun(engine: info.engine, device: info.device) }) {
            let engines = Set(alive.flatMap { $0.capabilities.engines }).sorted().joined(separator: ", ")
            return
                "no connected worker can run engine '\(info.engine)' on device '\(info.device)' (workers offer: \(engines))"
        }
        // Ready tasks of exclusive stages wait for a worker whose slots share no device (the
        // tasks are looked at only when the sweep has such stages and no such worker is there).
        guard !info.exclusiveStages.isEmpty else { return nil }
        if !alive.contains(where: {
            $0.capabilities.canRun(engine: info.engine, device: info.device, exclusive: true)
        }),
            case let waitingStages = Set(
                tasks.values.filter { $0.sweep == sweep && $0.state == .ready }.map(\.stage)
            ).intersection(info.exclusiveStages), !waitingStages.isEmpty
        {
            let stages = waitingStages.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return
                "no connected worker can run engine '\(info.engine)' on device '\(info.device)' exclusively "
                + "(stage \(stages) asks for `exclusive`; every connected worker shares its devices: --per-gpu "
                + "above 1 or several CPU slots)"
        }
        return nil
    }

    // MARK: - Internals

    private mutating func setState(_ id: String, _ state: TaskState, error: String?) {
        guard tasks[id] != nil, tasks[id]!.state != state || error != nil else { return }
        tasks[id]!.state = state
        effects.append(.taskState(taskId: id, state: state, error: error))
    }

    private mutating func enqueue(_ id: String) {
        guard var task = tasks[id] else { return }
        task.queueGeneration += 1
        tasks[id] = task
        if queues[task.priority] == nil {
            queues[task.priority] = Queue()
            priorities.append(task.priority)
            priorities.sort(by: >)
        }
        queues[task.priority]!.push(QueueEntry(taskId: id, generation: task.queueGeneration))
    }

    private mutating func promoteIfInputsDone(_ id: String) {
        guard let task = tasks[id], task.state == .pending else { return }
        if let sweep = sweeps[task.sweep], sweep.cancelled { return }
        for input in task.inputs {
            switch tasks[input]?.state {
            case .succeeded: continue
            case .failed, .cancelled:
                setState(id, .failed, error: "input task \(input.prefix(12)) (\(tasks[input]!.stage)) did not succeed")
                for dependent in task.dependents { promoteIfInputsDone(dependent) }
                return
            default: return
            }
        }
        setState(id, .ready, error: nil)
        enqueue(id)
    }

    private func runnable(_ entry: QueueEntry, by worker: Worker) -> Bool {
        guard let task = tasks[entry.taskId], task.state == .ready, task.queueGeneration == entry.generation,
            let sweep = sweeps[task.sweep], !sweep.cancelled
        else { return false }
        return worker.capabilities.canRun(
            engine: sweep.engine, device: sweep.device, exclusive: sweep.exclusiveStages.contains(task.stage))
    }

    private func isStale(_ entry: QueueEntry) -> Bool {
        guard let task = tasks[entry.taskId] else { return true }
        return task.state != .ready || task.queueGeneration != entry.generation
            || sweeps[task.sweep]?.cancelled == true
    }

    /// Highest priority first; within the top `affinityWindow` runnable entries, prefer a task
    /// whose inputs the worker already holds.
    private mutating func nextTask(for worker: Worker) -> String? {
        var emptied: [Int] = []
        defer {
            if !emptied.isEmpty {
                for p in emptied { queues[p] = nil }
                priorities.removeAll { emptied.contains($0) }
            }
        }
        for priority in priorities {
            // Taken out of the dictionary so it is uniquely referenced: mutating a copy that
            // the dictionary still shares would copy the whole queue on every dispatch.
            guard var queue = queues.removeValue(forKey: priority) else { continue }
            var chosen: Int? = nil
            var seen = 0
            var index = queue.head
            while index < queue.entries.count, seen < config.affinityWindow {
                if let entry = queue.entries[index] {
                    if isStale(entry) {
                        queue.entries[index] = nil
                        queue.live -= 1
                    } else if runnable(entry, by: worker) {
                        if chosen == nil { chosen = index }
                        let inputs = tasks[entry.taskId]!.inputs
                        if !inputs.isEmpty, inputs.allSatisfy({ worker.holds.contains($0) }) {
                            chosen = index
                            break
                        }
                        if inputs.isEmpty { break }  // nothing to prefer among input-less tasks
                        seen += 1
                    }
                }
                index += 1
            }
            // The affinity window can miss a runnable task further back (e.g. a GPU-only
            // sweep's tasks ahead of CPU ones): scan on for the first runnable one.
            if chosen == nil {
                while index < queue.entries.count {
                    if let entry = queue.entries[index] {
                        if isStale(entry) {
                            queue.entries[index] = nil
                            queue.live -= 1
                        } else if runnable(entry, by: worker) {
                            chosen = index
                            break
                        }
                    }
                    index += 1
                }
            }
            var picked: String? = nil
            if let chosen {
                picked = queue.entries[chosen]!.taskId
                queue.entries[chosen] = nil
                queue.live -= 1
            }
            queue.compact()
            if queue.live == 0 {
                emptied.append(priority)
            }
            queues[priority] = queue
            if let picked { return picked }
        }
        return nil
    }

    private mutating func start(taskId: String, workerId: String, now: Double) {
        attemptCounter += 1
        let attemptId = newAttemptId(attemptCounter)
        tasks[taskId]!.attemptsUsed += 1
        tasks[taskId]!.running.insert(attemptId)
        attempts[attemptId] = Attempt(taskId: taskId, workerId: workerId, startedAt: now)
        workers[workerId]!.credits -= 1
        workers[workerId]!.running.insert(attemptId)
        tasks[taskId]!.state = .running
        effects.append(
            .attemptStarted(
                attemptId: attemptId, taskId: taskId, workerId: workerId,
                attemptsUsed: tasks[taskId]!.attemptsUsed))
        effects.append(.assign(workerId: workerId, attemptId: attemptId, taskId: taskId))
    }

    private mutating func dropAttempt(_ attemptId: String) {
        guard let attempt = attempts.removeValue(forKey: attemptId) else { return }
        tasks[attempt.taskId]?.running.remove(attemptId)
        workers[attempt.workerId]?.running.remove(attemptId)
    }

    private mutating func endAttempt(
        _ attemptId: String, outcome: AttemptOutcome, reason: String, cancelWorker: Bool,
        now: Double
    ) {
        guard let attempt = attempts[attemptId] else { return }
        dropAttempt(attemptId)
        endedAttempts[attemptId] = attempt
        effects.append(
            .attemptEnded(
                attemptId: attemptId, taskId: attempt.taskId, outcome: outcome, error: reason,
                failure: nil))
        if cancelWorker, workers[attempt.workerId]?.alive == true {
            effects.append(.cancel(workerId: attempt.workerId, attemptId: attemptId, reason: reason))
        }
        if outcome == .lost {
            settleAfterAttempt(
                attempt.taskId, attemptId: attemptId, retryable: true, error: reason, now: now,
                workerId: attempt.workerId)
        }
    }

    /// After an attempt of a task ended badly: retry with backoff, or fail for good.
    private mutating func settleAfterAttempt(
        _ taskId: String, attemptId: String, retryable: Bool, error: String,
        now: Double, workerId: String? = nil
    ) {
        guard let task = tasks[taskId], task.state == .running, task.running.isEmpty else { return }
        let retries = sweeps[task.sweep]?.retries ?? 0
        if sweeps[task.sweep]?.cancelled == true {
            setState(taskId, .cancelled, error: "cancelled by the user")
            return
        }
        let workerId = workerId ?? endedAttempts[attemptId]?.workerId
        if retryable, task.attemptsUsed <= retries {
            let delay = min(config.retryBackoff * Double(1 << min(task.attemptsUsed - 1, 20)), config.retryBackoffMax)
            tasks[taskId]!.notBefore = now + delay
            setState(taskId, .ready, error: nil)
            effects.append(
                .log(
                    kind: "retry", sweep: task.sweep, taskId: taskId, workerId: workerId,
                    attemptId: attemptId,
                    message: "task \(label(taskId)) requeued: attempt \(task.attemptsUsed) of \(retries + 1) "
                        + "ended (\(error)); retrying in \(Self.seconds(delay))"))
            if delay <= 0 { enqueue(taskId) } else { delayed.append(taskId) }
        } else {
            let why = retryable ? "\(error) (after \(task.attemptsUsed) attempt(s))" : error
            setState(taskId, .failed, error: why)
            effects.append(
                .log(
                    kind: "failed", sweep: task.sweep, taskId: taskId, workerId: workerId,
                    attemptId: attemptId, level: .warn, message: "task \(label(taskId)) failed: \(why)"))
            failDependents(of: taskId)
        }
    }

    /// "train resnet18 magnitude seed 0 [1a2b3c4d5e6f]", for log lines.
    private func label(_ taskId: String) -> String {
        guard let task = tasks[taskId] else { return String(taskId.prefix(12)) }
        var parts = [task.stage]
        for key in ["model", "method"] { if let v = task.params[key]?.displayText { parts.append(v) } }
        if let seed = task.params["seed"]?.displayText { parts.append("seed \(seed)") }
        return parts.joined(separator: " ") + " [\(taskId.prefix(12))]"
    }

    /// "30 s", "2.5 s": a duration in log lines.
    public static func seconds(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded)) s" : "\(rounded) s"
    }

    private mutating func failDependents(of id: String) {
        for dependent in tasks[id]?.dependents ?? [] { promoteIfInputsDone(dependent) }
    }
}
