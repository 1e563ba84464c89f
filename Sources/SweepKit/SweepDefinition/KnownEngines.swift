/// What SweepKit knows about the built-in engines, to reject a bad spec before anything runs.
public enum KnownEngines {
    /// The PyTorch engine of the study (engine/sparsegrid_engine).
    public static let sparsity = "sparsity"
    /// The built-in engine that does no work, for benchmarks of the coordinator.
    public static let null = "null"

    /// The architectures the sparsity engine builds (adapted to 32×32 inputs).
    public static let sparsityModels: [String] = [
        "resnet18", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0",
    ]

    /// The sparsity engine's stage parameters in the order the docs list them (their ranges:
    /// `EngineRanges`).
    static let stageParamOrder = [
        "epochs", "batch_size", "lr", "lr_final", "momentum", "weight_decay", "scheduler", "val_split",
        "max_steps", "eval_batch_size", "channels_last", "num_threads",
    ]

    /// Grid keys with a meaning of their own besides the stage parameters.
    static let sparsityAxes = ["model", "seed", "method"]

    /// Metric names of the sparsity engine's results (engine/CONTRACT.md), for checking reports.
    static let sparsityMetrics = [
        "accuracy", "val_accuracy", "loss", "latency_ms", "latency_p10_ms", "latency_p90_ms",
        "latency_dense_ms", "latency_sparse_ms", "gmacs", "gmacs_effective", "params_m", "sparsity", "weight_mib",
        "weight_compressed_mib", "peak_mib", "train_seconds", "images_per_s",
    ]

    /// The per-batch-size latency metrics: `latency_ms_bs64`, `latency_sparse_ms_bs1`, …
    static func isPerBatchLatency(_ name: String) -> Bool {
        for base in ["latency_ms", "latency_p10_ms", "latency_p90_ms", "latency_dense_ms", "latency_sparse_ms"] {
            let prefix = base + "_bs"
            if name.hasPrefix(prefix), let n = Int(name.dropFirst(prefix.count)), n > 0 { return true }
        }
        return false
    }
}
