import Foundation
import SweepKit

/// Protocol version carried in the first frame of every message.
public let wireVersion = "SG1"

/// Message types of the control/worker sockets (DESIGN.md §3). The raw value is the second frame.
public enum MessageType: String, Sendable, CaseIterable {
    // worker → coordinator
    case hello, ready, heartbeat, progress, result, failed, bye
    // coordinator → worker
    case welcome, assign, cancel, reject, ack
    // control client ↔ coordinator
    case launch, status, cancelSweep = "cancel_sweep", retrySweep = "retry_sweep", reply
    // artifact (data) socket
    case stat, have, put, putAck = "put_ack", get, chunk, missing
}

/// One execution slot of a worker: a GPU (CUDA_VISIBLE_DEVICES set per slot) or a CPU share.
public struct SlotInfo: Codable, Sendable, Hashable {
    public var index: Int
    /// "cpu" or "cuda:N"
    public var device: String
    public var memoryMiB: Int?

    public init(index: Int, device: String, memoryMiB: Int? = nil) {
        self.index = index
        self.device = device
        self.memoryMiB = memoryMiB
    }

    public var isGPU: Bool { device.hasPrefix("cuda") }
}

public struct Hello: Codable, Sendable {
    /// Stable across reconnects of the same worker process (and restarts with `--id`).
    public var workerId: String
    public var host: String
    public var pid: Int32
    public var slots: [SlotInfo]
    /// Engine name → what `describe` printed (models, methods, versions); "null" is built in.
    public var engines: [String: JSONValue]
    /// Attempts this worker is still running (after a reconnect), so the coordinator reconciles.
    public var running: [String]

    public init(workerId: String, host: String, pid: Int32, slots: [SlotInfo], engines: [String: JSONValue],
                running: [String]) {
        self.workerId = workerId
        self.host = host
        self.pid = pid
        self.slots = slots
        self.engines = engines
        self.running = running
    }
}

public struct Welcome: Codable, Sendable {
    public var heartbeatInterval: Double
    public var deadAfter: Double
    /// Endpoint of the artifact (data) socket, as the worker should connect to it.
    public var dataEndpoint: String

    public init(heartbeatInterval: Double, deadAfter: Double, dataEndpoint: String) {
        self.heartbeatInterval = heartbeatInterval
        self.deadAfter = deadAfter
        self.dataEndpoint = dataEndpoint
    }
}

/// Pull-based credit: the worker has `credits` more free slots.
public struct Ready: Codable, Sendable {
    public var credits: Int
    public init(credits: Int) { self.credits = credits }
}

public struct Heartbeat: Codable, Sendable {
    public var running: [String]
    public init(running: [String]) { self.running = running }
}

/// An input artifact of a task: what the worker must have (by hash) before it runs the engine.
public struct InputArtifact: Codable, Sendable, Hashable {
    public var taskId: String
    public var name: String
    public var sha256: String
    public var bytes: Int64

    public init(taskId: String, name: String, sha256: String, bytes: Int64) {
        self.taskId = taskId
        self.name = name
        self.sha256 = sha256
        self.bytes = bytes
    }
}

public struct Assign: Codable, Sendable {
    public var attemptId: String
    public var taskId: String
    public var sweep: String
    public var stage: String
    public var engine: String
    public var params: [String: JSONValue]
    /// The method's definition (for tasks with a `method` param), else nil.
    public var method: JSONValue?
    public var data: JSONValue?
    public var measure: JSONValue?
    /// Keyed by the producing stage.
    public var inputs: [String: InputArtifact]
    /// "gpu" | "cpu" | "any": which kind of slot the sweep asked for.
    public var device: String

    public init(attemptId: String, taskId: String, sweep: String, stage: String, engine: String,
                params: [String: JSONValue], method: JSONValue?, data: JSONValue?, measure: JSONValue?,
                inputs: [String: InputArtifact], device: String) {
        self.attemptId = attemptId
        self.taskId = taskId
        self.sweep = sweep
        self.stage = stage
        self.engine = engine
        self.params = params
        self.method = method
        self.data = data
        self.measure = measure
        self.inputs = inputs
        self.device = device
    }
}

public struct TaskProgress: Codable, Sendable {
    public var attemptId: String
    /// The engine's progress or metric event as it printed it.
    public var event: JSONValue
    public init(attemptId: String, event: JSONValue) {
        self.attemptId = attemptId
        self.event = event
    }
}

public struct ProducedArtifact: Codable, Sendable, Hashable {
    public var name: String
    public var sha256: String
    public var bytes: Int64
    public init(name: String, sha256: String, bytes: Int64) {
        self.name = name
        self.sha256 = sha256
        self.bytes = bytes
    }
}

public struct TaskResult: Codable, Sendable {
    public var attemptId: String
    public var taskId: String
    public var metrics: [String: JSONValue]
    public var units: [String: String]
    public var details: JSONValue
    /// Already uploaded over the data socket and verified by the coordinator.
    public var artifacts: [ProducedArtifact]
    /// Slots this message frees for more work (a `ready` folded into the result: one
    /// message less per task).
    public var credit: Int

    public init(attemptId: String, taskId: String, metrics: [String: JSONValue], units: [String: String],
                details: JSONValue, artifacts: [ProducedArtifact], credit: Int = 0) {
        self.attemptId = attemptId
        self.taskId = taskId
        self.metrics = metrics
        self.units = units
        self.details = details
        self.artifacts = artifacts
        self.credit = credit
    }
}

public struct TaskFailed: Codable, Sendable {
    public var attemptId: String
    public var taskId: String
    public var error: String
    public var exitCode: Int32?
    public var stderrTail: String?
    /// False when retrying cannot help (the engine said the task is invalid: exit 2).
    public var retryable: Bool
    /// Slots this message frees for more work (see `TaskResult.credit`).
    public var credit: Int

    public init(attemptId: String, taskId: String, error: String, exitCode: Int32?, stderrTail: String?,
                retryable: Bool, credit: Int = 0) {
        self.attemptId = attemptId
        self.taskId = taskId
        self.error = error
        self.exitCode = exitCode
        self.stderrTail = stderrTail
        self.retryable = retryable
        self.credit = credit
    }
}

public struct Cancel: Codable, Sendable {
    public var attemptId: String
    public var reason: String
    public init(attemptId: String, reason: String) {
        self.attemptId = attemptId
        self.reason = reason
    }
}

public struct Reject: Codable, Sendable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// The coordinator's answer to a result or failure, so a worker can forget it.
public struct Ack: Codable, Sendable {
    public var attemptId: String
    /// "stored", "duplicate", "recorded", "unknown"
    public var outcome: String
    public init(attemptId: String, outcome: String) {
        self.attemptId = attemptId
        self.outcome = outcome
    }
}

public struct Empty: Codable, Sendable {
    public init() {}
}
