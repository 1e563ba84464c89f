/// One table of the spec's `report:` section.
public struct ReportSpec: Codable, Sendable, Hashable {
    /// How a speedup (t_baseline / t_measured) is written as a percentage.
    public enum SpeedupPercent: String, Codable, Sendable, Hashable, CaseIterable {
        /// (speedup - 1) × 100: how much more work per unit time.
        case gain
        /// (1 - t_measured / t_baseline) × 100 = (1 - 1/speedup) × 100: how much less time, the
        /// study's definition (its 27.9% = 1 - 3.1/4.3).
        case reduction

        /// The percentage for a speedup.
        public func percent(_ speedup: Double) -> Double {
            switch self {
            case .gain: return (speedup - 1) * 100
            case .reduction: return (1 - 1 / speedup) * 100
            }
        }

        /// One sentence that defines it, for notes and figure captions.
        public var definition: String {
            switch self {
            case .gain:
                return
                    "% = throughput gain, (speedup - 1) × 100 (set speedup_percent: reduction for the study's latency reduction)"
            case .reduction:
                return
                    "% = latency reduction, (1 - t_measured / t_baseline) × 100 = (1 - 1/speedup) × 100, the study's definition (its 27.9% = 1 - 3.1/4.3)"
            }
        }
    }

    public var title: String
    public var rows: String
    public var columns: String
    public var values: [String]
    /// `speedup_percent:` in the spec; default gain.
    public var speedupPercent: SpeedupPercent

    public init(
        title: String, rows: String, columns: String, values: [String], speedupPercent: SpeedupPercent = .gain
    ) {
        self.title = title
        self.rows = rows
        self.columns = columns
        self.values = values
        self.speedupPercent = speedupPercent
    }

    private enum CodingKeys: String, CodingKey { case title, rows, columns, values, speedupPercent }

    // Plans stored before `speedupPercent` existed decode with the default; the default is not
    // written, so their stored JSON stays the same.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        title = try c.decode(String.self, forKey: .title)
        rows = try c.decode(String.self, forKey: .rows)
        columns = try c.decode(String.self, forKey: .columns)
        values = try c.decode([String].self, forKey: .values)
        speedupPercent = try c.decodeIfPresent(SpeedupPercent.self, forKey: .speedupPercent) ?? .gain
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(title, forKey: .title)
        try c.encode(rows, forKey: .rows)
        try c.encode(columns, forKey: .columns)
        try c.encode(values, forKey: .values)
        if speedupPercent != .gain { try c.encode(speedupPercent, forKey: .speedupPercent) }
    }
}
