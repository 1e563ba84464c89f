import SweepKit

/// The 95% interval of a cell's speedup and what it says. Computed from the per-block medians
/// the engine keeps (`details.latency.batch_sizes[B].blocks`): block i of the baseline and of
/// the measured variant were timed in the same interleaved round, so they are resampled as a
/// pair. With several seeds the bootstrap is hierarchical — seeds drawn with replacement, then
/// block pairs within each drawn seed — so a spread between seeds widens the interval.
struct SpeedupInterval: Sendable, Equatable {
    var low: Double
    var high: Double
    /// Where it came from: "bootstrap" (blocks, here) or "engine" (the task's own comparisons[].ci95).
    var source: String

    /// faster / slower / no detectable difference (speedup = t_baseline / t_measured).
    var verdict: Verdict {
        if low > 1 { return .faster }
        if high < 1 { return .slower }
        return .noDifference
    }

    enum Verdict: String, Sendable {
        case faster, slower
        case noDifference = "no detectable difference"
    }

    /// Why a cell has no interval (shown in notes; no verdict then).
    enum Missing: String, Error, Sendable, CaseIterable {
        case noBlocks = "no interval: the result has no per-block timings"
        case someWithoutBlocks = "no interval: not every task of the cell has per-block timings"
        case malformedBlocks =
            "no interval: the per-block timings are malformed (unequal lengths, fewer than 2 or more than 200 blocks, or non-positive values)"
    }

    static let resamples = 2000
    /// The engine keeps at most this many blocks per variant (interfaces: MAX_BLOCKS).
    static let maxBlocks = 200

    /// Aligned block medians of one task: baseline[i] and measured[i] from the same round.
    struct Pairs: Sendable, Equatable {
        var baseline: [Double]
        var measured: [Double]
    }

    /// The engine's details for one task and comparison: blocks (when usable), its ci95, and
    /// whether blocks were present but unusable.
    struct TaskTiming: Sendable {
        var pairs: Pairs?
        var engineInterval: (Double, Double)?
        var malformed = false
    }

    /// Reads the batch size whose `measuredVariant` median equals `metricValue` (the metric is
    /// that median), then its blocks and the named comparison's ci95.
    static func timing(
        of task: ResultRow, metricValue: Double, measuredVariant: String, baselineVariant: String,
        comparison: String
    ) -> TaskTiming {
        var result = TaskTiming()
        guard let sizes = task.details["latency"]?["batch_sizes"]?.objectValue else { return result }
        guard
            let key = sizes.keys.sorted().first(where: {
                sizes[$0]?[measuredVariant]?["median"]?.doubleValue == metricValue
            }), let size = sizes[key]
        else { return result }
        if let blocks = size["blocks"]?.objectValue {
            let b = numbers(blocks[baselineVariant]), m = numbers(blocks[measuredVariant])
            if let b, let m, b.count == m.count, (2...maxBlocks).contains(b.count) {
                result.pairs = Pairs(baseline: b, measured: m)
            } else if blocks[baselineVariant] != nil || blocks[measuredVariant] != nil {
                result.malformed = true
            }
        }
        if case .array(let list)? = size["comparisons"] {
            for c in list where c["name"]?.stringValue == comparison {
                if case .array(let ci)? = c["ci95"], ci.count == 2, let lo = ci[0].doubleValue,
                    let hi = ci[1].doubleValue, lo.isFinite, hi.isFinite, lo > 0, lo <= hi
                {
                    result.engineInterval = (lo, hi)
                }
            }
        }
        return result
    }

    /// Positive finite numbers, at most maxBlocks + 1 read (more is malformed anyway); nil if
    /// the value is not such a list.
    private static func numbers(_ value: JSONValue?) -> [Double]? {
        guard case .array(let items)? = value, items.count <= maxBlocks else { return nil }
        var out: [Double] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let v = item.doubleValue, v.isFinite, v > 0 else { return nil }
            out.append(v)
        }
        return out
    }

    /// The interval for a cell whose tasks (one per seed) gave `timings`; the reason there is
    /// none otherwise. `key` seeds the generator so the same cell always gets the same interval.
    static func of(_ timings: [TaskTiming], key: String) -> Result<SpeedupInterval, Missing> {
        guard !timings.isEmpty else { return .failure(.noBlocks) }
        if timings.contains(where: \.malformed) { return .failure(.malformedBlocks) }
        let pairs = timings.compactMap(\.pairs)
        if pairs.count == timings.count {
            let (lo, hi) = bootstrap(pairs, key: key)
            return .success(SpeedupInterval(low: lo, high: hi, source: "bootstrap"))
        }
        if timings.count == 1, let (lo, hi) = timings[0].engineInterval {
            return .success(SpeedupInterval(low: lo, high: hi, source: "engine"))
        }
        return .failure(pairs.isEmpty ? .noBlocks : .someWithoutBlocks)
    }

    /// Percentile 95% interval of the mean over seeds of median(baseline blocks) /
    /// median(measured blocks), resampling seeds, then block pairs within each seed.
    static func bootstrap(_ seeds: [Pairs], key: String, resamples: Int = resamples) -> (Double, Double) {
        var rng = SplitMix64(seed: fnv1a(key))
        var statistics: [Double] = []
        statistics.reserveCapacity(resamples)
        var b: [Double] = [], m: [Double] = []
        for _ in 0..<resamples {
            var sum = 0.0
            for _ in seeds.indices {
                let task = seeds.count == 1 ? seeds[0] : seeds[rng.index(seeds.count)]
                let k = task.baseline.count
                b.removeAll(keepingCapacity: true)
                m.removeAll(keepingCapacity: true)
                for _ in 0..<k {
                    let i = rng.index(k)
                    b.append(task.baseline[i])
                    m.append(task.measured[i])
                }
                sum += median(&b) / median(&m)
            }
            statistics.append(sum / Double(seeds.count))
        }
        statistics.sort()
        return (quantile(statistics, 0.025), quantile(statistics, 0.975))
    }

    static func median(_ values: inout [Double]) -> Double {
        values.sort()
        let n = values.count
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2
    }

    /// Linear interpolation between order statistics of sorted values.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let i = Int(position.rounded(.down)), fraction = position - Double(i)
        return i + 1 < sorted.count ? sorted[i] + (sorted[i + 1] - sorted[i]) * fraction : sorted[i]
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}

/// A small deterministic generator (SplitMix64), so a report renders the same intervals every time.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n ≤ a few hundred here, so the modulo bias is negligible: < 2^-55).
    mutating func index(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
