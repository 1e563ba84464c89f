import SweepKit
import Wire

/// What an engine printed on stdout, read line by line and checked against
/// engine/CONTRACT.md ("What a worker enforces"): every event of a known kind has its
/// required fields with the right types, there is at most one `result`, and lines that are
/// not events (not JSON, not an object, no `"event"`, an unknown kind) are counted and the
/// first few kept for the attempt's stderr tail rather than dropped silently.
struct EngineEvents {
    struct Artifact: Equatable {
        var name: String
        /// As the engine reported it; `ArtifactContainment` decides what it may mean.
        var path: String
        var sha256: String?
    }

    enum Reading: Equatable {
        /// Nothing to pass on (an artifact, an error, a result, or a line kept as stray).
        case recorded
        /// A `progress` or `metric` event, for the coordinator.
        case progress(JSONValue)
        /// The engine broke the contract: the attempt fails with this reason (not retryable).
        case violation(String)
    }

    static let event = "event"
    /// Kinds of events the contract defines.
    static let kinds: Set<String> = ["progress", "metric", "artifact", "result", "error"]
    /// Stray lines kept for the stderr tail (each cut to `strayChars`); the rest are counted.
    static let keptStrays = 5
    static let strayChars = 200

    private(set) var result: JSONValue? = nil
    private(set) var errorMessage: String? = nil
    private(set) var artifacts: [Artifact] = []
    private(set) var strayCount = 0
    private(set) var strays: [String] = []

    /// Reads one stdout line (without its newline).
    mutating func read(_ line: String) -> Reading {
        if line.isEmpty { return .recorded }
        guard let value = try? JSONValue.parse(line), let event = value.objectValue,
            let kind = event[Self.event]?.stringValue, Self.kinds.contains(kind)
        else {
            stray(line)
            return .recorded
        }
        if let problem = Self.problem(kind: kind, event) {
            return .violation("the engine broke its contract (engine/CONTRACT.md): \(problem)")
        }
        switch kind {
        case "progress", "metric":
            return .progress(value)
        case "artifact":
            guard artifacts.count < WireLimits.maxArtifactsPerResult else {
                return .violation(
                    "the engine broke its contract (engine/CONTRACT.md): more than "
                        + "\(WireLimits.maxArtifactsPerResult) artifacts")
            }
            artifacts.append(
                Artifact(
                    name: event["name"]!.stringValue!, path: event["path"]!.stringValue!,
                    sha256: event["sha256"]?.stringValue?.lowercased()))
        case "result":
            guard result == nil else {
                return .violation(
                    "the engine broke its contract (engine/CONTRACT.md): it printed a second "
                        + "`result` event; exactly one is allowed")
            }
            result = value
        default:  // "error"
            errorMessage = event["message"]!.stringValue!
        }
        return .recorded
    }

    /// What is wrong with an event of a known kind, or nil if it has what the contract requires.
    static func problem(kind: String, _ event: [String: JSONValue]) -> String? {
        func string(_ key: String, optional: Bool = false) -> String? {
            guard let value = event[key] else { return optional ? nil : "its `\(kind)` event has no `\(key)`" }
            if let text = value.stringValue, !text.isEmpty { return nil }
            return "its `\(kind)` event's `\(key)` is not a non-empty string"
        }
        switch kind {
        case "progress":
            return nil
        case "metric":
            if let problem = string("name") { return problem }
            guard let value = event["value"] else { return "its `metric` event has no `value`" }
            if value.doubleValue == nil, !value.isNull { return "its `metric` event's `value` is not a number or null" }
            return nil
        case "artifact":
            if let problem = string("name") ?? string("path") ?? string("sha256", optional: true) { return problem }
            if let sha = event["sha256"]?.stringValue, !WireId.isSHA256(sha.lowercased()) {
                return "its `artifact` event's `sha256` is not 64 hex digits"
            }
            if let bytes = event["bytes"], (bytes.doubleValue ?? -1) < 0 {
                return "its `artifact` event's `bytes` is not a number ≥ 0"
            }
            return nil
        case "result":
            guard let metrics = event["metrics"] else { return "its `result` event has no `metrics`" }
            guard let values = metrics.objectValue else { return "its `result` event's `metrics` is not an object" }
            for (name, value) in values.sorted(by: { $0.key < $1.key }) {
                switch value {
                case .number, .null, .bool: continue
                default: return "its result has metric '\(name.prefix(64))' that is not a number or null"
                }
            }
            if let units = event["units"], units.objectValue == nil {
                return "its `result` event's `units` is not an object"
            }
            return nil
        case "error":
            if let problem = string("message") { return problem }
            if let invalid = event["invalid"], invalid.boolValue == nil {
                return "its `error` event's `invalid` is not true or false"
            }
            return nil
        default:
            return "its event kind `\(kind)` is unknown"
        }
    }

    private mutating func stray(_ line: String) {
        strayCount += 1
        if strays.count < Self.keptStrays { strays.append(String(line.prefix(Self.strayChars))) }
    }

    /// For the stderr tail: the lines that were not events, if there were any.
    var strayNote: String? {
        guard strayCount > 0 else { return nil }
        let more = strayCount > strays.count ? " (and \(strayCount - strays.count) more)" : ""
        return "[the engine printed \(strayCount) stdout line(s) that are not events of the contract\(more): "
            + strays.joined(separator: " | ") + "]"
    }
}
