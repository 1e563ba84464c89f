import Foundation

/// The values an engine accepts, as its `describe` publishes them under "ranges"
/// (docs/spec-reference.md §5.2): `validate` checks a spec against this table, so what it
/// passes the engine accepts. `builtin` is the sparsity engine's table as this build knows
/// it; the live engine's own, when it can be asked, takes its place.
///
/// Decoded from what an engine process printed: unknown keys are ignored, and every size,
/// string and number is bounded (`DecodingError` otherwise), so a hostile or broken describe
/// cannot make a table that checks nothing or costs memory.
public struct EngineRanges: Sendable, Hashable, Codable {
    /// Every stage parameter the engine takes.
    public var stageParams: [String: EngineRange]
    public var methods: Methods
    public var measure: Measure
    /// The task seed (the grid key `seed`).
    public var seed: EngineRange

    public struct Methods: Sendable, Hashable, Codable {
        /// `n`, `m`.
        public var nM: [String: EngineRange]
        /// `shape`, `select`, `probability`, `probability_start`, `seed`.
        public var block: [String: EngineRange]
        /// Words `skip` takes besides module names.
        public var skipAliases: [String]

        public init(nM: [String: EngineRange], block: [String: EngineRange], skipAliases: [String]) {
            self.nM = nM
            self.block = block
            self.skipAliases = skipAliases
        }

        enum CodingKeys: String, CodingKey {
            case nM = "n_m"
            case block
            case skipAliases = "skip_aliases"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            nM = try EngineRanges.table(c, .nM)
            block = try EngineRanges.table(c, .block)
            skipAliases = try EngineRanges.words(c.decode([String].self, forKey: .skipAliases), c, .skipAliases)
        }
    }

    public struct Measure: Sendable, Hashable, Codable {
        /// `measure.latency`'s keys.
        public var latency: [String: EngineRange]

        public init(latency: [String: EngineRange]) { self.latency = latency }

        enum CodingKeys: String, CodingKey { case latency }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            latency = try EngineRanges.table(c, .latency)
        }
    }

    public init(stageParams: [String: EngineRange], methods: Methods, measure: Measure, seed: EngineRange) {
        self.stageParams = stageParams
        self.methods = methods
        self.measure = measure
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case stageParams = "stage_params"
        case methods, measure, seed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stageParams = try Self.table(c, .stageParams)
        methods = try c.decode(Methods.self, forKey: .methods)
        measure = try c.decode(Measure.self, forKey: .measure)
        seed = try c.decode(EngineRange.self, forKey: .seed)
    }

    // MARK: bounds on what is decoded

    /// Entries per table, characters per name or word, words per list.
    public static let maxEntries = 256
    public static let maxNameBytes = 64
    public static let maxWords = 64

    static func table<K: CodingKey>(_ c: KeyedDecodingContainer<K>, _ key: K) throws -> [String: EngineRange] {
        let table = try c.decode([String: EngineRange].self, forKey: key)
        guard table.count <= maxEntries else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c, debugDescription: "more than \(maxEntries) entries (\(table.count))")
        }
        for name in table.keys where name.isEmpty || name.utf8.count > maxNameBytes {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c, debugDescription: "a key that is empty or longer than \(maxNameBytes) bytes")
        }
        return table
    }

    static func words<K: CodingKey>(_ words: [String], _ c: KeyedDecodingContainer<K>, _ key: K) throws -> [String] {
        guard words.count <= maxWords, words.allSatisfy({ !$0.isEmpty && $0.utf8.count <= maxNameBytes }) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c,
                debugDescription: "more than \(maxWords) words, or one empty or longer than \(maxNameBytes) bytes")
        }
        return words
    }

    // MARK: reading a describe

    /// Why an engine's `describe` gave no table.
    public enum Unavailable: Error, Sendable, Equatable, CustomStringConvertible {
        /// The describe has no "ranges" (an engine older than the table).
        case absent
        /// "ranges" is there but not a table this build can read.
        case malformed(String)

        public var description: String {
            switch self {
            case .absent: return "its describe has no \"ranges\" (an engine from before they were published)"
            case .malformed(let why): return "its \"ranges\" cannot be read: \(why)"
            }
        }
    }

    /// The "ranges" of a `describe` answer.
    public init(describe: JSONValue) throws(Unavailable) {
        guard let ranges = describe["ranges"], !ranges.isNull else { throw .absent }
        do {
            let data = try JSONEncoder().encode(ranges)
            self = try JSONDecoder().decode(EngineRanges.self, from: data)
        } catch let error as DecodingError {
            throw .malformed(Self.describe(error))
        } catch {
            throw .malformed("\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func at(_ path: [CodingKey]) -> String {
            path.isEmpty
                ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "\"\(key.stringValue)\" is missing\(at(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return context.debugDescription + at(context.codingPath)
        @unknown default: return "\(error)"
        }
    }
}

/// What one key accepts: `{"type": "int", "min": 1, "max": 65536, "nullable": true}` and the
/// like (docs/spec-reference.md §5.2).
public struct EngineRange: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case int
        case number
        case bool
        case `enum`
        case intList = "int_list"
        case scheduler
    }

    /// The type as written; `kind` is nil for one this build does not know (not checked here:
    /// the engine checks it when the task runs).
    public var type: String
    public var min: Double?
    public var max: Double?
    public var minExclusive: Bool
    public var maxExclusive: Bool
    /// `enum`'s words.
    public var values: [String]?
    /// `int_list`: exactly this many items.
    public var length: Int?
    /// `int_list`: at most this many items.
    public var maxLength: Int?
    /// null is accepted: the engine decides.
    public var nullable: Bool

    public var kind: Kind? { Kind(rawValue: type) }

    public init(
        _ kind: Kind, min: Double? = nil, max: Double? = nil, minExclusive: Bool = false, maxExclusive: Bool = false,
        values: [String]? = nil, length: Int? = nil, maxLength: Int? = nil, nullable: Bool = false
    ) {
        self.type = kind.rawValue
        self.min = min
        self.max = max
        self.minExclusive = minExclusive
        self.maxExclusive = maxExclusive
        self.values = values
        self.length = length
        self.maxLength = maxLength
        self.nullable = nullable
    }

    enum CodingKeys: String, CodingKey {
        case type, min, max, values, length, nullable
        case minExclusive = "min_exclusive"
        case maxExclusive = "max_exclusive"
        case maxLength = "max_length"
    }

    /// Integers are exact up to 2^53 in a JSON number.
    static let maxExactInteger = 9_007_199_254_740_992.0
    /// A list longer than this is not a list a spec writes.
    static let maxListLength = 1 << 20

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ why: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: why)
        }
        type = try c.decode(String.self, forKey: .type)
        guard !type.isEmpty, type.utf8.count <= EngineRanges.maxNameBytes else {
            throw fail(.type, "a type that is empty or longer than \(EngineRanges.maxNameBytes) bytes")
        }
        min = try c.decodeIfPresent(Double.self, forKey: .min)
        max = try c.decodeIfPresent(Double.self, forKey: .max)
        for (key, bound) in [(CodingKeys.min, min), (.max, max)] {
            guard let bound else { continue }
            guard bound.isFinite, abs(bound) <= Self.maxExactInteger else {
                throw fail(key, "a bound that is not a finite number within ±2^53")
            }
        }
        if let min, let max, min > max { throw fail(.max, "max \(max) is below min \(min)") }
        if Kind(rawValue: type) == .int || Kind(rawValue: type) == .intList,
            [min, max].contains(where: { $0.map { $0.rounded() != $0 } ?? false })
        {
            throw fail(.min, "a bound of a whole-number range that is not whole")
        }
        minExclusive = try c.decodeIfPresent(Bool.self, forKey: .minExclusive) ?? false
        maxExclusive = try c.decodeIfPresent(Bool.self, forKey: .maxExclusive) ?? false
        values = try c.decodeIfPresent([String].self, forKey: .values)
        if let values { _ = try EngineRanges.words(values, c, .values) }
        if Kind(rawValue: type) == .enum, values?.isEmpty ?? true { throw fail(.values, "an enum without values") }
        length = try c.decodeIfPresent(Int.self, forKey: .length)
        maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength)
        for (key, n) in [(CodingKeys.length, length), (.maxLength, maxLength)] {
            guard let n else { continue }
            guard (1...Self.maxListLength).contains(n) else {
                throw fail(key, "a list length outside 1...\(Self.maxListLength)")
            }
        }
        nullable = try c.decodeIfPresent(Bool.self, forKey: .nullable) ?? false
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        try c.encodeIfPresent(min, forKey: .min)
        try c.encodeIfPresent(max, forKey: .max)
        if minExclusive { try c.encode(true, forKey: .minExclusive) }
        if maxExclusive { try c.encode(true, forKey: .maxExclusive) }
        try c.encodeIfPresent(values, forKey: .values)
        try c.encodeIfPresent(length, forKey: .length)
        try c.encodeIfPresent(maxLength, forKey: .maxLength)
        if nullable { try c.encode(true, forKey: .nullable) }
    }

    /// Whether a number lies within the bounds (whole-ness is the caller's check).
    public func contains(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if let min, minExclusive ? x <= min : x < min { return false }
        if let max, maxExclusive ? x >= max : x > max { return false }
        return true
    }

    /// The bounds in words for messages: "from 1 to 65536", "in (0, 1)", "≥ 0".
    public var boundsText: String {
        let whole = kind == .int || kind == .intList
        switch (min, max) {
        case (let lo?, let hi?):
            if whole, !minExclusive, !maxExclusive { return "from \(Self.format(lo)) to \(Self.format(hi))" }
            return "in \(minExclusive ? "(" : "[")\(Self.format(lo)), \(Self.format(hi))\(maxExclusive ? ")" : "]")"
        case (let lo?, nil): return "\(minExclusive ? ">" : "≥") \(Self.format(lo))"
        case (nil, let hi?): return "\(maxExclusive ? "<" : "≤") \(Self.format(hi))"
        case (nil, nil): return ""
        }
    }

    /// 65536, not 65536.0; 0.5 as it is.
    static func format(_ x: Double) -> String {
        if x.rounded() == x, abs(x) < 1e15 { return String(Int(x)) }
        return "\(x)"
    }
}

extension EngineRanges {
    /// The sparsity engine's table (engine/sparsegrid_engine: `describe()["ranges"]`) as this
    /// build knows it; a system test checks that it equals the live engine's.
    public static let builtin = EngineRanges(
        stageParams: [
            "epochs": EngineRange(.int, min: 0, max: 10_000),
            "batch_size": EngineRange(.int, min: 2, max: 65_536),
            "eval_batch_size": EngineRange(.int, min: 1, max: 65_536),
            "max_steps": EngineRange(.int, min: 1, max: 10_000_000, nullable: true),
            "num_threads": EngineRange(.int, min: 1, max: 1024, nullable: true),
            "val_split": EngineRange(.int, min: 0, max: 1_000_000),
            "lr": EngineRange(.number, min: 0, max: 10, minExclusive: true),
            "lr_final": EngineRange(.number, min: 0, max: 10, nullable: true),
            "momentum": EngineRange(.number, min: 0, max: 1, maxExclusive: true),
            "weight_decay": EngineRange(.number, min: 0, max: 1),
            "channels_last": EngineRange(.bool),
            "scheduler": EngineRange(.scheduler, values: ["none", "plateau"]),
        ],
        methods: Methods(
            nM: [
                "n": EngineRange(.int, min: 1, max: 63),
                "m": EngineRange(.int, min: 2, max: 64),
            ],
            block: [
                "shape": EngineRange(.intList, min: 1, max: 64, length: 2),
                "select": EngineRange(.enum, values: ["random", "magnitude"]),
                "probability": EngineRange(.number, min: 0, max: 1, minExclusive: true, maxExclusive: true),
                "probability_start": EngineRange(.number, min: 0, max: 1, maxExclusive: true),
                "seed": EngineRange(.int, min: 0, max: 2_147_483_647),
            ],
            skipAliases: ["first", "last", "shortcuts"]),
        measure: Measure(latency: [
            "batch_sizes": EngineRange(.intList, min: 1, max: 4096, maxLength: 16),
            "warmup": EngineRange(.int, min: 0, max: 100_000),
            "iterations": EngineRange(.int, min: 1, max: 1_000_000),
            "precision": EngineRange(.number, min: 0, max: 0.5),
            "max_seconds": EngineRange(.number, min: 0, max: 3600, minExclusive: true),
            "block": EngineRange(.int, min: 1, max: 10_000),
        ]),
        seed: EngineRange(.int, min: 0, max: 2_147_483_647))
}

extension EngineRange {
    /// A value next to one of the range's edges, and whether the range takes it: what a
    /// table-driven test writes into a spec (and a task) to check that the validator and the
    /// engine draw the line at the same place.
    public struct Probe: Sendable, Hashable, CustomStringConvertible {
        public var value: JSONValue
        public var accepted: Bool
        /// The value as a YAML flow scalar or list.
        public var yaml: String { Self.yaml(value) }
        public var description: String { "\(yaml) (\(accepted ? "inside" : "outside"))" }

        static func yaml(_ v: JSONValue) -> String {
            switch v {
            case .null: return "null"
            case .bool(let b): return b ? "true" : "false"
            case .number(let d):
                if d.rounded() == d, abs(d) < 1e15 { return String(Int(d)) }
                let text = "\(d)"
                return text.contains("e") ? String(format: "%.12f", d) : text
            case .string(let s): return s
            case .array(let a): return "[" + a.map(yaml).joined(separator: ", ") + "]"
            case .object: return "{}"
            }
        }
    }

    /// Just inside and just outside each bound (a whole step for whole numbers, 0.001 for
    /// numbers), null where `nullable`, a value of the wrong type; for lists also the length
    /// limits. Empty for `scheduler` and unknown types (not a table's to say).
    public var probes: [Probe] {
        var out: [Probe] = []
        switch kind {
        case .int, .number:
            let step = kind == .int ? 1.0 : 0.001
            if let lo = min {
                out.append(Probe(value: .number(lo), accepted: !minExclusive))
                out.append(Probe(value: .number(minExclusive ? lo + step : lo - step), accepted: minExclusive))
            }
            if let hi = max {
                out.append(Probe(value: .number(hi), accepted: !maxExclusive))
                out.append(Probe(value: .number(maxExclusive ? hi - step : hi + step), accepted: maxExclusive))
            }
            out.append(Probe(value: .bool(true), accepted: false))
            if kind == .int { out.append(Probe(value: .number(inside + 0.5), accepted: false)) }
        case .bool:
            out += [
                Probe(value: true, accepted: true), Probe(value: false, accepted: true),
                Probe(value: 1, accepted: false),
            ]
        case .enum:
            out += (values ?? []).map { Probe(value: .string($0), accepted: true) }
            out.append(Probe(value: "no_such_value", accepted: false))
        case .intList:
            let n = length ?? 1
            let element = EngineRange(.int, min: min, max: max, minExclusive: minExclusive, maxExclusive: maxExclusive)
            let fill = JSONValue.number(element.inside)
            for p in element.probes where p.value.doubleValue != nil {
                out.append(Probe(value: .array([p.value] + Array(repeating: fill, count: n - 1)), accepted: p.accepted))
            }
            if let length {
                if length > 1 {
                    out.append(Probe(value: .array(Array(repeating: fill, count: length - 1)), accepted: false))
                }
                out.append(Probe(value: .array(Array(repeating: fill, count: length + 1)), accepted: false))
            }
            if let most = maxLength, let lo = element.lowestWhole,
                lo + Double(most) <= (element.highestWhole ?? .infinity)
            {
                let distinct = (0...most).map { JSONValue.number(lo + Double($0)) }
                out.append(Probe(value: .array(Array(distinct.prefix(most))), accepted: true))
                out.append(Probe(value: .array(distinct), accepted: false))
            }
        case .scheduler, nil:
            break
        }
        if nullable, kind != nil, kind != .scheduler { out.append(Probe(value: .null, accepted: true)) }
        return out
    }

    /// A whole value the range takes (1 when it does), for filling lists and specs.
    public var inside: Double {
        if contains(1) { return 1 }
        return lowestWhole ?? highestWhole ?? 1
    }

    var lowestWhole: Double? {
        guard let lo = min else { return nil }
        let x = lo.rounded(.up) + (minExclusive && lo.rounded(.up) == lo ? 1 : 0)
        return contains(x) ? x : nil
    }

    var highestWhole: Double? {
        guard let hi = max else { return nil }
        let x = hi.rounded(.down) - (maxExclusive && hi.rounded(.down) == hi ? 1 : 0)
        return contains(x) ? x : nil
    }
}
