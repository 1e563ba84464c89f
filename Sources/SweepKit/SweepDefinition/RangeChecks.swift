/// Values checked against the engine's published ranges (`EngineRanges`): one table per
/// engine, so `validate` refuses exactly what the engine would refuse for a key. Rules that
/// span keys (n < m, probability_start ≤ probability, distinct batch sizes) stay with the
/// sections that read those keys.
extension SpecReader {
    /// Examples for messages, by key; keys the table has and this list lacks get one made
    /// from their range.
    static let rangeExamples: [String: String] = [
        "epochs": "`epochs: 10`", "batch_size": "`batch_size: 64`", "eval_batch_size": "`eval_batch_size: 256`",
        "max_steps": "`max_steps: 20`", "num_threads": "`num_threads: 2`", "val_split": "`val_split: 5000`",
        "lr": "`lr: 0.05`", "lr_final": "`lr_final: 1.0e-5`", "momentum": "`momentum: 0.9`",
        "weight_decay": "`weight_decay: 5.0e-4`", "seed": "`seed: 0`", "n": "`n: 2`", "m": "`m: 4`",
        "shape": "`shape: [4, 4]`", "probability": "`probability: 0.5`",
        "probability_start": "`probability_start: 0.3`", "batch_sizes": "`batch_sizes: [1, 64]`",
        "warmup": "`warmup: 20`", "iterations": "`iterations: 200`", "precision": "`precision: 0.02`",
        "max_seconds": "`max_seconds: 30`", "block": "`block: 10`",
    ]

    static func example(_ key: String, _ range: EngineRange) -> String {
        if let e = rangeExamples[key] { return e }
        let value: String
        switch range.kind {
        case .bool: value = "true"
        case .enum: value = range.values?.first ?? "…"
        case .scheduler: value = "none"
        case .int, .intList, .number, nil:
            var x = 1.0
            if let lo = range.min, !range.contains(x) { x = range.minExclusive ? lo + 1 : lo }
            if let hi = range.max, !range.contains(x) { x = range.maxExclusive ? hi - 1 : hi }
            if range.kind == .number, !range.contains(x), let lo = range.min, let hi = range.max { x = (lo + hi) / 2 }
            value = range.kind == .intList ? "[\(EngineRange.format(x))]" : EngineRange.format(x)
        }
        return "`\(key): \(value)`"
    }

    /// `node` checked against `range`: its JSON value, or nil when it is reported.
    @discardableResult
    mutating func ranged(_ node: SpecNode, _ path: String, _ range: EngineRange, key: String) -> JSONValue? {
        if node.isNull, range.nullable { return .null }
        switch range.kind {
        case .int:
            return rangedInt(node, path, range, key: key).map { .number(Double($0)) }
        case .number:
            return rangedNumber(node, path, range, key: key).map { .number($0) }
        case .bool:
            return bool(node, path).map { .bool($0) }
        case .enum:
            return choice(node, path, among: range.values ?? []).map { .string($0) }
        case .intList:
            return rangedIntList(node, path, range, key: key, allowSingle: false, distinct: false)
                .map { .array($0.map { .number(Double($0)) }) }
        case .scheduler:
            let before = diagnostics.issues.count + diagnostics.omitted
            SparsityRules.checkScheduler(node, path, &self)
            return diagnostics.issues.count + diagnostics.omitted == before ? node.json : nil
        case nil:
            // A type this build does not know: the engine checks it when the task runs.
            return node.json
        }
    }

    private static func rule(_ what: String, _ range: EngineRange) -> String {
        let bounds = range.boundsText
        return bounds.isEmpty ? what : "\(what) \(bounds)"
    }

    private static func nullNote(_ range: EngineRange) -> String {
        range.nullable ? " or null (the engine decides)" : ""
    }

    /// A whole number within `range`.
    @discardableResult
    mutating func rangedInt(_ node: SpecNode, _ path: String, _ range: EngineRange, key: String) -> Int? {
        let example = Self.example(key, range)
        let rule = Self.rule("a whole number", range)
        switch node.kind {
        case .int(let i) where range.contains(Double(i)):
            return i
        case .int(let i):
            diagnostics.add(node, path, "must be \(rule) (the engine's range), found \(i); e.g. \(example).")
        case .string(let s, _) where Int(s.trimmingCharacters(in: .whitespaces)) != nil:
            diagnostics.add(
                node, path, "expected a whole number, found \(node.found); write it without quotes, e.g. \(example).")
        default:
            diagnostics.add(
                node, path, "expected \(rule)\(Self.nullNote(range)), found \(node.found); e.g. \(example).")
        }
        return nil
    }

    /// A finite number within `range`.
    mutating func rangedNumber(_ node: SpecNode, _ path: String, _ range: EngineRange, key: String) -> Double? {
        let bounds = range.boundsText
        return number(
            node, path, rule: (bounds.isEmpty ? "" : "\(bounds) (the engine's range)") + Self.nullNote(range),
            example: Self.example(key, range)
        ) { range.contains($0) }
    }

    /// A list of whole numbers within `range` (its `length` or `max_length` kept); with
    /// `allowSingle` one number stands for a list of one; with `distinct` a repeat is reported.
    mutating func rangedIntList(
        _ node: SpecNode, _ path: String, _ range: EngineRange, key: String, allowSingle: Bool, distinct: Bool
    ) -> [Int]? {
        let example = Self.example(key, range)
        let items: [(SpecNode, String)]
        if let list = node.items {
            items = list.enumerated().map { ($1, KeyPath.index(path, $0)) }
        } else if allowSingle, case .int = node.kind {
            items = [(node, path)]
        } else {
            let count = range.length.map { "exactly \($0) " } ?? ""
            diagnostics.add(
                node, path,
                "expected a list of \(count)\(Self.rule("whole numbers", range)), found \(node.found); e.g. \(example)."
            )
            return nil
        }
        if let length = range.length, items.count != length {
            diagnostics.add(
                node, path,
                "expected a list of exactly \(length) \(Self.rule("whole numbers", range)), found a list of \(items.count); e.g. \(example)."
            )
            return nil
        }
        guard !items.isEmpty else {
            diagnostics.add(node, path, "is an empty list; give at least one value, e.g. \(example).")
            return nil
        }
        if let most = range.maxLength, items.count > most {
            diagnostics.add(
                node, path,
                "lists \(items.count) values, more than the \(most) the engine takes (the engine's range); e.g. \(example)."
            )
            return nil
        }
        var values: [Int] = []
        var first: [Int: SpecNode] = [:]
        var failed = false
        for (item, itemPath) in items {
            guard let v = rangedInt(item, itemPath, range, key: key) else { failed = true; continue }
            if distinct, let earlier = first[v] {
                let line = earlier.position.map { " (first at line \($0.line))" } ?? ""
                diagnostics.add(item, itemPath, "repeats an earlier value\(line); list each value once.")
                failed = true
                continue
            }
            first[v] = item
            values.append(v)
        }
        return failed ? nil : values
    }
}
