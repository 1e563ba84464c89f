import Foundation
import SweepKit

/// Indented JSON with sorted keys (stable output for diffs and golden files); numbers are
/// written plain (integers without ".0"), non-finite numbers as null. Strings are spelled by
/// SweepKit's `JSONValue.writeString`, the one JSON string escaper (`Escaping.json`).
enum JSONText {
    static func pretty(_ value: JSONValue) -> String {
        var out = ""
        write(value, indent: 0, into: &out)
        return out + "\n"
    }

    private static func write(_ value: JSONValue, indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent + 1), closePad = String(repeating: "  ", count: indent)
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let d): out += d.isFinite ? NumberText.plain(d) : "null"
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                write(item, indent: indent + 1, into: &out)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += closePad + "]"
        case .object(let fields):
            if fields.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = fields.keys.sorted()
            for (i, key) in keys.enumerated() {
                out += pad
                JSONValue.writeString(key, into: &out)
                out += ": "
                write(fields[key]!, indent: indent + 1, into: &out)
                out += i + 1 < keys.count ? ",\n" : "\n"
            }
            out += closePad + "}"
        }
    }
}

extension JSONValue {
    /// A number or null.
    static func nullable(_ value: Double?) -> JSONValue { value.map { .number($0) } ?? .null }
    static func nullable(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
    static func nullable(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
}
