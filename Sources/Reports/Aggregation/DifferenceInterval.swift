import Foundation
import SweepKit

/// The 95% interval of an accuracy change (a method's cell minus the dense cell of its row, in
/// percentage points) and its verdict.
///
/// - With two or more seeds in both cells, the change is paired by seed (each fine-tune starts
///   from the dense checkpoint of its own seed): mean ± t(0.975, n − 1) · s / √n over the
///   per-seed changes. This covers seed-to-seed variation, test sampling included.
/// - With one seed, only the sampling of the evaluation images can be stated: the normal
///   approximation ±1.96 · √(p₁(1 − p₁)/N₁ + p₂(1 − p₂)/N₂) × 100, with N the size of the split
///   the accuracy was measured on (`details.dataset.test` for `accuracy`,
///   `details.stage_params.val_split` for `val_accuracy`). It treats the two evaluations as
///   independent, which overstates the width for the same images; it says nothing about
///   seed variation.
struct DifferenceInterval: Sendable, Equatable {
    enum Verdict: String, Sendable {
        case higher, lower
        case noDifference = "no detectable difference"
    }

    enum Basis: String, Sendable {
        case seeds = "paired over seeds"
        case evaluationSampling = "evaluation sampling, one seed"
    }

    var low: Double
    var high: Double
    var basis: Basis

    var verdict: Verdict { low > 0 ? .higher : high < 0 ? .lower : .noDifference }

    static func of(
        _ metric: String, grid: Grid, row: String, column: String, dense: String
    ) -> DifferenceInterval? {
        func values(_ cell: String) -> [Int: (value: Double, task: ResultRow)] {
            var out: [Int: (Double, ResultRow)] = [:]
            for task in grid.tasks[Grid.Key(row: row, column: cell)] ?? [] where task.state == .succeeded {
                guard let value = task.metrics[metric] ?? nil, value.isFinite, (0...100).contains(value) else {
                    continue
                }
                out[task.seed ?? 0] = (value, task)
            }
            return out
        }
        let mine = values(column), base = values(dense)
        let seeds = Set(mine.keys).intersection(base.keys).sorted()
        if seeds.count >= 2 {
            let changes = seeds.map { mine[$0]!.value - base[$0]!.value }
            let n = Double(changes.count)
            let mean = changes.reduce(0, +) / n
            let variance = changes.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
            let half = tQuantile975(degreesOfFreedom: changes.count - 1) * (variance / n).squareRoot()
            return DifferenceInterval(low: mean - half, high: mean + half, basis: .seeds)
        }
        guard mine.count == 1, base.count == 1, let (value, task) = mine.values.first,
            let (baseValue, baseTask) = base.values.first,
            let size = evaluationSize(metric, task), let baseSize = evaluationSize(metric, baseTask)
        else { return nil }
        let p1 = value / 100, p2 = baseValue / 100
        let half = 1.96 * (p1 * (1 - p1) / size + p2 * (1 - p2) / baseSize).squareRoot() * 100
        let change = value - baseValue
        return DifferenceInterval(low: change - half, high: change + half, basis: .evaluationSampling)
    }

    /// Images the accuracy was computed on, from what the engine recorded; nil when unknown or
    /// implausible (hostile details must not produce a confident interval).
    static func evaluationSize(_ metric: String, _ task: ResultRow) -> Double? {
        let recorded: Double?
        switch metric {
        case "accuracy": recorded = task.details["dataset"]?["test"]?.doubleValue
        case "val_accuracy": recorded = task.details["stage_params"]?["val_split"]?.doubleValue
        default: recorded = nil
        }
        guard let recorded, recorded.isFinite, recorded >= 1, recorded <= 100_000_000 else { return nil }
        return recorded.rounded(.down)
    }

    /// The 97.5th percentile of Student's t distribution (two-sided 95%).
    static func tQuantile975(degreesOfFreedom df: Int) -> Double {
        let table: [Double] = [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
            2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
            2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
        ]
        if df >= 1 && df <= table.count { return table[df - 1] }
        return df > table.count ? 1.96 + 2.4 / Double(df) : .infinity
    }
}
