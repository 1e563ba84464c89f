/// Tunables of the scheduler. Times are seconds.
public struct SchedulerConfig: Sendable {
    /// A worker silent for longer than this is dead: it gets no more work, and its attempts end
    /// as `lost` (those of a sweep with a longer `dead_after` once that has passed too).
    public var deadAfter: Double
    /// First retry waits this long; each further retry doubles it, up to `retryBackoffMax`.
    public var retryBackoff: Double
    public var retryBackoffMax: Double
    /// How many ready tasks of the top priority are looked at to prefer one whose inputs the
    /// worker already holds.
    public var affinityWindow: Int
    /// After a restart, how long a worker that ran attempts has to reconnect and claim them
    /// before they are lost. nil: twice the dead interval, and at least 10 s more than it.
    public var restartGrace: Double?

    /// The default dead interval: long enough that a busy worker on a loaded host is not declared
    /// dead (heartbeats stay at 1 s), short enough that a crashed one's tasks move on within a minute.
    public static let defaultDeadAfter = 30.0

    public init(
        deadAfter: Double = SchedulerConfig.defaultDeadAfter, retryBackoff: Double = 0.5, retryBackoffMax: Double = 30,
        affinityWindow: Int = 16, restartGrace: Double? = nil
    ) {
        self.deadAfter = deadAfter
        self.retryBackoff = retryBackoff
        self.retryBackoffMax = retryBackoffMax
        self.affinityWindow = affinityWindow
        self.restartGrace = restartGrace
    }

    public var restartGraceSeconds: Double { restartGrace ?? max(2 * deadAfter, deadAfter + 10) }
}

/// What a worker can run, as it told the coordinator in `hello`.
public struct WorkerCapabilities: Sendable, Hashable {
    public var engines: Set<String>
    public var hasGPU: Bool
    public var hasCPU: Bool
    public var slots: Int
    /// Some of its slots share a device (`--per-gpu K` > 1, or several CPU slots on one host's
    /// cores): a task that needs its device to itself (`exclusive`) does not go here.
    public var shared: Bool

    public init(engines: Set<String>, hasGPU: Bool, hasCPU: Bool, slots: Int, shared: Bool = false) {
        self.engines = engines
        self.hasGPU = hasGPU
        self.hasCPU = hasCPU
        self.slots = slots
        self.shared = shared
    }

    /// Whether this worker may run tasks of a sweep with this engine and device request;
    /// `exclusive`: the task needs a device no other task shares (only unshared workers).
    public func canRun(engine: String, device: String, exclusive: Bool = false) -> Bool {
        guard engines.contains(engine) else { return false }
        if exclusive, shared { return false }
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
    /// The resolved parameters and the consumed tasks by stage (what an assign carries).
    public var params: [String: JSONValue]
    public var inputsByStage: [String: String]

    public init(
        id: String, sweep: String, stage: String, priority: Int, state: TaskState, attemptsUsed: Int,
        inputs: [String], params: [String: JSONValue] = [:], inputsByStage: [String: String] = [:]
    ) {
        self.id = id
        self.sweep = sweep
        self.stage = stage
        self.priority = priority
        self.state = state
        self.attemptsUsed = attemptsUsed
        self.inputs = inputs
        self.params = params
        self.inputsByStage = inputsByStage
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
    /// `failure` is the worker's own report (exit code, stderr tail) when it sent one.
    case attemptEnded(
        attemptId: String, taskId: String, outcome: AttemptOutcome, error: String?,
        failure: FailureReport?)
    case workerDead(workerId: String)
    /// An operator event: stored in the `events` table and printed on the coordinator's log.
    case log(SchedulerLog)

    public static func log(
        kind: String, sweep: String?, taskId: String?, workerId: String?, attemptId: String? = nil,
        level: SchedulerLog.Level = .info, message: String
    ) -> SchedulerEffect {
        .log(
            SchedulerLog(
                level: level, kind: kind, sweep: sweep, taskId: taskId, workerId: workerId,
                attemptId: attemptId, message: message))
    }
}

/// One operator event of the scheduler: a worker joined, left or was declared dead, an attempt
/// was lost or timed out and its task requeued, a task failed for good, a message was refused.
public struct SchedulerLog: Sendable, Equatable {
    public enum Level: String, Sendable {
        case info, warn, error
    }

    public var level: Level
    /// Short, stable: `joined`, `left`, `dead`, `retry`, `failed`, `refused`, `cancel`, …
    public var kind: String
    public var sweep: String?
    public var taskId: String?
    public var workerId: String?
    public var attemptId: String?
    public var message: String

    public init(
        level: Level = .info, kind: String, sweep: String?, taskId: String?, workerId: String?,
        attemptId: String? = nil, message: String
    ) {
        self.level = level
        self.kind = kind
        self.sweep = sweep
        self.taskId = taskId
        self.workerId = workerId
        self.attemptId = attemptId
        self.message = message
    }
}

/// The scheduler's verdict on a `result` message.
public enum ResultDecision: Sendable, Equatable {
    /// First valid result: store it. The task is now succeeded.
    case accept(taskId: String)
    /// The task already has a result: acknowledge, log, drop.
    case duplicate(taskId: String)
    /// No such attempt (e.g. from another coordinator's database).
    case unknown
    /// The attempt belongs to another worker: refused, nothing stored.
    case notYours
}

/// The scheduler's verdict on a `failed` message.
public enum FailureDecision: Sendable, Equatable {
    /// Recorded; the task's state afterwards.
    case recorded(TaskState)
    case unknown
    case notYours
}

/// A worker's report of a failed attempt, carried into the `attemptEnded` effect.
public struct FailureReport: Sendable, Hashable {
    public var error: String
    public var exitCode: Int32?
    public var stderrTail: String?
    /// False when retrying cannot help (the engine said the task is invalid).
    public var retryable: Bool
    /// The worker stopped the engine at a time limit (the stage's timeout, its own
    /// `--task-timeout` or `--idle-timeout`): recorded as outcome `timeout`, always retryable.
    public var timedOut: Bool

    public init(
        error: String, exitCode: Int32? = nil, stderrTail: String? = nil, retryable: Bool,
        timedOut: Bool = false
    ) {
        self.error = error
        self.exitCode = exitCode
        self.stderrTail = stderrTail
        self.retryable = retryable
        self.timedOut = timedOut
    }
}

/// Who a worker is on the wire: its connection's routing id and, under CURVE, its public key.
public struct WorkerRegistration: Sendable, Hashable {
    public var identity: [UInt8]
    public var key: String?
    public var host: String
    /// What the worker said of itself (pid, slots, engines), for status.
    public var info: JSONValue

    public init(identity: [UInt8], key: String?, host: String, info: JSONValue) {
        self.identity = identity
        self.key = key
        self.host = host
        self.info = info
    }
}

public enum HelloDecision: Sendable, Equatable {
    case accepted
    case refused(String)
}

/// An artifact a task produced, by content: what a consumer of the task downloads.
public struct ArtifactDigest: Sendable, Hashable {
    public var name: String
    public var sha256: String
    public var bytes: Int64

    public init(name: String, sha256: String, bytes: Int64) {
        self.name = name
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// A sweep as the database holds it, for `Scheduler.restore`.
public struct RestoredSweep: Sendable {
    public var name: String
    public var engine: String
    public var device: String
    public var retries: Int
    public var cancelled: Bool
    public var tasks: [TaskSeed]
    /// The sweep's own `dead_after` (see `SweepPlan.deadAfter`).
    public var deadAfter: Double?
    /// Stages whose tasks need an unshared device (see `SweepPlan.exclusiveStages`).
    public var exclusiveStages: Set<String>

    public init(
        name: String, engine: String, device: String, retries: Int, cancelled: Bool, tasks: [TaskSeed],
        deadAfter: Double? = nil, exclusiveStages: Set<String> = []
    ) {
        self.exclusiveStages = exclusiveStages
        self.name = name
        self.engine = engine
        self.device = device
        self.retries = retries
        self.cancelled = cancelled
        self.tasks = tasks
        self.deadAfter = deadAfter
    }
}

/// An attempt the database lists as running, for `Scheduler.restore`.
public struct RestoredAttempt: Sendable {
    public var id: String
    public var taskId: String
    public var workerId: String
    public var startedAt: Double

    public init(id: String, taskId: String, workerId: String, startedAt: Double) {
        self.id = id
        self.taskId = taskId
        self.workerId = workerId
        self.startedAt = startedAt
    }
}

/// What an assign message carries for one task (see `Scheduler.assignment(of:)`).
public struct Assignment: Sendable {
    public var sweep: String
    public var stage: String
    public var engine: String
    public var device: String
    public var params: [String: JSONValue]
    /// Consumed stage → the producing task and the artifact to download.
    public var inputs: [String: (taskId: String, artifact: ArtifactDigest)]

    /// "stage model method seed N", for status lines.
    public var label: String {
        var parts = [stage]
        if let m = params["model"]?.displayText { parts.append(m) }
        if let m = params["method"]?.displayText { parts.append(m) }
        if let s = params["seed"]?.displayText { parts.append("seed \(s)") }
        return parts.joined(separator: " ")
    }
}

/// One point of an attempt's learning curve: the checked fields of one engine `progress`
/// event (`AttemptProgress.curvePoint`), nil where the event had no valid value, and when the
/// coordinator received it (`at`, its own clock: the engine's is not trusted).
public struct CurvePoint: Sendable, Hashable {
    public var epoch: Int?
    public var epochs: Int?
    public var step: Int?
    public var loss: Double?
    /// Accuracies in percent, 0...100, as the engine emits them.
    public var trainAcc: Double?
    public var testAcc: Double?
    public var valAcc: Double?
    public var lr: Double?
    public var at: Double

    public init(
        epoch: Int? = nil, epochs: Int? = nil, step: Int? = nil, loss: Double? = nil, trainAcc: Double? = nil,
        testAcc: Double? = nil, valAcc: Double? = nil, lr: Double? = nil, at: Double
    ) {
        self.epoch = epoch
        self.epochs = epochs
        self.step = step
        self.loss = loss
        self.trainAcc = trainAcc
        self.testAcc = testAcc
        self.valAcc = valAcc
        self.lr = lr
        self.at = at
    }
}

/// The part of an engine's `progress` event that `status` shows and that learning curves keep,
/// from a hostile source: epoch, epochs and step are whole numbers in 0...`maxCount` (epoch ≤
/// epochs when both are given; epochs only with an epoch), loss a finite number within
/// ±`maxLoss`, the accuracies finite percentages in 0...100, lr finite in 0...`maxLR`; anything
/// else is dropped.
public enum AttemptProgress {
    public static let maxCount = 1_000_000_000
    public static let maxLoss = 1e15
    public static let maxLR = 1e3

    /// The checked fields of a `progress` event as a curve point received at `at`, or nil when
    /// `event` is not a `progress` event, carries none of the fields, or `at` is not finite.
    public static func curvePoint(_ event: JSONValue, at: Double) -> CurvePoint? {
        guard at.isFinite, let fields = event.objectValue, fields["event"]?.stringValue == "progress" else {
            return nil
        }
        func count(_ key: String) -> Int? {
            guard let v = fields[key]?.doubleValue, v.isFinite, v >= 0, v <= Double(maxCount), v == v.rounded()
            else { return nil }
            return Int(v)
        }
        func number(_ key: String, in range: ClosedRange<Double>) -> Double? {
            guard let v = fields[key]?.doubleValue, v.isFinite, range.contains(v) else { return nil }
            return v
        }
        var point = CurvePoint(at: at)
        point.epoch = count("epoch")
        let epochs = count("epochs")
        if let e = point.epoch, let n = epochs, e > n { point.epoch = nil }
        if point.epoch != nil { point.epochs = epochs }
        point.step = count("step")
        point.loss = number("loss", in: -maxLoss...maxLoss)
        point.trainAcc = number("train_acc", in: 0...100)
        point.testAcc = number("test_acc", in: 0...100)
        point.valAcc = number("val_acc", in: 0...100)
        point.lr = number("lr", in: 0...maxLR)
        let values: [Double?] = [
            point.epoch.map(Double.init), point.step.map(Double.init), point.loss, point.trainAcc, point.testAcc,
            point.valAcc, point.lr,
        ]
        return values.contains { $0 != nil } ? point : nil
    }

    /// The checked fields `status` shows (epoch, epochs, step, loss, test_acc, val_acc) as a
    /// JSON object, or nil when `event` is not a `progress` event or carries none of them.
    public static func checked(_ event: JSONValue) -> JSONValue? {
        guard let point = curvePoint(event, at: 0) else { return nil }
        var out: [String: JSONValue] = [:]
        if let epoch = point.epoch { out["epoch"] = .number(Double(epoch)) }
        if let epochs = point.epochs { out["epochs"] = .number(Double(epochs)) }
        if let step = point.step { out["step"] = .number(Double(step)) }
        if let loss = point.loss { out["loss"] = .number(loss) }
        if let acc = point.testAcc { out["test_acc"] = .number(acc) }
        if let acc = point.valAcc { out["val_acc"] = .number(acc) }
        return out.isEmpty ? nil : .object(out)
    }
}
