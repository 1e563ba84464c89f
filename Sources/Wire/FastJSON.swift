import SweepKit

/// Messages on the hot path (one per task or more) convert to and from `JSONValue` by hand,
/// bypassing Foundation's JSONEncoder/Decoder, which cost most of the coordinator's time per
/// task. The JSON is the same as their Codable form, so either side may use either.
public protocol JSONConvertible {
    init(json: JSONValue) throws
    var json: JSONValue { get }
}

extension JSONValue {
    func field(_ key: String) throws -> JSONValue {
        guard let v = self[key] else { throw WireError("missing field `\(key)`") }
        return v
    }

    func string(_ key: String) throws -> String {
        guard let s = self[key]?.stringValue else { throw WireError("field `\(key)` must be a string") }
        return s
    }

    func int(_ key: String) throws -> Int {
        guard let n = self[key]?.doubleValue else { throw WireError("field `\(key)` must be a number") }
        return Int(n)
    }

    func optional(_ key: String) -> JSONValue? {
        guard let v = self[key], !v.isNull else { return nil }
        return v
    }
}

extension Ready: JSONConvertible {
    public init(json: JSONValue) throws { self.init(credits: try json.int("credits")) }
    public var json: JSONValue { ["credits": .number(Double(credits))] }
}

extension Heartbeat: JSONConvertible {
    public init(json: JSONValue) throws {
        self.init(running: (json["running"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
    public var json: JSONValue { ["running": .array(running.map { .string($0) })] }
}

extension Ack: JSONConvertible {
    public init(json: JSONValue) throws {
        self.init(attemptId: try json.string("attemptId"), outcome: try json.string("outcome"))
    }
    public var json: JSONValue { ["attemptId": .string(attemptId), "outcome": .string(outcome)] }
}

extension TaskProgress: JSONConvertible {
    public init(json: JSONValue) throws {
        self.init(attemptId: try json.string("attemptId"), event: json["event"] ?? .null)
    }
    public var json: JSONValue { ["attemptId": .string(attemptId), "event": event] }
}

extension ProducedArtifact: JSONConvertible {
    public init(json: JSONValue) throws {
        self.init(name: try json.string("name"), sha256: try json.string("sha256"), bytes: Int64(try json.int("bytes")))
    }
    public var json: JSONValue {
        ["name": .string(name), "sha256": .string(sha256), "bytes": .number(Double(bytes))]
    }
}

extension TaskResult: JSONConvertible {
    public init(json: JSONValue) throws {
        var units: [String: String] = [:]
        for (k, v) in json["units"]?.objectValue ?? [:] { units[k] = v.stringValue ?? v.displayText }
        self.init(attemptId: try json.string("attemptId"), taskId: try json.string("taskId"),
                  metrics: json["metrics"]?.objectValue ?? [:], units: units, details: json["details"] ?? .null,
                  artifacts: try (json["artifacts"]?.arrayValue ?? []).map(ProducedArtifact.init(json:)),
                  credit: json["credit"]?.intValue ?? 0)
    }
    public var json: JSONValue {
        ["attemptId": .string(attemptId), "taskId": .string(taskId), "metrics": .object(metrics),
         "units": .object(units.mapValues { .string($0) }), "details": details,
         "artifacts": .array(artifacts.map(\.json)), "credit": .number(Double(credit))]
    }
}

extension TaskFailed: JSONConvertible {
    public init(json: JSONValue) throws {
        self.init(attemptId: try json.string("attemptId"), taskId: try json.string("taskId"),
                  error: try json.string("error"), exitCode: json.optional("exitCode")?.intValue.map(Int32.init),
                  stderrTail: json.optional("stderrTail")?.stringValue, retryable: json["retryable"]?.boolValue ?? true,
                  credit: json["credit"]?.intValue ?? 0)
    }
    public var json: JSONValue {
        ["attemptId": .string(attemptId), "taskId": .string(taskId), "error": .string(error),
         "exitCode": exitCode.map { .number(Double($0)) } ?? .null,
         "stderrTail": stderrTail.map { .string($0) } ?? .null, "retryable": .bool(retryable),
         "credit": .number(Double(credit))]
    }
}

extension InputArtifact: JSONConvertible {
    public init(json: JSONValue) throws {
        self.init(taskId: try json.string("taskId"), name: try json.string("name"), sha256: try json.string("sha256"),
                  bytes: Int64(try json.int("bytes")))
    }
    public var json: JSONValue {
        ["taskId": .string(taskId), "name": .string(name), "sha256": .string(sha256), "bytes": .number(Double(bytes))]
    }
}

extension Assign: JSONConvertible {
    public init(json: JSONValue) throws {
        var inputs: [String: InputArtifact] = [:]
        for (k, v) in json["inputs"]?.objectValue ?? [:] { inputs[k] = try InputArtifact(json: v) }
        self.init(attemptId: try json.string("attemptId"), taskId: try json.string("taskId"),
                  sweep: try json.string("sweep"), stage: try json.string("stage"), engine: try json.string("engine"),
                  params: json["params"]?.objectValue ?? [:], method: json.optional("method"),
                  data: json.optional("data"), measure: json.optional("measure"), inputs: inputs,
                  device: try json.string("device"))
    }
    public var json: JSONValue {
        ["attemptId": .string(attemptId), "taskId": .string(taskId), "sweep": .string(sweep), "stage": .string(stage),
         "engine": .string(engine), "params": .object(params), "method": method ?? .null, "data": data ?? .null,
         "measure": measure ?? .null, "inputs": .object(inputs.mapValues(\.json)), "device": .string(device)]
    }
}
