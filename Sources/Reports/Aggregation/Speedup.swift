import SweepKit

/// Speedup over dense for one cell. Masked-weight speedup is the dense cell's latency_ms over
/// this cell's. Sparse-kernel latency is measured in fp16 (cuSPARSELt) interleaved with the
/// same weights in fp16 on dense kernels; that pair isolates what sparsity buys, whereas the
/// fp32 dense model would mix in the gain from fp16. So the sparse speedup is taken per task
/// against that baseline where the engine recorded it (details.latency.batch_sizes.B.masked_fp16)
/// and only otherwise against the dense cell's latency_ms — which the result then says.
struct Speedup: Sendable, Equatable {
    var value: Double
    var std: Double?
    var n: Int
    /// From an incomplete cell (some tasks gave no value or no baseline).
    var partial: Bool
    /// The sparse speedup fell back to the dense model's latency_ms as its baseline.
    var againstDenseModel: Bool

    /// Masked speedup per task: `latency_dense_ms` (the dense model the task started from,
    /// timed interleaved with it in the same process) over its `latency_ms`. Latencies taken
    /// in different processes at different times on a shared machine differ by far more than
    /// masking changes, so the cross-cell ratio is only a fallback, and marked as one.
    static func masked(_ grid: Grid, row: String, column: String, dense: String) -> Speedup? {
        let stats = grid.stats("latency_ms", row: row, column: column)
        let tasks = grid.tasks[Grid.Key(row: row, column: column)] ?? []
        let ratios = tasks.compactMap { task -> Double? in
            guard task.state == .succeeded, let measured = task.metrics["latency_ms"] ?? nil, measured > 0,
                let baseline = task.metrics["latency_dense_ms"] ?? nil, baseline > 0
            else { return nil }
            return baseline / measured
        }
        guard !ratios.isEmpty else {
            var fallback = versusDenseCell("latency_ms", grid, row: row, column: column, dense: dense)
            if column != dense { fallback?.againstDenseModel = true }
            return fallback
        }
        var spread = CellStats()
        spread.values = ratios
        return Speedup(
            value: spread.mean!, std: spread.std, n: ratios.count,
            partial: !stats.isComplete || ratios.count < stats.n, againstDenseModel: false)
    }

    static func sparse(_ grid: Grid, row: String, column: String, dense: String) -> Speedup? {
        let stats = grid.stats("latency_sparse_ms", row: row, column: column)
        let tasks = grid.tasks[Grid.Key(row: row, column: column)] ?? []
        let ratios = tasks.compactMap { task -> Double? in
            guard task.state == .succeeded, let sparse = task.metrics["latency_sparse_ms"] ?? nil, sparse > 0,
                let baseline = baseline(of: task, sparse: sparse)
            else { return nil }
            return baseline / sparse
        }
        guard !ratios.isEmpty else {
            var fallback = versusDenseCell("latency_sparse_ms", grid, row: row, column: column, dense: dense)
            fallback?.againstDenseModel = true
            return fallback
        }
        var spread = CellStats()
        spread.values = ratios
        return Speedup(
            value: spread.mean!, std: spread.std, n: ratios.count,
            partial: !stats.isComplete || ratios.count < stats.n, againstDenseModel: false)
    }

    /// The fp16 dense-kernel median timed beside this task's sparse-kernel median.
    static func baseline(of task: ResultRow, sparse: Double) -> Double? {
        guard let sizes = task.details["latency"]?["batch_sizes"]?.objectValue else { return nil }
        for key in sizes.keys.sorted() where sizes[key]?["sparse_fp16"]?["median"]?.doubleValue == sparse {
            if let baseline = sizes[key]?["masked_fp16"]?["median"]?.doubleValue, baseline > 0 { return baseline }
        }
        return nil
    }

    private static func versusDenseCell(_ metric: String, _ grid: Grid, row: String, column: String, dense: String)
        -> Speedup?
    {
        let cell = grid.stats(metric, row: row, column: column)
        let base = grid.stats("latency_ms", row: row, column: dense)
        guard let measured = cell.mean, measured > 0, let baseMean = base.mean else { return nil }
        return Speedup(
            value: baseMean / measured, std: nil, n: cell.n, partial: !cell.isComplete || !base.isComplete,
            againstDenseModel: false)
    }
}
