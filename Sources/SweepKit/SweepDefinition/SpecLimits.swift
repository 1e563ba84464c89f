/// Bounds on what a sweep spec may ask for, checked before the work they bound is done: a spec
/// is input from anyone, and a few lines of YAML can otherwise ask for gigabytes (a grid of
/// 10^9 cells, or aliases that repeat each other nine levels deep).
///
/// The defaults sit far above any real sweep (the shipped ones are under 5 KiB, about 300 YAML
/// values, 2 aliases, 8 levels deep and 75 tasks) and far below what exhausts a machine.
public struct SpecLimits: Sendable, Hashable {
    /// A spec file larger than this is refused before it is read in full.
    public static let defaultMaxFileBytes = 1 << 20  // 1 MiB
    /// YAML values (scalars, lists, mappings) the document may hold once every alias is
    /// expanded: aliases are copied when the document is read, so this bounds memory.
    public static let defaultMaxNodes = 100_000
    /// Aliases (`*name`, merge keys included) the document may use.
    public static let defaultMaxAliases = 1_000
    /// Lists and mappings nested inside each other, aliases expanded.
    public static let defaultMaxDepth = 64
    /// Tasks the spec may expand to, all stages together (`--max-tasks` overrides it).
    public static let defaultMaxTasks = 100_000

    public var maxFileBytes: Int
    public var maxNodes: Int
    public var maxAliases: Int
    public var maxDepth: Int
    public var maxTasks: Int

    public init(
        maxFileBytes: Int = SpecLimits.defaultMaxFileBytes, maxNodes: Int = SpecLimits.defaultMaxNodes,
        maxAliases: Int = SpecLimits.defaultMaxAliases, maxDepth: Int = SpecLimits.defaultMaxDepth,
        maxTasks: Int = SpecLimits.defaultMaxTasks
    ) {
        self.maxFileBytes = maxFileBytes
        self.maxNodes = maxNodes
        self.maxAliases = maxAliases
        self.maxDepth = maxDepth
        self.maxTasks = maxTasks
    }

    /// The defaults above.
    public static let `default` = SpecLimits()
}

extension Int {
    /// `1000000000` as `1,000,000,000`, the way limits and counts are shown in messages.
    public var grouped: String {
        let digits = String(self.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return self < 0 ? "-" + out : out
    }

    /// `1048576` as `1 MiB`, `1536` as `1.5 KiB`, small sizes in bytes.
    var byteSize: String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(self), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(self.grouped) bytes" }
        let rounded = (value * 10).rounded() / 10
        let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        return "\(text) \(units[unit])"
    }
}
