/// What a metric name means when the engine did not say: its unit, a short label for headers,
/// how many decimals a table shows, and the method of measurement. Names and meanings follow
/// engine/CONTRACT.md; a result's own `units` entry always wins over this table.
struct MetricInfo: Sendable, Equatable {
    var name: String
    var label: String
    var unit: String
    var decimals: Int
    var meaning: String
}

enum MetricCatalog {
    static let known: [String: MetricInfo] = {
        let entries: [MetricInfo] = [
            .init(
                name: "accuracy", label: "accuracy", unit: "%", decimals: 1,
                meaning: "top-1 accuracy on the full test split"),
            .init(
                name: "val_accuracy", label: "validation accuracy", unit: "%", decimals: 1,
                meaning: "top-1 accuracy on the held-out validation split"),
            .init(
                name: "loss", label: "training loss", unit: "", decimals: 3,
                meaning: "final training loss"),
            .init(
                name: "latency_ms", label: "latency, dense kernels", unit: "ms", decimals: 2,
                meaning:
                    "median latency at the first batch size through dense kernels (sparse methods: masked weights, zeros still multiplied)"
            ),
            .init(
                name: "latency_p10_ms", label: "latency p10", unit: "ms", decimals: 2,
                meaning: "10th percentile of the dense-kernel latency"),
            .init(
                name: "latency_p90_ms", label: "latency p90", unit: "ms", decimals: 2,
                meaning: "90th percentile of the dense-kernel latency"),
            .init(
                name: "latency_dense_ms", label: "latency, dense baseline", unit: "ms", decimals: 2,
                meaning:
                    "median latency of the dense model a sparse task started from, timed interleaved with its latency_ms in the same process"
            ),
            .init(
                name: "latency_sparse_ms", label: "latency, sparse kernels", unit: "ms", decimals: 2,
                meaning: "median latency at the first batch size through real sparse kernels; null where none ran"),
            .init(
                name: "gmacs", label: "MACs, dense", unit: "GMAC", decimals: 3,
                meaning: "dense forward multiply-accumulates per image, shape-based (1 MAC = 2 FLOPs)"),
            .init(
                name: "gmacs_effective", label: "MACs, nonzero weights", unit: "GMAC", decimals: 3,
                meaning: "forward multiply-accumulates per image counting only nonzero weights (1 MAC = 2 FLOPs)"),
            .init(
                name: "params_m", label: "parameters", unit: "M", decimals: 2,
                meaning: "number of parameters, millions"),
            .init(
                name: "sparsity", label: "sparsity", unit: "fraction", decimals: 3,
                meaning: "fraction of zero weights over all conv and linear weights"),
            .init(
                name: "weight_mib", label: "weights, dense fp32", unit: "MiB", decimals: 1,
                meaning: "weight bytes stored dense in fp32"),
            .init(
                name: "weight_compressed_mib", label: "weights, compressed", unit: "MiB", decimals: 1,
                meaning:
                    "weight bytes in the method's compressed format (2:4 values + metadata; block values + indices; dense layers counted dense)"
            ),
            .init(
                name: "peak_mib", label: "peak memory", unit: "MiB", decimals: 1,
                meaning: "peak inference memory (max_memory_allocated on GPU, peak RSS delta on CPU)"),
            .init(
                name: "train_seconds", label: "training time", unit: "s", decimals: 1,
                meaning: "wall time of the training loop"),
            .init(
                name: "images_per_s", label: "throughput", unit: "img/s", decimals: 1,
                meaning: "training throughput"),
        ]
        return Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
    }()

    /// The catalog entry for `name`; per-batch-size latencies (`latency_ms_bs64`, …) are
    /// derived from their first-batch-size twin, and unknown names get a neutral entry.
    static func info(_ name: String) -> MetricInfo {
        if let info = known[name] { return info }
        if let range = name.range(of: "_bs", options: .backwards),
            let batch = Int(name[range.upperBound...]),
            var base = known[String(name[..<range.lowerBound])]
        {
            base.name = name
            base.label += " at batch \(batch)"
            base.meaning = base.meaning.replacingOccurrences(
                of: "at the first batch size", with: "at batch size \(batch)")
            return base
        }
        return MetricInfo(name: name, label: name, unit: "", decimals: 3, meaning: "reported by the engine")
    }
}
