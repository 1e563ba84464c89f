import Foundation
import SweepKit

/// Encoding and decoding of the JSON text columns. Columns hold canonical JSON (sorted keys,
/// integers without ".0") so equal values are equal text.
enum JSONColumns {
    static func text(_ params: [String: JSONValue]) -> String {
        JSONValue.object(params).canonicalText
    }

    static func text(_ units: [String: String]) -> String {
        JSONValue.object(units.mapValues { .string($0) }).canonicalText
    }

    /// A nil metric ("not applicable") is JSON null so that it survives the round trip.
    /// A non-finite value has no JSON form and is stored as null too.
    static func text(_ metrics: [String: Double?]) -> String {
        JSONValue.object(metrics.mapValues { $0.map(JSONValue.number) ?? .null }).canonicalText
    }

    static func plan(_ plan: SweepPlan) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(plan), as: UTF8.self)
    }

    static func plan(_ text: String, sweep: String) throws -> SweepPlan {
        do {
            return try JSONDecoder().decode(SweepPlan.self, from: Data(text.utf8))
        } catch {
            throw StoreError(
                .corrupt,
                "the stored plan of sweep \(sweep) cannot be read (\(error)); relaunch the sweep from its spec.")
        }
    }

    static func value(_ text: String, what: @autoclosure () -> String) throws -> JSONValue {
        do {
            return try JSONValue.parse(text)
        } catch {
            throw StoreError(.corrupt, "the stored \(what()) is not valid JSON: \(text.prefix(80))")
        }
    }

    static func object(_ text: String, what: @autoclosure () -> String) throws -> [String: JSONValue] {
        guard let object = try value(text, what: what()).objectValue else {
            throw StoreError(.corrupt, "the stored \(what()) is not a JSON object: \(text.prefix(80))")
        }
        return object
    }

    static func metrics(_ text: String, what: @autoclosure () -> String) throws -> [String: Double?] {
        var out: [String: Double?] = [:]
        for (name, value) in try object(text, what: what()) {
            switch value {
            case .number(let d): out[name] = .some(d)
            case .null: out[name] = .some(nil)
            default: throw StoreError(.corrupt, "the stored \(what()) has a non-number value for \(name)")
            }
        }
        return out
    }

    static func units(_ text: String, what: @autoclosure () -> String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (name, value) in try object(text, what: what()) {
            out[name] = value.stringValue ?? value.displayText
        }
        return out
    }
}

extension TaskState {
    static func stored(_ raw: String, task: String) throws -> TaskState {
        guard let state = TaskState(rawValue: raw) else {
            throw StoreError(
                .corrupt, "task \(task) has an unknown stored state \"\(raw)\"; was it written by a newer sparsegrid?")
        }
        return state
    }
}

extension AttemptOutcome {
    static func stored(_ raw: String, attempt: String) throws -> AttemptOutcome {
        guard let outcome = AttemptOutcome(rawValue: raw) else {
            throw StoreError(
                .corrupt,
                "attempt \(attempt) has an unknown stored outcome \"\(raw)\"; was it written by a newer sparsegrid?")
        }
        return outcome
    }
}
