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
                    "speedup, masked dense kernels: per task, latency_dense_ms (the dense model it started from, timed interleaved in the same process) / its latency_ms (dense kernels on masked weights, zeros still multiplied), averaged over seeds; % = (speedup - 1) × 100."
            )
        case "latency_sparse_ms":
            return Derivation(
                kind: .speedup, header: "speedup", groupTitle: "latency (\(unit)) and speedup, sparse kernels",
                baseMetrics: ["latency_ms"], recordMetric: "speedup_sparse", unit: "x",
                definition:
                    "speedup, sparse kernels: per task, the same weights in fp16 on dense kernels / latency_sparse_ms (fp16 on real sparse kernels), the two timed interleaved in one process; mean over seeds; % = (speedup - 1) × 100."
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

    func text(_ value: Double) -> String {
        switch kind {
        case .difference: return NumberText.signed(value, 1)
        case .speedup: return "\(NumberText.fixed(value, 2))× (\(NumberText.signed((value - 1) * 100, 0))%)"
        case .reduction: return "\(NumberText.fixed(value, 1))%"
        }
    }
}
