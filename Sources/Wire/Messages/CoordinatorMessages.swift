import SweepKit

// Coordinator → worker messages. A worker checks them as strictly as the coordinator checks
// its messages: a coordinator can be impersonated on a network without CURVE.

public struct Welcome: WireMessage {
    public var heartbeatInterval: Double
    public var deadAfter: Double
    /// Endpoint of the artifact (data) socket, as the worker should connect to it.
    public var dataEndpoint: String

    public init(heartbeatInterval: Double, deadAfter: Double, dataEndpoint: String) {
        self.heartbeatInterval = heartbeatInterval
        self.deadAfter = deadAfter
        self.dataEndpoint = dataEndpoint
    }

    public init(fields f: Fields) throws {
        heartbeatInterval = try f.double("heartbeatInterval", in: WireLimits.intervalRange)
        deadAfter = try f.double("deadAfter", in: WireLimits.intervalRange)
        dataEndpoint = try f.string("dataEndpoint", maxBytes: 1024)
    }

    public var json: JSONValue {
        [
            "heartbeatInterval": .number(heartbeatInterval), "deadAfter": .number(deadAfter),
            "dataEndpoint": .string(dataEndpoint),
        ]
    }
}

/// An input artifact of a task: what the worker must have (by hash) before it runs the engine.
public struct InputArtifact: Sendable, Hashable {
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

    init(json: JSONValue) throws {
        let f = try Fields(json, message: "assign.inputs[]")
        taskId = try f.id("taskId")
        name = try f.id("name")
        sha256 = try f.sha256("sha256")
        bytes = try f.int64("bytes", in: 0...WireLimits.maxArtifactBytes)
    }

    var json: JSONValue {
        ["taskId": .string(taskId), "name": .string(name), "sha256": .string(sha256), "bytes": .number(Double(bytes))]
    }
}

public struct Assign: WireMessage {
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
    /// The stage's `timeout` in seconds (> 0, ≤ 30 days), if it sets one: the worker stops the
    /// engine after the smaller of this and its own `--task-timeout`.
    public var timeout: Double?
    /// The task's stage asks for a process of its own (`resources.isolate`): the worker runs it
    /// with `run`, never in a long-lived `serve` engine. Absent on the wire: false.
    public var isolate: Bool

    public init(
        attemptId: String, taskId: String, sweep: String, stage: String, engine: String,
        params: [String: JSONValue], method: JSONValue?, data: JSONValue?, measure: JSONValue?,
        inputs: [String: InputArtifact], device: String, timeout: Double? = nil, isolate: Bool = false
    ) {
        self.isolate = isolate
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
        self.timeout = timeout
    }

    public init(fields f: Fields) throws {
        attemptId = try f.id("attemptId")
        taskId = try f.id("taskId")
        sweep = try f.id("sweep")
        stage = try f.id("stage")
        engine = try f.id("engine")
        params = try f.object("params", maxCount: 1024, optional: true)
        method = f.optional("method")
        data = f.optional("data")
        measure = f.optional("measure")
        var inputs: [String: InputArtifact] = [:]
        for (stage, value) in try f.object("inputs", maxCount: 64, optional: true) {
            guard WireId.isValid(stage) else { throw f.fail("inputs", "has a stage name that is not an id") }
            inputs[stage] = try InputArtifact(json: value)
        }
        self.inputs = inputs
        device = try f.id("device")
        if f.optional("timeout") != nil {
            let seconds = try f.double("timeout", in: 0...WireLimits.maxTaskTimeout)
            guard seconds > 0 else { throw f.fail("timeout", "must be greater than 0") }
            timeout = seconds
        } else {
            timeout = nil
        }
        isolate = try f.bool("isolate", default: false)
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "attemptId": .string(attemptId), "taskId": .string(taskId), "sweep": .string(sweep),
            "stage": .string(stage),
            "engine": .string(engine), "params": .object(params), "method": method ?? .null, "data": data ?? .null,
            "measure": measure ?? .null, "inputs": .object(inputs.mapValues(\.json)), "device": .string(device),
            "timeout": timeout.map { .number($0) } ?? .null,
        ]
        // Only when set: a coordinator that never isolates sends what it always sent.
        if isolate { fields["isolate"] = true }
        return .object(fields)
    }
}

public struct Cancel: WireMessage {
    public var attemptId: String
    public var reason: String

    public init(attemptId: String, reason: String) {
        self.attemptId = attemptId
        self.reason = reason
    }

    public init(fields f: Fields) throws {
        attemptId = try f.id("attemptId")
        reason = try f.string("reason", maxBytes: WireLimits.maxTextBytes)
    }

    public var json: JSONValue { ["attemptId": .string(attemptId), "reason": .string(reason)] }
}

/// The answer to a message that was not accepted: a code a program acts on, and a sentence.
public struct Reject: WireMessage {
    public enum Code: String, Sendable, CaseIterable {
        /// The message could not be decoded or a field is out of range.
        case malformed
        case unsupportedVersion = "unsupported_version"
        /// A frame or field over its size limit.
        case tooLarge = "too_large"
        /// The sender has not said hello (or the coordinator restarted or declared it dead): say hello.
        case unknownWorker = "unknown_worker"
        /// A hello for a worker id that is live under another connection or key.
        case idInUse = "id_in_use"
        /// This socket does not take that message type.
        case notAllowed = "not_allowed"
        /// The control request carries no valid credentials.
        case unauthorized
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public init(_ error: WireError) { self.init(error.code, error.description) }

    public init(fields f: Fields) throws {
        guard let code = Code(rawValue: try f.string("code", maxBytes: 64)) else {
            throw f.fail("code", "is not a known reject code")
        }
        self.code = code
        reason = try f.string("reason", maxBytes: WireLimits.maxTextBytes)
    }

    public var json: JSONValue { ["code": .string(code.rawValue), "reason": .string(reason)] }
}

/// The coordinator's answer to a result or failure, so a worker can forget it.
public struct Ack: WireMessage {
    public enum Outcome: String, Sendable, CaseIterable {
        /// The result is stored (or the failure recorded).
        case stored, recorded
        /// The task already had a result; this one was dropped.
        case duplicate
        /// No such attempt (e.g. from another coordinator's database).
        case unknown
        /// The attempt is not the sender's: refused, nothing stored.
        case refused
    }

    public var attemptId: String
    public var outcome: Outcome

    public init(attemptId: String, outcome: Outcome) {
        self.attemptId = attemptId
        self.outcome = outcome
    }

    public init(fields f: Fields) throws {
        attemptId = try f.id("attemptId")
        guard let outcome = Outcome(rawValue: try f.string("outcome", maxBytes: 32)) else {
            throw f.fail("outcome", "is not a known outcome")
        }
        self.outcome = outcome
    }

    public var json: JSONValue { ["attemptId": .string(attemptId), "outcome": .string(outcome.rawValue)] }
}
