import SweepKit

/// Counts of what `SweepStore.launch` did with each task of the plan.
public struct LaunchSummary: Sendable, Equatable {
    public var sweep: String
    /// Tasks inserted for the first time, as pending.
    public var new: Int
    /// Tasks kept as they were (succeeded, or pending/ready/running).
    public var reused: Int
    /// Tasks that had failed or been cancelled and went back to pending with attempts reset.
    public var rerun: Int
    /// Tasks in the plan (new + reused + rerun).
    public var total: Int
    /// Tasks of an earlier launch that the new plan no longer contains; their history is
    /// kept, unfinished ones are cancelled, and none of them is scheduled or reported.
    public var dropped: Int

    public init(sweep: String, new: Int, reused: Int, rerun: Int, total: Int, dropped: Int = 0) {
        self.sweep = sweep
        self.new = new
        self.reused = reused
        self.rerun = rerun
        self.total = total
        self.dropped = dropped
    }
}

/// What the coordinator needs to rebuild its scheduler after a restart.
public struct StoreSnapshot: Sendable {
    /// Every sweep's latest plan, oldest sweep first.
    public var sweeps: [SweepPlan]
    public var cancelledSweeps: Set<String>
    /// The tasks of the latest plans, per sweep in plan (topological) order.
    public var tasks: [TaskRecord]
    /// Attempts whose outcome is still `running`, in the order they started.
    public var runningAttempts: [AttemptRow]

    public init(sweeps: [SweepPlan], cancelledSweeps: Set<String>, tasks: [TaskRecord], runningAttempts: [AttemptRow]) {
        self.sweeps = sweeps
        self.cancelledSweeps = cancelledSweeps
        self.tasks = tasks
        self.runningAttempts = runningAttempts
    }
}

/// A task as stored: its place in the DAG and its scheduling state.
public struct TaskRecord: Sendable, Hashable {
    public var id: String
    public var sweep: String
    public var stage: String
    public var params: [String: JSONValue]
    /// Ids of the tasks it consumes, keyed by their stage.
    public var inputs: [String: String]
    public var priority: Int
    public var state: TaskState
    public var attemptsUsed: Int
    public var error: String?

    public init(
        id: String, sweep: String, stage: String, params: [String: JSONValue], inputs: [String: String],
        priority: Int, state: TaskState, attemptsUsed: Int, error: String?
    ) {
        self.id = id
        self.sweep = sweep
        self.stage = stage
        self.params = params
        self.inputs = inputs
        self.priority = priority
        self.state = state
        self.attemptsUsed = attemptsUsed
        self.error = error
    }
}

/// One run of a task on one worker.
public struct AttemptRow: Sendable, Hashable {
    public var id: String
    public var taskId: String
    public var workerId: String
    public var startedAt: Double
    public var endedAt: Double?
    public var outcome: AttemptOutcome
    public var exitCode: Int32?
    public var error: String?
    public var stderrTail: String?

    public init(
        id: String, taskId: String, workerId: String, startedAt: Double, endedAt: Double?,
        outcome: AttemptOutcome, exitCode: Int32?, error: String?, stderrTail: String?
    ) {
        self.id = id
        self.taskId = taskId
        self.workerId = workerId
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.outcome = outcome
        self.exitCode = exitCode
        self.error = error
        self.stderrTail = stderrTail
    }
}

public struct WorkerRow: Sendable, Hashable {
    public var id: String
    public var host: String
    public var info: JSONValue
    public var firstSeen: Double
    public var lastSeen: Double
    public var state: String

    public init(id: String, host: String, info: JSONValue, firstSeen: Double, lastSeen: Double, state: String) {
        self.id = id
        self.host = host
        self.info = info
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.state = state
    }
}

/// One line of the audit log.
public struct EventRow: Sendable, Hashable {
    public var at: Double
    public var kind: String
    public var sweep: String?
    public var taskId: String?
    public var workerId: String?
    public var message: String

    public init(at: Double, kind: String, sweep: String?, taskId: String?, workerId: String?, message: String) {
        self.at = at
        self.kind = kind
        self.sweep = sweep
        self.taskId = taskId
        self.workerId = workerId
        self.message = message
    }
}

/// A sweep and how many of its tasks are in each state.
public struct SweepSummary: Sendable, Hashable {
    public var name: String
    public var engine: String
    public var createdAt: Double
    public var cancelled: Bool
    /// Only states that occur are present.
    public var counts: [TaskState: Int]
    public var total: Int

    public init(name: String, engine: String, createdAt: Double, cancelled: Bool, counts: [TaskState: Int], total: Int)
    {
        self.name = name
        self.engine = engine
        self.createdAt = createdAt
        self.cancelled = cancelled
        self.counts = counts
        self.total = total
    }
}
