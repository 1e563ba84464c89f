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
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes: header)
        } catch {
            throw WireError("malformed `launch` header: \(error)", code: .malformed)
        }
        var outline = try Fields(json, message: "launch").object("plan", maxCount: 64)
        guard case .array(let tasks)? = outline.removeValue(forKey: "tasks") else {
            throw WireError("`launch`.plan.tasks must be an array", code: .malformed)
        }
        guard tasks.count <= Self.maxTasks else {
            throw WireError("`launch`.plan.tasks has more than \(Self.maxTasks) entries", code: .malformed)
        }
        outline["tasks"] = .array([])
        do {
            plan = try Codec.decoder.decode(SweepPlan.self, from: Data(JSONValue.object(outline).canonicalBytes))
        } catch {
            throw WireError("malformed `launch` plan: \(error)", code: .malformed)
        }
        plan.tasks.reserveCapacity(tasks.count)
        for (index, task) in tasks.enumerated() {
            plan.tasks.append(try PlannedTask(fields: Fields(task, message: "launch.plan.tasks[\(index)]")))
        }
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
