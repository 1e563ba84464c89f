import SweepKit

/// A message header being read: every accessor checks type, range and length and throws a
/// `WireError` that names the message and the field. Numbers become integers only when they
/// are whole and in range, so `1e20` or `-1` never reaches `Int(…)` or `Int32(…)`.
public struct Fields {
    public let message: String
    private let object: [String: JSONValue]

    public init(_ json: JSONValue, message: String) throws {
        guard case .object(let object) = json else {
            throw WireError("the `\(message)` header must be a JSON object", code: .malformed)
        }
        self.message = message
        self.object = object
    }

    func fail(_ key: String, _ rule: String) -> WireError {
        WireError("`\(message)`.\(key) \(rule)", code: .malformed)
    }

    /// The raw value, or nil when absent or null.
    public func optional(_ key: String) -> JSONValue? {
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    public func require(_ key: String) throws -> JSONValue {
        guard let v = optional(key) else { throw fail(key, "is missing") }
        return v
    }

    public func string(_ key: String, maxBytes: Int) throws -> String {
        guard case .string(let s) = try require(key) else { throw fail(key, "must be a string") }
        guard s.utf8.count <= maxBytes else { throw fail(key, "is longer than \(maxBytes) bytes") }
        return s
    }

    public func optionalString(_ key: String, maxBytes: Int) throws -> String? {
        optional(key) == nil ? nil : try string(key, maxBytes: maxBytes)
    }

    /// An id: 1…128 characters of [A-Za-z0-9._:@-].
    public func id(_ key: String) throws -> String {
        let s = try string(key, maxBytes: WireLimits.maxIdLength)
        guard WireId.isValid(s) else { throw fail(key, "is not an id (1–128 characters of A–Z a–z 0–9 . _ : @ -)") }
        return s
    }

    public func sha256(_ key: String) throws -> String {
        let s = try string(key, maxBytes: 64)
        guard WireId.isSHA256(s) else { throw fail(key, "is not a lowercase hex SHA-256") }
        return s
    }

    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        Int(try int64(key, in: Int64(range.lowerBound)...Int64(range.upperBound)))
    }

    public func optionalInt(_ key: String, in range: ClosedRange<Int>, default value: Int) throws -> Int {
        optional(key) == nil ? value : try int(key, in: range)
    }

    public func int64(_ key: String, in range: ClosedRange<Int64>) throws -> Int64 {
        guard case .number(let d) = try require(key) else { throw fail(key, "must be a number") }
        // Compare as Double first: converting an out-of-range Double to an integer traps.
        guard d.isFinite, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound),
            let n = Int64(exactly: d), range.contains(n)
        else { throw fail(key, "must be a whole number in \(range.lowerBound)…\(range.upperBound)") }
        return n
    }

    public func double(_ key: String, in range: ClosedRange<Double>) throws -> Double {
        guard case .number(let d) = try require(key) else { throw fail(key, "must be a number") }
        guard d.isFinite, range.contains(d) else {
            throw fail(key, "must be in \(range.lowerBound)…\(range.upperBound)")
        }
        return d
    }

    public func bool(_ key: String, default value: Bool? = nil) throws -> Bool {
        guard let v = optional(key) else {
            if let value { return value }
            throw fail(key, "is missing")
        }
        guard case .bool(let b) = v else { throw fail(key, "must be true or false") }
        return b
    }

    public func array(_ key: String, maxCount: Int, optional: Bool = false) throws -> [JSONValue] {
        guard let v = self.optional(key) else {
            if optional { return [] }
            throw fail(key, "is missing")
        }
        guard case .array(let a) = v else { throw fail(key, "must be an array") }
        guard a.count <= maxCount else { throw fail(key, "has more than \(maxCount) entries") }
        return a
    }

    public func object(_ key: String, maxCount: Int, optional: Bool = false) throws -> [String: JSONValue] {
        guard let v = self.optional(key) else {
            if optional { return [:] }
            throw fail(key, "is missing")
        }
        guard case .object(let o) = v else { throw fail(key, "must be an object") }
        guard o.count <= maxCount else { throw fail(key, "has more than \(maxCount) entries") }
        return o
    }

    /// A list of ids (e.g. the attempts a worker runs).
    public func ids(_ key: String, maxCount: Int) throws -> [String] {
        try array(key, maxCount: maxCount, optional: true).map { v in
            guard case .string(let s) = v, WireId.isValid(s) else { throw fail(key, "must list ids") }
            return s
        }
    }
}
