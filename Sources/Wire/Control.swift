import Foundation
import SweepKit

/// CLI → coordinator: submit a validated plan. Encoded with Codable (the CLI's side); the
/// coordinator reads it with `init(header:)`, never with JSONDecoder: a plan can hold a million
/// tasks, and Foundation's Codable path was three quarters of a launch's coordinator time.
public struct LaunchRequest: Encodable, Sendable {
    public var plan: SweepPlan
    public init(plan: SweepPlan) { self.plan = plan }

    /// Most tasks one `launch` may carry (a bound on the array before it is read; the 512 MiB
    /// bound on a control request is usually met first).
    public static let maxTasks = 10_000_000

    /// Reads a `launch` header: the plan's outline (everything but its tasks: small) through
    /// Codable, each task field by field, with the bounds an `assign` of it would meet (ids,
    /// at most 1024 parameters and 64 inputs), so a task no worker could accept is refused
    /// here, naming it, instead of failing on every worker later.
    public init(header: [UInt8]) throws {
        let json = try LaunchTasks.parse(header, message: "launch")
        let (outline, tasks) = try Self.outline(Fields(json, message: "launch"), message: "launch")
        plan = outline
        plan.tasks = try Self.tasks(tasks, message: "launch.plan.tasks", first: 0)
    }

    /// The plan without its tasks (read through Codable: it is small) and the raw task list.
    static func outline(_ fields: Fields, message: String) throws -> (SweepPlan, [JSONValue]) {
        var outline = try fields.object("plan", maxCount: 64)
        guard case .array(let tasks)? = outline.removeValue(forKey: "tasks") else {
            throw WireError("`\(message)`.plan.tasks must be an array", code: .malformed)
        }
        guard tasks.count <= Self.maxTasks else {
            throw WireError("`\(message)`.plan.tasks has more than \(Self.maxTasks) entries", code: .malformed)
        }
        outline["tasks"] = .array([])
        do {
            return (
                try Codec.decoder.decode(SweepPlan.self, from: Data(JSONValue.object(outline).canonicalBytes)), tasks
            )
        } catch {
            throw WireError("malformed `\(message)` plan: \(error)", code: .malformed)
        }
    }

    /// Each task field by field; `first` is the plan index of the first (for messages).
    static func tasks(_ list: [JSONValue], message: String, first: Int) throws -> [PlannedTask] {
        var tasks: [PlannedTask] = []
        tasks.reserveCapacity(list.count)
        for (offset, task) in list.enumerated() {
            tasks.append(try PlannedTask(fields: Fields(task, message: "\(message)[\(first + offset)]")))
        }
        return tasks
    }
}

/// CLI → coordinator: a launch in parts begins (docs/protocol.md, "A launch in parts"). `plan`
/// is the plan without its tasks; `tasks` how many `launch_tasks` will bring, in plan order.
/// The reply's body is `{session}`: the id the parts and `launch_end` name.
public struct LaunchBegin: Encodable, Sendable {
    public var plan: SweepPlan
    public var tasks: Int

    public init(plan: SweepPlan, tasks: Int) {
        self.plan = plan
        self.plan.tasks = []
        self.tasks = tasks
    }

    public init(header: [UInt8]) throws {
        let fields = try Fields(LaunchTasks.parse(header, message: "launch_begin"), message: "launch_begin")
        let (outline, listed) = try LaunchRequest.outline(fields, message: "launch_begin")
        guard listed.isEmpty else {
            throw WireError(
                "`launch_begin`.plan.tasks must be empty: the tasks come in `launch_tasks`", code: .malformed)
        }
        plan = outline
        tasks = try fields.int("tasks", in: 0...LaunchRequest.maxTasks)
    }
}

/// CLI → coordinator: the next part of a launch in parts: the plan's tasks from index `first`
/// on (at most `maxTasks` of them). The reply's body is `{received}`.
public struct LaunchTasks: Encodable, Sendable {
    public var session: String
    public var first: Int
    public var tasks: [PlannedTask]

    /// Tasks one part may carry (the CLI sends `LaunchTasks.partSize`).
    public static let maxTasks = 100_000
    /// Tasks per part the CLI sends: a part is decoded and staged in one turn of the
    /// coordinator's loop (~30 ms for 5,000 tasks, release build), so its workers wait at most that.
    public static let partSize = 5_000

    public init(session: String, first: Int, tasks: [PlannedTask]) {
        self.session = session
        self.first = first
        self.tasks = tasks
    }

    public init(header: [UInt8]) throws {
        let fields = try Fields(Self.parse(header, message: "launch_tasks"), message: "launch_tasks")
        session = try fields.id("session")
        first = try fields.int("first", in: 0...LaunchRequest.maxTasks)
        tasks = try LaunchRequest.tasks(
            fields.array("tasks", maxCount: Self.maxTasks), message: "launch_tasks.tasks", first: first)
    }

    static func parse(_ header: [UInt8], message: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(bytes: header)
        } catch {
            throw WireError("malformed `\(message)` header: \(error)", code: .malformed)
        }
    }
}

/// CLI → coordinator: every part is there; merge them into the sweep (one transaction) and
/// answer as `launch` does.
public struct LaunchEnd: Encodable, Sendable {
    public var session: String
    public init(session: String) { self.session = session }

    public init(header: [UInt8]) throws {
        session = try Fields(LaunchTasks.parse(header, message: "launch_end"), message: "launch_end").id("session")
    }
}

extension PlannedTask {
    /// One task of a `launch` (see `LaunchRequest.init(header:)`).
    init(fields f: Fields) throws {
        let id = try f.id("id")
        let stage = try f.id("stage")
        let params = try f.object("params", maxCount: 1024, optional: true)
        var inputs: [String: String] = [:]
        for (stage, value) in try f.object("inputs", maxCount: 64, optional: true) {
            guard WireId.isValid(stage), case .string(let task) = value, WireId.isValid(task) else {
                throw f.fail("inputs", "must map stage names to task ids")
            }
            inputs[stage] = task
        }
        let priority = try f.int("priority", in: -1_000_000...1_000_000)
        self.init(id: id, stage: stage, params: params, inputs: inputs, priority: priority)
    }
}

/// CLI → coordinator: what is running now.
public struct StatusRequest: Codable, Sendable {
    public init() {}
}

/// CLI → coordinator: cancel or retry a sweep by name.
public struct SweepRequest: Codable, Sendable {
    public var sweep: String
    public init(sweep: String) { self.sweep = sweep }
}

/// Coordinator → CLI. `error` is a full sentence when `ok` is false.
public struct ControlReply: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    public var body: JSONValue
    public init(ok: Bool, error: String? = nil, body: JSONValue = .null) {
        self.ok = ok
        self.error = error
        self.body = body
    }
}

/// What `sparsegrid status` shows of a live coordinator.
public struct LiveStatus: Codable, Sendable {
    public struct WorkerStatus: Codable, Sendable {
        public var id: String
        public var host: String
        public var slots: Int
        public var alive: Bool
        public var secondsSinceSeen: Double
        /// attempt id → (task label, last progress event)
        public var running: [RunningAttempt]
        public init(
            id: String, host: String, slots: Int, alive: Bool, secondsSinceSeen: Double,
            running: [RunningAttempt]
        ) {
            self.id = id
            self.host = host
            self.slots = slots
            self.alive = alive
            self.secondsSinceSeen = secondsSinceSeen
            self.running = running
        }
    }
    public struct RunningAttempt: Codable, Sendable {
        public var attemptId: String
        public var taskId: String
        public var label: String
        public var startedAt: Double
        /// The engine's last `progress` event, reduced to checked fields (`AttemptProgress`).
        public var progress: JSONValue?
        /// The sweep the task belongs to.
        public var sweep: String?
        public init(
            attemptId: String, taskId: String, label: String, startedAt: Double, progress: JSONValue?,
            sweep: String? = nil
        ) {
            self.attemptId = attemptId
            self.taskId = taskId
            self.label = label
            self.startedAt = startedAt
            self.progress = progress
            self.sweep = sweep
        }
    }
    public struct SweepStatus: Codable, Sendable {
        public var name: String
        public var counts: [String: Int]
        public var total: Int
        public var cancelled: Bool
        public var waitingReason: String?
        /// What the ETA and rate are computed from; nil when the store could not be read.
        public var timing: SweepTiming?
        public init(
            name: String, counts: [String: Int], total: Int, cancelled: Bool, waitingReason: String?,
            timing: SweepTiming? = nil
        ) {
            self.name = name
            self.counts = counts
            self.total = total
            self.cancelled = cancelled
            self.waitingReason = waitingReason
            self.timing = timing
        }
    }
    /// Measured task durations of a sweep by stage and model, and its recent throughput.
    public struct SweepTiming: Codable, Sendable, Equatable {
        public struct Group: Codable, Sendable, Equatable {
            public var stage: String
            public var model: String?
            /// Tasks not started yet (ready or pending).
            public var waiting: Int
            /// Seconds each running task has run.
            public var runningElapsed: [Double]
            /// Seconds each succeeded task took, the most recent `maxDurations` at most.
            public var durations: [Double]
            public init(stage: String, model: String?, waiting: Int, runningElapsed: [Double], durations: [Double]) {
                self.stage = stage
                self.model = model
                self.waiting = waiting
                self.runningElapsed = runningElapsed
                self.durations = durations
            }
        }
        public static let maxDurations = 256
        public var groups: [Group]
        /// Tasks that succeeded in the last `window` seconds.
        public var finishedInWindow: Int
        /// The window: the last 10 minutes, or less when the sweep's work started more recently.
        public var window: Double
        public init(groups: [Group], finishedInWindow: Int, window: Double) {
            self.groups = groups
            self.finishedInWindow = finishedInWindow
            self.window = window
        }
    }
    public var now: Double
    public var startedAt: Double
    public var sweeps: [SweepStatus]
    public var workers: [WorkerStatus]

    public init(now: Double, startedAt: Double, sweeps: [SweepStatus], workers: [WorkerStatus]) {
        self.now = now
        self.startedAt = startedAt
        self.sweeps = sweeps
        self.workers = workers
    }
}
