import Foundation
import SweepKit

/// CLI → coordinator: submit a validated plan.
public struct LaunchRequest: Codable, Sendable {
    public var plan: SweepPlan
    public init(plan: SweepPlan) { self.plan = plan }
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
        public var progress: JSONValue?
        public init(attemptId: String, taskId: String, label: String, startedAt: Double, progress: JSONValue?) {
            self.attemptId = attemptId
            self.taskId = taskId
            self.label = label
            self.startedAt = startedAt
            self.progress = progress
        }
    }
    public struct SweepStatus: Codable, Sendable {
        public var name: String
        public var counts: [String: Int]
        public var total: Int
        public var cancelled: Bool
        public var waitingReason: String?
        public init(name: String, counts: [String: Int], total: Int, cancelled: Bool, waitingReason: String?) {
            self.name = name
            self.counts = counts
            self.total = total
            self.cancelled = cancelled
            self.waitingReason = waitingReason
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
