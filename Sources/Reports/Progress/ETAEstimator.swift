/// The tasks of one stage and model that are not finished yet, and the measured durations of
/// those that are: the estimator's unit of work.
public struct ETAGroup: Sendable, Equatable {
    public var stage: String
    public var model: String?
    /// Tasks that have not started (ready or pending).
    public var waiting: Int
    /// Seconds each running task of the group has run so far.
    public var runningElapsed: [Double]
    /// Seconds each succeeded task of the group took (its succeeded attempt, start to end).
    public var durations: [Double]

    public init(stage: String, model: String?, waiting: Int, runningElapsed: [Double], durations: [Double]) {
        self.stage = stage
        self.model = model
        self.waiting = waiting
        self.runningElapsed = runningElapsed
        self.durations = durations
    }
}

/// What the estimator can say about the time left.
public enum ETA: Sendable, Equatable {
    /// Nothing left to run.
    case done
    /// Work is left but no worker slot is there to run it.
    case noWorkers
    /// Some stage with work left has no finished task yet, so its tasks' length is unknown.
    /// `atLeast`: the estimate for the stages that can be estimated (nil when none can).
    case unknown(stages: [String], atLeast: Double?)
    /// Seconds left: `estimate` from the median durations, `low`/`high` from the quartiles.
    case estimate(Double, low: Double, high: Double)
}

/// Estimates the time a sweep has left from what its finished tasks measured.
///
/// Method. Tasks are grouped by (stage, model): tasks of one stage and model do about the same
/// work, while different models or stages can differ tenfold. For each group the typical task
/// length is taken from the measured durations of its succeeded tasks; a group with none yet
/// borrows the durations of its stage's other models; a stage with no finished task at all
/// cannot be estimated (`ETA.unknown`, which still reports the estimate of the other stages
/// as a lower bound). For a quantile q of those durations (q = 0.25, 0.5, 0.75, linear
/// interpolation between order statistics), with d the group's q-quantile:
///
///     work(q)    = Σ groups ( waiting × d  +  Σ running max(d − elapsed, 0) )
///     longest(q) = the largest single task left: d for a group with waiting tasks,
///                  max(d − elapsed) over its running tasks otherwise
///     ETA(q)     = max(work(q) / slots, longest(q))
///
/// where slots is the number of worker slots alive now. The estimate is ETA(0.5), the range
/// ETA(0.25)…ETA(0.75). Medians and quartiles are robust: one task that ends much faster or
/// slower than the others moves them by at most one order statistic, so the estimate does not
/// swing as tasks finish (a mean over the sweep's elapsed time does). What it does not model:
/// dependencies between stages (work of a later stage is assumed to spread over all slots),
/// retries of tasks that will fail, and workers joining or leaving.
public enum ETAEstimator {
    public static func estimate(_ groups: [ETAGroup], slots: Int) -> ETA {
        let open = groups.filter { $0.waiting > 0 || !$0.runningElapsed.isEmpty }
        if open.isEmpty { return .done }
        if slots <= 0 { return .noWorkers }
        var byStage: [String: [Double]] = [:]
        for g in groups { byStage[g.stage, default: []] += g.durations.filter { $0.isFinite && $0 >= 0 } }
        var known: [(group: ETAGroup, samples: [Double])] = []
        var unknownStages: Set<String> = []
        for g in open {
            let own = g.durations.filter { $0.isFinite && $0 >= 0 }
            let samples = own.isEmpty ? byStage[g.stage] ?? [] : own
            if samples.isEmpty { unknownStages.insert(g.stage) } else { known.append((g, samples.sorted())) }
        }
        func eta(_ q: Double) -> Double {
            var work = 0.0
            var longest = 0.0
            for (g, samples) in known {
                let d = quantile(samples, q)
                work += Double(g.waiting) * d
                if g.waiting > 0 { longest = max(longest, d) }
                for e in g.runningElapsed {
                    let left = max(d - max(e, 0), 0)
                    work += left
                    longest = max(longest, left)
                }
            }
            return max(work / Double(slots), longest)
        }
        if !unknownStages.isEmpty {
            return .unknown(stages: unknownStages.sorted(), atLeast: known.isEmpty ? nil : eta(0.5))
        }
        return .estimate(eta(0.5), low: eta(0.25), high: eta(0.75))
    }

    /// The q-quantile of sorted, non-empty `values`, interpolating linearly between order statistics.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty)
        let position = min(max(q, 0), 1) * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }
}
