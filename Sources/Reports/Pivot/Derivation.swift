import SweepKit

/// A column computed from a measured cell and the dense cell of the same row: accuracy change
/// in points, speedup (dense latency / this latency), MAC reduction. Each names the
/// measured metric it sits beside and the dense metric it is computed against.
struct Derivation: Sendable {
    enum Kind: Sendable { case difference, speedup, reduction }

    var kind: Kind
    /// Header of the derived column.
    var header: String
    /// Title of the metric group it joins.
    var groupTitle: String
    /// Dense-cell metrics to compare with, first available wins.
    var baseMetrics: [String]
    /// Record names (CSV/JSON) for the value and, for speedups, its percentage.
    var recordMetric: String
    var unit: String
    /// The note that defines it.
    var definition: String
    /// Speedups only: the column of per-task baselines the ratio divides (shown beside it) and
    /// its record name.
    var pairedHeader: String? = nil
    var pairedMetric: String? = nil

    static func forMetric(_ metric: String, unit: String) -> Derivation? {
        switch metric {
        case "accuracy", "val_accuracy":
            return Derivation(
                kind: .difference, header: "Δ pts",
                groupTitle: "\(MetricCatalog.info(metric).label) (\(unit)) and Δ vs dense",
                baseMetrics: [metric], recordMetric: "\(metric)_change", unit: "points",
                definition:
                    "Δ pts: \(MetricCatalog.info(metric).label) minus the dense cell of the same row, in percentage points."
            )
        case "latency_ms":
            return Derivation(
                kind: .speedup, header: "speedup", groupTitle: "latency (\(unit)) and speedup, masked dense kernels",
                baseMetrics: ["latency_ms"], recordMetric: "speedup_masked", unit: "x",
                definition:
                    "speedup, masked dense kernels = paired dense / the method's latency_ms: per task, latency_dense_ms (the dense model it started from, timed interleaved with it in the same process; the \"paired dense\" column) / its latency_ms (dense kernels on masked weights, zeros still multiplied), mean over seeds.",
                pairedHeader: "paired dense", pairedMetric: "latency_dense_ms"
            )
        case "latency_sparse_ms":
            return Derivation(
                kind: .speedup, header: "speedup", groupTitle: "latency (\(unit)) and speedup, sparse kernels",
                baseMetrics: ["latency_ms"], recordMetric: "speedup_sparse", unit: "x",
                definition:
                    "speedup, sparse kernels = fp16 dense / latency_sparse_ms: per task, the same weights in fp16 on dense kernels (the \"fp16 dense\" column, details.latency.batch_sizes.B.masked_fp16) / latency_sparse_ms (fp16 on real sparse kernels), the two timed interleaved in one process; mean over seeds.",
                pairedHeader: "fp16 dense", pairedMetric: "latency_fp16_dense_ms"
            )
        case "gmacs_effective":
            return Derivation(
                kind: .reduction, header: "reduction", groupTitle: "MACs, nonzero weights (\(unit)) and MAC reduction",
                baseMetrics: ["gmacs_effective", "gmacs"], recordMetric: "mac_reduction_pct", unit: "%",
                definition: "MAC reduction: 1 - this cell's effective MACs / the dense cell's effective MACs, in %.")
        default:
            return nil
        }
    }

    func value(_ measured: Double, base: Double) -> Double? {
        switch kind {
        case .difference: return measured - base
        case .speedup: return measured > 0 ? base / measured : nil
        case .reduction: return base > 0 ? (1 - measured / base) * 100 : nil
        }
    }

    func text(_ value: Double, percent: ReportSpec.SpeedupPercent) -> String {
        switch kind {
        case .difference: return NumberText.signed(value, 1)
        case .speedup: return NumberText.speedup(value, percent: percent)
        case .reduction: return "\(NumberText.fixed(value, 1))%"
        }
    }
}
