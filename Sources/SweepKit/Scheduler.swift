/// The coordinator's brain as a pure state machine: which task runs next and where, when a
/// worker is dead, what to do with a result or a failure. No sockets, no clock reads, no
/// database: time comes in as `now`, decisions go out as `SchedulerEffect`s (drained by the
/// I/O loop, persisted, then acted on). Everything is O(1) amortised per event so a sweep of
/// many short tasks is not limited by the scheduler.
public struct Scheduler: Sendable {
    public let config: SchedulerConfig

    /// A slot of `tasks`: the task's place for as long as this scheduler lives. A million tasks
    /// are held at once (issue #12), so the record is compact: ids are their 32 bytes, other
    /// tasks, names and parameters are small integers into shared tables, and what few tasks
    /// have (running attempts, a retry backoff, artifacts) lives in side tables keyed by slot.
    typealias Slot = Int32

    /// One task. A slot whose `sweep` is `Task.absent` holds no task: an id a task consumes
    /// (or a worker holds) that the scheduler does not (or no longer) hold keeps its slot, so
    /// that a task added under that id later is found through it, as lookups by id found it.
    struct Task: Sendable {
        static let absent: Int32 = -1

        /// The id when it is 64 lower-case hex digits (`hexId`, as the planner makes them);
        /// any other id is in `textIds`.
        var digest: Digest
        var priority: Int = 0
        var attemptsUsed: Int = 0
        /// What an assign needs and the tasks it consumes, in one allocation: the number of
        /// parameters, the parameters (indices into `paramTable`), then each `Link` as two
        /// words (the consumed tasks of `inputs`, in order, and of `inputsByStage`). Empty for
        /// a task with neither.
        var body: [Int32] = []
        var dependents: [Slot] = []
        /// Sweep and stage names, as indices into `names`; `sweep` is `absent` for an empty slot.
        var sweep: Int32 = Task.absent
        var stage: Int32 = Task.absent
        /// Bumped whenever the task is (re)queued, so stale queue entries can be skipped.
        var queueGeneration: UInt32 = 0
        var state: TaskState = .pending
        var hexId: Bool

        var isPresent: Bool { sweep != Task.absent }

        /// An empty slot for the id `digest` (or `textIds`) stands for.
        init(digest: Digest, hexId: Bool) {
            self.digest = digest
            self.hexId = hexId
        }

        /// The resolved parameters, as indices into `paramTable`.
        var params: ArraySlice<Int32> { body.isEmpty ? [] : body[1..<(1 + Int(body[0]))] }

        var linkCount: Int { body.isEmpty ? 0 : (body.count - 1 - Int(body[0])) / 2 }

        func link(_ i: Int) -> Link {
            let at = 1 + Int(body[0]) + 2 * i
            return Link(task: body[at], bits: UInt32(bitPattern: body[at + 1]))
        }

        var links: LazyMapSequence<Range<Int>, Link> { (0..<linkCount).lazy.map { link($0) } }
    }

    /// A 64-hex task id as its 32 bytes (four big-endian words).
    struct Digest: Sendable, Hashable {
        var w0: UInt64 = 0
        var w1: UInt64 = 0
        var w2: UInt64 = 0
        var w3: UInt64 = 0

        init() {}

        /// nil unless `id` is exactly 64 lower-case hex digits (so that `hex` gives it back).
        init?(hex id: String) {
            guard id.utf8.count == 64 else { return nil }
            let parsed: Digest?
            if let contiguous = id.utf8.withContiguousStorageIfAvailable({ Digest.parse($0) }) {
                parsed = contiguous
            } else {
                parsed = Array(id.utf8).withUnsafeBufferPointer { Digest.parse($0) }
            }
            guard let parsed else { return nil }
            self = parsed
        }

        /// 64 lower-case hex digits as a digest (nil for anything else); every task lookup by
        /// id runs this, so it is a plain loop over the bytes.
        private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Digest? {
            guard bytes.count == 64 else { return nil }
            var digest = Digest()
            var word: UInt64 = 0
            for i in 0..<64 {
                let byte = bytes[i]
                var nibble = byte &- 0x30  // "0"
                if nibble > 9 {
                    nibble = byte &- 0x61  // "a"
                    guard nibble < 6 else { return nil }
                    nibble &+= 10
                }
                word = word << 4 | UInt64(nibble)
                guard i & 15 == 15 else { continue }
                switch i >> 4 {
                case 0: digest.w0 = word
                case 1: digest.w1 = word
                case 2: digest.w2 = word
                default: digest.w3 = word
                }
                word = 0
            }
            return digest
        }

        var hex: String {
            String(unsafeUninitializedCapacity: 64) { (buffer: UnsafeMutableBufferPointer<UInt8>) -> Int in
                func write(_ word: UInt64, at start: Int) {
                    for i in 0..<16 { buffer[start + i] = Digest.digits[Int(word >> UInt64(60 - 4 * i) & 0xF)] }
                }
                write(w0, at: 0)
                write(w1, at: 16)
                write(w2, at: 32)
                write(w3, at: 48)
                return 64
            }
        }

        private static let digits = Array("0123456789abcdef".utf8)
    }

    /// A task another one consumes: one of its `inputs` (`isInput`, in their order), the task
    /// its `inputsByStage` names for a stage (`stage`, an index into `names`), or both.
    struct Link: Sendable {
        var task: Slot
        /// Bit 31: one of `inputs`; the low bits: 1 + the stage's index in `names`, 0 for none.
        var bits: UInt32

        static let inputBit: UInt32 = 1 << 31

        var isInput: Bool { bits & Link.inputBit != 0 }
        /// The consumed stage, as an index into `names`; nil when `inputsByStage` does not name it.
        var stage: Int32? {
            let low = bits & ~Link.inputBit
            return low == 0 ? nil : Int32(low - 1)
        }
    }

    /// One resolved parameter, shared by every task that has it (a sweep's grid repeats each
    /// value across many tasks). Equal means the same JSON bytes: strings and keys compare by
    /// their UTF-8, numbers by their bits, so a task gets back exactly the value it was given.
    struct Param: Sendable, Hashable {
        var key: String
        var value: JSONValue

        static func == (a: Param, b: Param) -> Bool {
            a.key.utf8.elementsEqual(b.key.utf8) && Param.same(a.value, b.value)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(key)
            hasher.combine(value)
        }

        static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
            switch (a, b) {
            case (.null, .null): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.number(let x), .number(let y)): return x.bitPattern == y.bitPattern
            case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
            case (.array(let x), .array(let y)):
                return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
            case (.object(let x), .object(let y)):
                guard x.count == y.count else { return false }
                for (key, value) in x {
                    guard let index = y.index(forKey: key), y[index].key.utf8.elementsEqual(key.utf8),
                        same(value, y[index].value)
                    else { return false }
                }
                return true
            default: return false
            }
        }
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
        /// Tasks whose artifacts this worker holds (it produced or downloaded them), by slot.
        var holds: Set<Slot> = []
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

    /// 8 bytes: a task's slot (`taken` once removed) and its queue generation.
    struct QueueEntry: Sendable {
        static let taken: Slot = -1

        var task: Slot
        var generation: UInt32

        var isTaken: Bool { task == QueueEntry.taken }
    }

    /// FIFO with a moving head; removed entries become tombstones (`taken`) that the head skips.
    struct Queue: Sendable {
        var entries: [QueueEntry] = []
        var head = 0
        var live = 0

        mutating func push(_ e: QueueEntry) {
            entries.append(e)
            live += 1
        }

        mutating func compact() {
            while head < entries.count, entries[head].isTaken { head += 1 }
            if head > 1024, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
        }
    }

    /// Every task by slot (never removed: see `Task`).
    private(set) var tasks: ContiguousArray<Task> = []
    /// Each id's slot: an open-addressing table of slots (-1: empty), hashed by id, at most
    /// 3/4 full; its size is a power of two.
    private var index: [Slot] = []
    /// The ids that are not 64-hex digests (`Task.hexId` false), by slot.
    private var textIds: [Slot: String] = [:]
    /// Sweep and stage names (`Task.sweep`, `Task.stage`, `Link.stage`), and their indices.
    private(set) var names: [String] = []
    private var nameIndex: [String: Int32] = [:]
    /// Resolved parameters (`Task.params`), and their indices.
    private var paramTable: [Param] = []
    private var paramIndex: [Param: Int32] = [:]
    /// The attempts running a task, for the few tasks that have any.
    private var running: [Slot: Set<String>] = [:]
    /// Ready but held back until this time (retry backoff), for tasks that were retried.
    private(set) var notBefore: [Slot: Double] = [:]
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
    private var delayed: [Slot] = []
    /// Dead workers that still hold attempts of sweeps with a longer `dead_after` (see `tick`).
    private var holding: Set<String> = []
    private var effects: [SchedulerEffect] = []
    /// Routing identity → worker id, for registered (hello'd) workers that are alive.
    private var byIdentity: [[UInt8]: String] = [:]
    /// The artifact of a succeeded task that its consumers download (its checkpoint, else its
    /// only or first artifact), by slot.
    private var artifacts: [Slot: ArtifactDigest] = [:]
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
        var dropped: Set<String> = []
        if let sweep = nameIndex[name] {
            var keep: Set<Slot> = []
            keep.reserveCapacity(seeds.count)
            for seed in seeds { if let slot = lookup(seed.id) { keep.insert(slot) } }
            for slot in tasks.indices where tasks[slot].sweep == sweep && !keep.contains(Slot(slot)) {
                let id = idAt(Slot(slot))
                for attemptId in running[Slot(slot)] ?? [] {
                    endAttempt(
                        attemptId, outcome: .cancelled, reason: "the relaunched plan no longer has this task",
                        cancelWorker: true, now: now)
                }
                remove(Slot(slot))
                artifacts[Slot(slot)] = nil
                dropped.insert(id)
            }
        }
        if !dropped.isEmpty { endedAttempts = endedAttempts.filter { !dropped.contains($0.value.taskId) } }
        reserve(seeds.count)
        // Each seed's slot, looked up once: every seed has a task from here on.
        var seedSlots: [Slot] = []
        seedSlots.reserveCapacity(seeds.count)
        for seed in seeds {
            let known = lookup(seed.id)
            if let slot = known, tasks[slot].isPresent {
                // A running task keeps running; anything else takes the store's state.
                if tasks[slot].state != .running {
                    tasks[slot].state = seed.state
                    tasks[slot].attemptsUsed = seed.attemptsUsed
                }
                seedSlots.append(slot)
            } else {
                let slot = known ?? newSlot(for: seed.id)
                insert(seed, at: slot)
                seedSlots.append(slot)
            }
        }
        for (seed, consumer) in zip(seeds, seedSlots) {
            for input in seed.inputs {
                guard let slot = self.slot(of: input) else { continue }
                if !tasks[slot].dependents.contains(consumer) { tasks[slot].dependents.append(consumer) }
            }
        }
        for slot in seedSlots {
            switch tasks[slot].state {
            case .ready: enqueue(slot)
            case .pending: promoteIfInputsDone(slot)
            case .running where running[slot] == nil:
                // Stored as running but no attempt survived: the store's attempts decide
                // (restoreAttempt); without one the task simply runs again.
                setState(slot, .ready, error: nil)
                enqueue(slot)
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
            reserve(sweep.tasks.count)
            for seed in sweep.tasks {
                let known = lookup(seed.id)
                if let slot = known, tasks[slot].isPresent { continue }
                insert(seed, at: known ?? newSlot(for: seed.id))
            }
        }
        for (taskId, refs) in stored {
            let slot = self.slot(for: taskId)
            artifacts[slot] = Self.consumed(refs)
        }
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
        guard let slot = self.slot(of: taskId), !tasks[slot].state.isFinal else {
            // A late result of it still answers as a duplicate rather than unknown.
            if self.slot(of: taskId) != nil {
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
        running[slot, default: []].insert(attemptId)
        tasks[slot].state = .running
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
        if let sweep = nameIndex[name] {
            for slot in tasks.indices where tasks[slot].sweep == sweep && !tasks[slot].state.isFinal {
                for attemptId in running[Slot(slot)] ?? [] {
                    endAttempt(
                        attemptId, outcome: .cancelled, reason: "sweep cancelled", cancelWorker: true, now: now)
                }
                setState(Slot(slot), .cancelled, error: "cancelled by the user")
            }
        }
        effects.append(
            .log(kind: "cancel", sweep: name, taskId: nil, workerId: nil, message: "sweep \(name) cancelled"))
    }

    /// Failed and cancelled tasks of the sweep run again with a fresh retry budget.
    public mutating func retrySweep(_ name: String) -> Int {
        guard sweeps[name] != nil else { return 0 }
        sweeps[name]!.cancelled = false
        var ids: [Slot] = []
        if let sweep = nameIndex[name] {
            for slot in tasks.indices
            where tasks[slot].sweep == sweep && (tasks[slot].state == .failed || tasks[slot].state == .cancelled) {
                ids.append(Slot(slot))
            }
        }
        // Upstream tasks first, so dependents see their inputs pending rather than failed.
        ids.sort { tasks[$0].priority > tasks[$1].priority }
        for slot in ids {
            tasks[slot].attemptsUsed = 0
            effects.append(.attemptsUsed(taskId: idAt(slot), count: 0))
            setState(slot, .pending, error: nil)
        }
        for slot in ids { promoteIfInputsDone(slot) }
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
        guard let attempt = attempts[attemptId], let slot = self.slot(of: attempt.taskId),
            let sweep = sweeps[names[Int(tasks[slot].sweep)]],
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
        guard workers[id] != nil else { return }
        let slot = self.slot(for: taskId)
        workers[id]!.holds.insert(slot)
    }

    // MARK: - Outcomes

    /// A result from worker `sender`. Only the worker the attempt was assigned to may report
    /// it; `artifacts` become the inputs of the task's consumers.
    public mutating func resultArrived(
        attemptId: String, from sender: String, artifacts produced: [ArtifactDigest] = [],
        now: Double
    ) -> ResultDecision {
        guard let attempt = attempts[attemptId] ?? endedAttempts[attemptId], let slot = self.slot(of: attempt.taskId)
        else {
            return .unknown
        }
        let task = tasks[slot]
        let sweepName = names[Int(task.sweep)]
        guard attempt.workerId == sender else {
            effects.append(
                .log(
                    kind: "refused", sweep: sweepName, taskId: attempt.taskId, workerId: sender,
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
                    kind: "late", sweep: sweepName, taskId: attempt.taskId, workerId: sender,
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
                    kind: "duplicate", sweep: sweepName, taskId: taskId, workerId: attempt.workerId,
                    message: "late result of attempt \(attemptId) dropped"))
            return .duplicate(taskId: taskId)
        }
        dropAttempt(attemptId)
        effects.append(
            .attemptEnded(attemptId: attemptId, taskId: taskId, outcome: .succeeded, error: nil, failure: nil))
        workers[attempt.workerId]?.holds.insert(slot)
        if !produced.isEmpty { artifacts[slot] = Self.consumed(produced) }
        for other in running[slot] ?? [] {
            endAttempt(
                other, outcome: .cancelled, reason: "another attempt's result was stored", cancelWorker: true,
                now: now)
        }
        setState(slot, .succeeded, error: nil)
        for dependent in tasks[slot].dependents { promoteIfInputsDone(dependent) }
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
                    kind: "refused", sweep: self.slot(of: attempt.taskId).map { names[Int(tasks[$0].sweep)] },
                    taskId: attempt.taskId,
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
        return .recorded(self.slot(of: attempt.taskId).map { tasks[$0].state } ?? .failed)
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
            var still: [Slot] = []
            for slot in delayed {
                guard tasks[slot].isPresent, tasks[slot].state == .ready else { continue }
                if notBefore[slot] ?? 0 <= now { enqueue(slot) } else { still.append(slot) }
            }
            delayed = still
        }
    }

    /// Hands ready tasks to workers with credit. Call after any event that adds credit or work.
    public mutating func dispatch(now: Double) {
        if priorities.isEmpty { return }
        for id in workers.keys.sorted() {
            while let worker = workers[id], worker.alive, worker.credits > 0 {
                guard let slot = nextTask(for: worker) else { break }
                start(slot: slot, workerId: id, now: now)
            }
        }
    }

    // MARK: - Queries (status display)

    public var readyCount: Int { queues.values.reduce(0) { $0 + $1.live } + delayed.count }
    public func state(of taskId: String) -> TaskState? { self.slot(of: taskId).map { tasks[$0].state } }
    public func attemptsUsed(of taskId: String) -> Int? { self.slot(of: taskId).map { tasks[$0].attemptsUsed } }
    public func taskOf(attempt: String) -> String? { attempts[attempt]?.taskId }
    public func progress(ofAttempt id: String) -> JSONValue? { attempts[id]?.progress }
    /// What an assign of this task carries: its parameters, stage and sweep, and for each
    /// consumed stage the artifact to download (the checkpoint, else the only artifact).
    public func assignment(of taskId: String) -> Assignment? {
        guard let slot = self.slot(of: taskId) else { return nil }
        let task = tasks[slot]
        let sweepName = names[Int(task.sweep)]
        guard let sweep = sweeps[sweepName] else { return nil }
        var inputs: [String: (taskId: String, artifact: ArtifactDigest)] = [:]
        for link in task.links {
            guard let stage = link.stage, let a = artifacts[link.task] else { continue }
            inputs[names[Int(stage)]] = (idAt(link.task), a)
        }
        return Assignment(
            sweep: sweepName, stage: names[Int(task.stage)], engine: sweep.engine, device: sweep.device,
            params: params(of: task), inputs: inputs)
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
        guard let sweep = nameIndex[sweep] else { return out }
        for task in tasks where task.sweep == sweep { out[task.state, default: 0] += 1 }
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
            let index = nameIndex[sweep],
            case let waitingStages = Set(
                tasks.lazy.filter { $0.sweep == index && $0.state == .ready }.map { names[Int($0.stage)] }
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

    /// The slot of the task with this id, if the scheduler holds it.
    func slot(of id: String) -> Slot? {
        guard let slot = lookup(id), tasks[slot].isPresent else { return nil }
        return slot
    }

    /// The id of the task (or empty slot) in `slot`.
    func idAt(_ slot: Slot) -> String {
        tasks[slot].hexId ? tasks[slot].digest.hex : textIds[slot]!
    }

    /// The slot `id` has, with or without a task.
    private func lookup(_ id: String) -> Slot? {
        guard !index.isEmpty else { return nil }
        let mask = index.count - 1
        if let digest = Digest(hex: id) {
            var at = digest.hashValue & mask
            while index[at] >= 0 {
                let slot = index[at]
                if tasks[slot].hexId, tasks[slot].digest == digest { return slot }
                at = (at + 1) & mask
            }
        } else {
            var at = id.hashValue & mask
            while index[at] >= 0 {
                let slot = index[at]
                if !tasks[slot].hexId, textIds[slot] == id { return slot }
                at = (at + 1) & mask
            }
        }
        return nil
    }

    /// The slot of `id`, an empty one if the id has none yet.
    private mutating func slot(for id: String) -> Slot {
        lookup(id) ?? newSlot(for: id)
    }

    /// A new, empty slot for `id`, which has none.
    private mutating func newSlot(for id: String) -> Slot {
        precondition(tasks.count < Int(Slot.max), "too many tasks for one scheduler")
        growIndex(toHold: tasks.count + 1)
        let slot = Slot(tasks.count)
        if let digest = Digest(hex: id) {
            tasks.append(Task(digest: digest, hexId: true))
        } else {
            tasks.append(Task(digest: Digest(), hexId: false))
            textIds[slot] = id
        }
        place(slot)
        return slot
    }

    /// Enters `slot` into `index` (which has room).
    private mutating func place(_ slot: Slot) {
        let mask = index.count - 1
        var at = (tasks[slot].hexId ? tasks[slot].digest.hashValue : textIds[slot]!.hashValue) & mask
        while index[at] >= 0 { at = (at + 1) & mask }
        index[at] = slot
    }

    /// Makes `index` big enough for `count` ids (rebuilding it from `tasks`).
    private mutating func growIndex(toHold count: Int) {
        guard count * 4 > index.count * 3 else { return }
        var size = max(index.count, 16)
        while count * 4 > size * 3 { size *= 2 }
        index = [Slot](repeating: -1, count: size)
        for slot in tasks.indices { place(Slot(slot)) }
    }

    /// Room for `count` more tasks, so that a big launch does not leave the task list with up
    /// to twice the room it needs.
    private mutating func reserve(_ count: Int) {
        if tasks.count + count > tasks.capacity { tasks.reserveCapacity(tasks.count + count) }
        growIndex(toHold: tasks.count + count)
    }

    /// What consumers of a task that produced these artifacts download: the checkpoint, else
    /// the first (only) artifact.
    private static func consumed(_ produced: [ArtifactDigest]) -> ArtifactDigest? {
        produced.first(where: { $0.name == "checkpoint" }) ?? produced.first
    }

    private mutating func name(_ name: String) -> Int32 {
        if let index = nameIndex[name] { return index }
        let index = Int32(names.count)
        names.append(name)
        nameIndex[name] = index
        return index
    }

    private mutating func param(_ key: String, _ value: JSONValue) -> Int32 {
        let param = Param(key: key, value: value)
        if let index = paramIndex[param] { return index }
        let index = Int32(paramTable.count)
        paramTable.append(param)
        paramIndex[param] = index
        return index
    }

    /// Puts the seed's task into `slot` (its id's, which holds no task now), with the fields a
    /// new task starts with.
    private mutating func insert(_ seed: TaskSeed, at slot: Slot) {
        var links: [Link] = []
        links.reserveCapacity(seed.inputs.count + seed.inputsByStage.count)
        for input in seed.inputs { links.append(Link(task: self.slot(for: input), bits: Link.inputBit)) }
        for (stage, input) in seed.inputsByStage {
            let task = self.slot(for: input)
            let bits = UInt32(name(stage)) + 1
            if let index = links.firstIndex(where: { $0.task == task && $0.isInput && $0.stage == nil }) {
                links[index].bits |= bits
            } else {
                links.append(Link(task: task, bits: bits))
            }
        }
        var body: [Int32] = []
        if !seed.params.isEmpty || !links.isEmpty {
            body.reserveCapacity(1 + seed.params.count + 2 * links.count)
            body.append(Int32(seed.params.count))
            for (key, value) in seed.params { body.append(param(key, value)) }
            for link in links {
                body.append(link.task)
                body.append(Int32(bitPattern: link.bits))
            }
        }
        var task = Task(digest: tasks[slot].digest, hexId: tasks[slot].hexId)
        task.priority = seed.priority
        task.attemptsUsed = seed.attemptsUsed
        task.body = body
        task.sweep = name(seed.sweep)
        task.stage = name(seed.stage)
        task.state = seed.state
        tasks[slot] = task
    }

    /// Forgets the task in `slot` (its slot stays, empty, for its id).
    private mutating func remove(_ slot: Slot) {
        tasks[slot] = Task(digest: tasks[slot].digest, hexId: tasks[slot].hexId)
        running[slot] = nil
        notBefore[slot] = nil
    }

    /// The task's resolved parameters.
    private func params(of task: Task) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        out.reserveCapacity(task.params.count)
        for index in task.params {
            let param = paramTable[Int(index)]
            out[param.key] = param.value
        }
        return out
    }

    /// One of the task's resolved parameters.
    private func param(_ key: String, of task: Task) -> JSONValue? {
        for index in task.params where paramTable[Int(index)].key == key { return paramTable[Int(index)].value }
        return nil
    }

    private mutating func setState(_ slot: Slot, _ state: TaskState, error: String?) {
        guard tasks[slot].isPresent, tasks[slot].state != state || error != nil else { return }
        tasks[slot].state = state
        effects.append(.taskState(taskId: idAt(slot), state: state, error: error))
    }

    private mutating func enqueue(_ slot: Slot) {
        guard tasks[slot].isPresent else { return }
        tasks[slot].queueGeneration &+= 1
        let task = tasks[slot]
        if queues[task.priority] == nil {
            queues[task.priority] = Queue()
            priorities.append(task.priority)
            priorities.sort(by: >)
        }
        queues[task.priority]!.push(QueueEntry(task: slot, generation: task.queueGeneration))
    }

    private mutating func promoteIfInputsDone(_ slot: Slot) {
        guard tasks[slot].isPresent, tasks[slot].state == .pending else { return }
        let task = tasks[slot]
        if let sweep = sweeps[names[Int(task.sweep)]], sweep.cancelled { return }
        for link in task.links where link.isInput {
            let input = tasks[link.task]
            switch input.isPresent ? input.state : nil {
            case .succeeded: continue
            case .failed, .cancelled:
                setState(
                    slot, .failed,
                    error: "input task \(idAt(link.task).prefix(12)) (\(names[Int(input.stage)])) did not succeed")
                for dependent in task.dependents { promoteIfInputsDone(dependent) }
                return
            default: return
            }
        }
        setState(slot, .ready, error: nil)
        enqueue(slot)
    }

    private func runnable(_ entry: QueueEntry, by worker: Worker) -> Bool {
        let task = tasks[entry.task]
        guard task.isPresent, task.state == .ready, task.queueGeneration == entry.generation,
            let sweep = sweeps[names[Int(task.sweep)]], !sweep.cancelled
        else { return false }
        return worker.capabilities.canRun(
            engine: sweep.engine, device: sweep.device,
            exclusive: sweep.exclusiveStages.contains(names[Int(task.stage)]))
    }

    private func isStale(_ entry: QueueEntry) -> Bool {
        let task = tasks[entry.task]
        guard task.isPresent else { return true }
        return task.state != .ready || task.queueGeneration != entry.generation
            || sweeps[names[Int(task.sweep)]]?.cancelled == true
    }

    /// Highest priority first; within the top `affinityWindow` runnable entries, prefer a task
    /// whose inputs the worker already holds.
    private mutating func nextTask(for worker: Worker) -> Slot? {
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
                let entry = queue.entries[index]
                if !entry.isTaken {
                    if isStale(entry) {
                        queue.entries[index].task = QueueEntry.taken
                        queue.live -= 1
                    } else if runnable(entry, by: worker) {
                        if chosen == nil { chosen = index }
                        let links = tasks[entry.task].links
                        let hasInputs = links.contains(where: \.isInput)
                        if hasInputs, links.allSatisfy({ !$0.isInput || worker.holds.contains($0.task) }) {
                            chosen = index
                            break
                        }
                        if !hasInputs { break }  // nothing to prefer among input-less tasks
                        seen += 1
                    }
                }
                index += 1
            }
            // The affinity window can miss a runnable task further back (e.g. a GPU-only
            // sweep's tasks ahead of CPU ones): scan on for the first runnable one.
            if chosen == nil {
                while index < queue.entries.count {
                    let entry = queue.entries[index]
                    if !entry.isTaken {
                        if isStale(entry) {
                            queue.entries[index].task = QueueEntry.taken
                            queue.live -= 1
                        } else if runnable(entry, by: worker) {
                            chosen = index
                            break
                        }
                    }
                    index += 1
                }
            }
            var picked: Slot? = nil
            if let chosen {
                picked = queue.entries[chosen].task
                queue.entries[chosen].task = QueueEntry.taken
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

    private mutating func start(slot: Slot, workerId: String, now: Double) {
        attemptCounter += 1
        let attemptId = newAttemptId(attemptCounter)
        let taskId = idAt(slot)
        tasks[slot].attemptsUsed += 1
        running[slot, default: []].insert(attemptId)
        attempts[attemptId] = Attempt(taskId: taskId, workerId: workerId, startedAt: now)
        workers[workerId]!.credits -= 1
        workers[workerId]!.running.insert(attemptId)
        tasks[slot].state = .running
        effects.append(
            .attemptStarted(
                attemptId: attemptId, taskId: taskId, workerId: workerId,
                attemptsUsed: tasks[slot].attemptsUsed))
        effects.append(.assign(workerId: workerId, attemptId: attemptId, taskId: taskId))
    }

    private mutating func dropAttempt(_ attemptId: String) {
        guard let attempt = attempts.removeValue(forKey: attemptId) else { return }
        if let slot = self.slot(of: attempt.taskId), running[slot]?.remove(attemptId) != nil, running[slot]!.isEmpty {
            running[slot] = nil
        }
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
        guard let slot = self.slot(of: taskId), tasks[slot].state == .running, running[slot] == nil else { return }
        let task = tasks[slot]
        let sweepName = names[Int(task.sweep)]
        let retries = sweeps[sweepName]?.retries ?? 0
        if sweeps[sweepName]?.cancelled == true {
            setState(slot, .cancelled, error: "cancelled by the user")
            return
        }
        let workerId = workerId ?? endedAttempts[attemptId]?.workerId
        if retryable, task.attemptsUsed <= retries {
            let delay = min(config.retryBackoff * Double(1 << min(task.attemptsUsed - 1, 20)), config.retryBackoffMax)
            notBefore[slot] = now + delay
            setState(slot, .ready, error: nil)
            effects.append(
                .log(
                    kind: "retry", sweep: sweepName, taskId: taskId, workerId: workerId,
                    attemptId: attemptId,
                    message: "task \(label(slot)) requeued: attempt \(task.attemptsUsed) of \(retries + 1) "
                        + "ended (\(error)); retrying in \(Self.seconds(delay))"))
            if delay <= 0 { enqueue(slot) } else { delayed.append(slot) }
        } else {
            let why = retryable ? "\(error) (after \(task.attemptsUsed) attempt(s))" : error
            setState(slot, .failed, error: why)
            effects.append(
                .log(
                    kind: "failed", sweep: sweepName, taskId: taskId, workerId: workerId,
                    attemptId: attemptId, level: .warn, message: "task \(label(slot)) failed: \(why)"))
            failDependents(of: slot)
        }
    }

    /// "train resnet18 magnitude seed 0 [1a2b3c4d5e6f]", for log lines.
    private func label(_ slot: Slot) -> String {
        let task = tasks[slot]
        guard task.isPresent else { return String(idAt(slot).prefix(12)) }
        var parts = [names[Int(task.stage)]]
        for key in ["model", "method"] { if let v = param(key, of: task)?.displayText { parts.append(v) } }
        if let seed = param("seed", of: task)?.displayText { parts.append("seed \(seed)") }
        return parts.joined(separator: " ") + " [\(idAt(slot).prefix(12))]"
    }

    /// "30 s", "2.5 s": a duration in log lines.
    public static func seconds(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded)) s" : "\(rounded) s"
    }

    private mutating func failDependents(of slot: Slot) {
        guard tasks[slot].isPresent else { return }
        for dependent in tasks[slot].dependents { promoteIfInputsDone(dependent) }
    }
}

extension ContiguousArray where Element == Scheduler.Task {
    /// The task in a slot.
    subscript(_ slot: Scheduler.Slot) -> Scheduler.Task {
        get { self[Int(slot)] }
        _modify { yield &self[Int(slot)] }
    }
}
