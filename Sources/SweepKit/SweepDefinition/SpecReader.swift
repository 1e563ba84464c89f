import Foundation

/// Typed reads over `SpecNode`s that record an issue instead of throwing, so the parsers can
/// keep going and report every problem of a spec in one run.
struct SpecReader: Sendable {
    var diagnostics: Diagnostics
    /// What the engine accepts (`RangeChecks.swift`); the sparsity engine's built-in table
    /// unless the caller has the live engine's.
    var ranges: EngineRanges

    init(file: String, ranges: EngineRanges = .builtin) {
        diagnostics = Diagnostics(file: file)
        self.ranges = ranges
    }

    /// A mapping whose keys were checked against `allowed`.
    struct Fields: Sendable {
        let node: SpecNode
        let path: String
        let entries: [SpecEntry]

        subscript(key: String) -> SpecNode? {
            entries.first { $0.key == key }?.value
        }

        func path(_ key: String) -> String { KeyPath.child(path, key) }

        /// Where `key:` itself is written.
        func keyPosition(_ key: String) -> Position? {
            entries.first { $0.key == key }?.keyPosition
        }
    }

    /// `node` as a mapping; unknown keys are reported with the closest valid one.
    /// `owner` names the mapping in messages ("`grid`", "a method"…).
    mutating func fields(_ node: SpecNode, _ path: String, allowed: [String], owner: String) -> Fields? {
        guard let entries = node.entries else {
            diagnostics.add(node, path, "expected a mapping of \(Self.keyList(allowed)), found \(node.found).")
            return nil
        }
        for entry in entries where !allowed.contains(entry.key) {
            unknownKey(entry, in: path, allowed: allowed, owner: owner)
        }
        return Fields(node: node, path: path, entries: entries.filter { allowed.contains($0.key) })
    }

    mutating func unknownKey(
        _ entry: SpecEntry, in path: String, allowed: [String], owner: String,
        validKeys: String? = nil
    ) {
        diagnostics.add(
            at: entry.keyPosition, KeyPath.child(path, entry.key),
            "`\(entry.key)` is not a key of \(owner);"
                + Suggestions.tail(
                    for: entry.key, in: allowed, label: "Valid keys",
                    list: validKeys ?? allowed.joined(separator: ", ")))
    }

    /// The value of a required key, or an issue at the mapping saying what to add.
    mutating func require(_ fields: Fields, _ key: String, _ advice: String) -> SpecNode? {
        if let node = fields[key] { return node }
        diagnostics.add(fields.node, fields.path(key), "missing; \(advice)")
        return nil
    }

    // MARK: scalars

    mutating func string(_ node: SpecNode, _ path: String, example: String) -> String? {
        if case .string(let s, _) = node.kind, !s.isEmpty { return s }
        switch node.kind {
        case .string:
            diagnostics.add(node, path, "is empty; write a value, e.g. \(example).")
        case .int, .float, .bool:
            diagnostics.add(
                node, path,
                "expected text, found \(node.found); put it in quotes if it is meant as text, e.g. \(example).")
        default:
            diagnostics.add(node, path, "expected text, found \(node.found); e.g. \(example).")
        }
        return nil
    }

    /// A name used as an identifier (sweep, stage, method, engine).
    mutating func name(_ node: SpecNode, _ path: String, what: String, example: String) -> String? {
        guard let s = string(node, path, example: example) else { return nil }
        guard Self.isName(s) else {
            diagnostics.add(
                node, path,
                "\"\(s)\" is not a valid \(what); use only letters, digits, `.`, `_` and `-`, e.g. \(example).")
            return nil
        }
        return s
    }

    static func isName(_ s: String) -> Bool {
        !s.isEmpty
            && s.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || $0 == "." || $0 == "_" || $0 == "-"
            }
    }

    mutating func bool(_ node: SpecNode, _ path: String) -> Bool? {
        if case .bool(let b) = node.kind { return b }
        diagnostics.add(node, path, "expected true or false, found \(node.found).")
        return nil
    }

    /// A whole number ≥ `min` (and ≤ `max` when given).
    mutating func int(_ node: SpecNode, _ path: String, min: Int, max: Int = Int.max, example: String) -> Int? {
        switch node.kind {
        case .int(let i) where i >= min && i <= max:
            return i
        case .int(let i) where i < min:
            diagnostics.add(node, path, "must be at least \(min), found \(i); e.g. \(example).")
        case .int(let i):
            diagnostics.add(node, path, "must be at most \(max), found \(i); e.g. \(example).")
        case .string(let s, _) where Int(s.trimmingCharacters(in: .whitespaces)) != nil:
            diagnostics.add(
                node, path, "expected a whole number, found \(node.found); write it without quotes, e.g. \(example).")
        default:
            diagnostics.add(
                node, path,
                "expected a whole number\(min > Int.min ? " ≥ \(min)" : ""), found \(node.found); e.g. \(example).")
        }
        return nil
    }

    /// A finite number for which `valid` holds; `rule` says the range in words ("greater than 0").
    mutating func number(
        _ node: SpecNode, _ path: String, rule: String, example: String,
        valid: (Double) -> Bool
    ) -> Double? {
        let value: Double
        switch node.kind {
        case .int(let i): value = Double(i)
        case .float(let d): value = d
        case .string(let s, _):
            if let fixed = Self.numberSpelling(s) {
                diagnostics.add(
                    node, path,
                    "expected a number, found \(node.found); write \(fixed) without quotes so that YAML reads it as a number."
                )
            } else {
                diagnostics.add(node, path, "expected a number \(rule), found \(node.found); e.g. \(example).")
            }
            return nil
        default:
            diagnostics.add(node, path, "expected a number \(rule), found \(node.found); e.g. \(example).")
            return nil
        }
        guard value.isFinite, valid(value) else {
            diagnostics.add(node, path, "must be a number \(rule), found \(value); e.g. \(example).")
            return nil
        }
        return value
    }

    /// How to write a string that looks like a number so every YAML reader takes it as one:
    /// YAML 1.1 readers treat `5e-4` as text, `5.0e-4` as a float.
    static func numberSpelling(_ s: String) -> String? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, Double(t) != nil, t.allSatisfy({ "0123456789.eE+-".contains($0) }) else { return nil }
        guard let e = t.firstIndex(where: { $0 == "e" || $0 == "E" }), !t[..<e].contains(".") else { return t }
        return String(t[..<e]) + ".0" + String(t[e...])
    }

    /// A list (or a single item, taken as a list of one) of items read by `item`; reports
    /// an empty list and repeated items.
    mutating func list<T: Hashable>(
        _ node: SpecNode, _ path: String, allowSingle: Bool, what: String,
        item: (inout SpecReader, SpecNode, String) -> T?
    ) -> [T]? {
        let nodes: [SpecNode]
        if let items = node.items {
            nodes = items
        } else if allowSingle, !node.isNull, node.entries == nil {
            return item(&self, node, path).map { [$0] }
        } else {
            diagnostics.add(node, path, "expected a list of \(what), found \(node.found); e.g. [a, b].")
            return nil
        }
        guard !nodes.isEmpty else {
            diagnostics.add(node, path, "is an empty list; give at least one value.")
            return nil
        }
        var values: [T] = []
        var firstNode: [T: SpecNode] = [:]  // a hash lookup: a list can hold thousands of values
        var failed = false
        for (i, n) in nodes.enumerated() {
            let p = KeyPath.index(path, i)
            guard let v = item(&self, n, p) else { failed = true; continue }
            if let first = firstNode[v] {
                let line = first.position.map { " (first at line \($0.line))" } ?? ""
                diagnostics.add(n, p, "repeats an earlier value\(line); list each value once.")
                failed = true
                continue
            }
            firstNode[v] = n
            values.append(v)
        }
        return failed ? nil : values
    }

    static func keyList(_ keys: [String]) -> String {
        keys.map { "`\($0)`" }.joined(separator: ", ")
    }
}
