/// Tunables of the scheduler. Times are seconds.
public struct SchedulerConfig: Sendable {
    /// A worker silent for longer than this is dead; its attempts end as `lost`.
    public var deadAfter: Double
    /// First retry waits this long; each further retry doubles it, up to `retryBackoffMax`.
    public var retryBackoff: Double
    public var retryBackoffMax: Double
    /// How many ready tasks of the top priority are looked at to prefer one whose inputs the
    /// worker already holds.
    public var affinityWindow: Int

    public init(deadAfter: Double = 5, retryBackoff: Double = 0.5, retryBackoffMax: Double = 30,
                affinityWindow: Int = 16) {
        self.deadAfter = deadAfter
        self.retryBackoff = retryBackoff
        self.retryBackoffMax = retryBackoffMax
        self.affinityWindow = affinityWindow
    }
}

/// What a worker can run, as it told the coordinator in `hello`.
public struct WorkerCapabilities: Sendable, Hashable {
    public var engines: Set<String>
    public var hasGPU: Bool
    public var hasCPU: Bool
    public var slots: Int

    public init(engines: Set<String>, hasGPU: Bool, hasCPU: Bool, slots: Int) {
        self.engines = engines
        self.hasGPU = hasGPU
        self.hasCPU = hasCPU
        self.slots = slots
    }

    /// Whether this worker may run tasks of a sweep with this engine and device request.
    public func canRun(engine: String, device: String) -> Bool {
        guard engines.contains(engine) else { return false }
        switch device {
        case "gpu": return hasGPU
        case "cpu": return hasCPU
        default: return true
        }
    }
}

/// A task as the scheduler tracks it (loaded from the store or added by a launch).
public struct TaskSeed: Sendable, Hashable {
    public var id: String
    public var sweep: String
    public var stage: String
    public var priority: Int
    public var state: TaskState
    public var attemptsUsed: Int
    public var inputs: [String]

    public init(id: String, sweep: String, stage: String, priority: Int, state: TaskState, attemptsUsed: Int,
                inputs: [String]) {
        self.id = id
        self.sweep = sweep
        self.stage = stage
        self.priority = priority
        self.state = state
        self.attemptsUsed = attemptsUsed
        self.inputs = inputs
    }
}

/// What the scheduler decided; the coordinator's I/O loop persists these (in order, in one
/// transaction) and only then sends the messages they imply.
public enum SchedulerEffect: Sendable, Equatable {
    case assign(workerId: String, attemptId: String, taskId: String)
    case cancel(workerId: String, attemptId: String, reason: String)
    case taskState(taskId: String, state: TaskState, error: String?)
    case attemptsUsed(taskId: String, count: Int)
    /// An attempt starts: the task is running with `attemptsUsed` attempts so far.
    case attemptStarted(attemptId: String, taskId: String, workerId: String, attemptsUsed: Int)
    /// `error` is the scheduler's reason (lost, cancelled, duplicate); for failures reported by a
    /// worker the coordinator records the worker's own error, exit code and stderr tail.
    case attemptEnded(attemptId: String, taskId: String, outcome: AttemptOutcome, error: String?)
    case workerDead(workerId: String)
    case log(kind: String, sweep: String?, taskId: String?, workerId: String?, message: String)
}

/// The scheduler's verdict on a `result` message.
public enum ResultDecision: Sendable, Equatable {
    /// First valid result: store it. The task is now succeeded.
    case accept(taskId: String)
    /// The task already has a result: acknowledge, log, drop.
    case duplicate(taskId: String)
    /// No such attempt (e.g. from another coordinator's database).
    case unknown
}
