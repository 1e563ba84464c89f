import Foundation
import SweepKit

/// One cell of a pivot (e.g. resnet18 × nm_2_4) for one metric: the values of the tasks that
/// succeeded, and a count of every task that did not give a value, so that a partial mean is
/// never shown as a complete one.
struct CellStats: Sendable, Equatable {
    /// Non-null values of succeeded tasks, in seed order.
    var values: [Double] = []
    /// Succeeded tasks whose metric is null (measured as not applicable).
    var nulls = 0
    /// Succeeded tasks that did not report the metric at all.
    var unreported = 0
    var failed = 0
    var running = 0
    /// Tasks waiting (pending or ready).
    var pending = 0
    var cancelled = 0
    /// Expected tasks with no row at all (a seed the rest of the sweep has, absent here).
    var missing = 0
    /// Why values are null, as the engine stated it (distinct, sorted).
    var nullReasons: [String] = []
    /// Of `values`, how many come from tasks whose attempt shared its device with other tasks.
    var sharedValues = 0

    var n: Int { values.count }
    var mean: Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }

    /// Sample standard deviation (n − 1); nil below two values.
    var std: Double? {
        guard values.count > 1, let mean else { return nil }
        let squares = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        let std = (squares / Double(values.count - 1)).squareRoot()
        // Identical values can leave rounding dust (1e-17); that is no spread.
        return std <= abs(mean) * 1e-12 ? 0 : std
    }

    /// Tasks that should have given a value and did not (nulls are answers, not gaps).
    var shortfall: Int { unreported + failed + running + pending + cancelled + missing }
    var isComplete: Bool { shortfall == 0 }

    /// A one-word state for machine-readable outputs.
    var status: String {
        if !values.isEmpty { return isComplete ? "complete" : "partial" }
        if nulls > 0 && isComplete { return "null" }
        for (count, word) in gaps where count > 0 { return word }
        return "missing"
    }

    /// The gaps in display order, e.g. [(1, "failed"), (2, "running")].
    var gaps: [(Int, String)] {
        [
            (failed, "failed"), (running, "running"), (pending, "pending"), (cancelled, "cancelled"),
            (missing, "missing"), (unreported, "not reported"),
        ]
    }

    /// Gathers the cell from its tasks; `missing` counts the tasks the cell should hold and lacks.
    init(metric: String, tasks: [ResultRow], missing: Int) {
        var reasons = Set<String>()
        for task in tasks.sorted(by: { ($0.seed ?? 0, $0.taskId) < ($1.seed ?? 0, $1.taskId) }) {
            switch task.state {
            case .succeeded:
                switch task.metrics[metric] {
                case .some(.some(let v)) where v.isFinite:
                    values.append(v)
                    if task.measuredShared { sharedValues += 1 }
                case .some: nulls += 1; if let r = NullReason.of(metric, in: task) { reasons.insert(r) }
                case .none: unreported += 1
                }
            case .failed: failed += 1
            case .running: running += 1
            case .pending, .ready: pending += 1
            case .cancelled: cancelled += 1
            }
        }
        self.missing = missing
        nullReasons = reasons.sorted()
    }

    init() {}
}

/// Where the engine says why a metric is null: `details.null_reasons[metric]`,
/// `details.notes[metric]`, or failing those the metric's `units` label.
enum NullReason {
    static func of(_ metric: String, in row: ResultRow) -> String? {
        for key in ["null_reasons", "notes"] {
            if let text = row.details[key]?[metric]?.stringValue, !text.isEmpty { return text }
        }
        if let label = row.units[metric], !label.isEmpty { return label }
        return nil
    }
}
