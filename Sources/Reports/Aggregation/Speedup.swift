import SweepKit

/// Speedup over dense for one cell (speedup = t_baseline / t_measured; > 1: the method is
/// faster), with its 95% interval and verdict. Masked-weight speedup is, per task,
/// latency_dense_ms (the dense model the task started from, timed interleaved with it in the
/// same process) over latency_ms. Sparse-kernel latency is measured in fp16 (cuSPARSELt)
/// interleaved with the same weights in fp16 on dense kernels; that pair isolates what
/// sparsity buys, whereas the fp32 dense model would mix in the gain from fp16. So the sparse
/// speedup is taken per task against that baseline where the engine recorded it
/// (details.latency.batch_sizes.B.masked_fp16) and only otherwise against the dense cell's
/// latency_ms — which the result then says (`againstDenseModel`, no interval).
struct Speedup: Sendable, Equatable {
    var value: Double
    var std: Double?
    var n: Int
    /// From an incomplete cell (some tasks gave no value or no baseline).
    var partial: Bool
    /// The speedup fell back to dividing latencies from different processes.
    var againstDenseModel: Bool
    /// The 95% interval, or why there is none.
    var interval: SpeedupInterval? = nil
    var missingInterval: SpeedupInterval.Missing? = nil
    /// The per-task baselines the ratio was computed from (latency_dense_ms, or the fp16
    /// dense-kernel median), so a table can show them beside the speedup.
    var baseline = CellStats()

    enum Kind: String, Sendable { case masked, sparse }

    static func masked(_ grid: Grid, row: String, column: String, dense: String) -> Speedup? {
        compute(.masked, grid, row: row, column: column, dense: dense)
    }

    static func sparse(_ grid: Grid, row: String, column: String, dense: String) -> Speedup? {
        compute(.sparse, grid, row: row, column: column, dense: dense)
    }

    /// The paired baseline of one task: latency_dense_ms for masked weights; for sparse
    /// kernels the masked_fp16 median at the batch size whose sparse_fp16 median is the metric.
    static func pairedBaseline(_ kind: Kind, of task: ResultRow, measured: Double) -> Double? {
        switch kind {
        case .masked:
            guard let b = task.metrics["latency_dense_ms"] ?? nil, b.isFinite, b > 0 else { return nil }
            return b
        case .sparse:
            return baseline(of: task, sparse: measured)
        }
    }

    private static func compute(_ kind: Kind, _ grid: Grid, row: String, column: String, dense: String) -> Speedup? {
        let metric = kind == .masked ? "latency_ms" : "latency_sparse_ms"
        let stats = grid.stats(metric, row: row, column: column)
        let tasks = (grid.tasks[Grid.Key(row: row, column: column)] ?? [])
            .sorted { ($0.seed ?? 0, $0.taskId) < ($1.seed ?? 0, $1.taskId) }
        var ratios: [Double] = [], baselines: [Double] = []
        var timings: [SpeedupInterval.TaskTiming] = []
        for task in tasks where task.state == .succeeded {
            guard let measured = task.metrics[metric] ?? nil, measured.isFinite, measured > 0,
                let base = pairedBaseline(kind, of: task, measured: measured)
            else { continue }
            ratios.append(base / measured)
            baselines.append(base)
            timings.append(
                SpeedupInterval.timing(
                    of: task, metricValue: measured,
                    measuredVariant: kind == .masked ? "as_given" : "sparse_fp16",
                    baselineVariant: kind == .masked ? "dense_baseline" : "masked_fp16",
                    comparison: kind == .masked ? "masked_vs_dense" : "sparse_vs_masked_fp16"))
        }
        guard !ratios.isEmpty else {
            var fallback = versusDenseCell(metric, grid, row: row, column: column, dense: dense)
            if kind == .sparse || column != dense { fallback?.againstDenseModel = true }
            return fallback
        }
        var spread = CellStats()
        spread.values = ratios
        var speedup = Speedup(
            value: spread.mean!, std: spread.std, n: ratios.count,
            partial: !stats.isComplete || ratios.count < stats.n, againstDenseModel: false)
        speedup.baseline.values = baselines
        switch SpeedupInterval.of(timings, key: "\(row)|\(column)|\(kind.rawValue)") {
        case .success(let interval): speedup.interval = interval
        case .failure(let missing): speedup.missingInterval = missing
        }
        return speedup
    }

    /// The fp16 dense-kernel median timed beside this task's sparse-kernel median.
    static func baseline(of task: ResultRow, sparse: Double) -> Double? {
        guard let sizes = task.details["latency"]?["batch_sizes"]?.objectValue else { return nil }
        for key in sizes.keys.sorted() where sizes[key]?["sparse_fp16"]?["median"]?.doubleValue == sparse {
            if let baseline = sizes[key]?["masked_fp16"]?["median"]?.doubleValue, baseline.isFinite, baseline > 0 {
                return baseline
            }
        }
        return nil
    }

    private static func versusDenseCell(_ metric: String, _ grid: Grid, row: String, column: String, dense: String)
        -> Speedup?
    {
        let cell = grid.stats(metric, row: row, column: column)
        let base = grid.stats("latency_ms", row: row, column: dense)
        guard let measured = cell.mean, measured > 0, let baseMean = base.mean else { return nil }
        var speedup = Speedup(
            value: baseMean / measured, std: nil, n: cell.n, partial: !cell.isComplete || !base.isComplete,
            againstDenseModel: false)
        speedup.baseline = base
        return speedup
    }
}
