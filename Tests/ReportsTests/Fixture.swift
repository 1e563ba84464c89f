import Foundation
import SweepKit

/// The rows a Store query would return for a small finished-ish sweep: three models, dense
/// (train stage) plus two sparse methods (finetune stage), three seeds, with
/// - a complete multi-seed cell everywhere in resnet18,
/// - resnet50 × nm_2_4 with one failed seed, resnet50 × block_4x4 entirely failed,
/// - mobilenet_v2 × nm_2_4 with one seed still running, mobilenet_v2 × block_4x4 missing,
/// - real sparse-kernel latency only for resnet18 × nm_2_4 (null elsewhere, with reasons).
enum Fixture {
    static let sweep = "demo"
    static let seeds = [0, 1, 2]

    /// Per model: dense accuracy, dense latency (ms), dense GMAC, dense weight MiB, peak MiB.
    static let base:
        [(model: String, accuracy: Double, latency: Double, gmacs: Double, weights: Double, peak: Double)] = [
            ("resnet18", 93.5, 2.40, 0.556, 42.6, 310.0),
            ("resnet50", 94.6, 5.10, 1.305, 89.7, 700.0),
            ("mobilenet_v2", 92.9, 1.30, 0.096, 8.5, 190.0),
        ]

    /// Unit labels as the engine writes them (engine/sparsegrid_engine/measure.py), abridged.
    static let units: [String: String] = [
        "accuracy": "% top-1 on the full test split, after the stage's training (masks applied, no augmentation)",
        "latency_ms":
            "ms per forward call, median of 200 calls after 20 warm-up, batch size 1, float32, the model as given (dense kernels; masked weights for sparse methods), time.perf_counter per call, 2 CPU threads, on cpu",
        "latency_sparse_ms":
            "ms per forward call, median of 200 calls after 20 warm-up, batch size 1, fp16 with 2:4 layers on cuSPARSELt, timed interleaved with the same model in fp16 on dense kernels (details.latency.batch_sizes.1.masked_fp16)",
        "gmacs":
            "G-MAC per image (1 MAC = 2 FLOPs), forward pass at batch 1 on 3x32x32 input, FlopCounterMode (shape-based: zero weights count)",
        "gmacs_effective":
            "G-MAC per image (1 MAC = 2 FLOPs): each conv/linear layer's dense MACs x its fraction of nonzero weights",
        "weight_mib": "MiB, all parameters stored dense as fp32 (4 bytes each; buffers such as BN statistics excluded)",
        "weight_compressed_mib":
            "MiB, parameters with sparsified layers in the method's format at fp32 values; other parameters dense",
        "peak_mib": "MiB, peak RSS increase during one inference at batch size 1 after a warm-up call",
        "sparsity": "fraction of exactly-zero weights over all conv + linear weights",
    ]

    static var rows: [ResultRow] {
        var rows: [ResultRow] = []
        for b in base {
            for seed in seeds {
                let jitter = Double(seed - 1)  // -1, 0, +1: a spread the mean and std can be checked against
                rows.append(
                    row(
                        b.model, "dense", seed, state: .succeeded,
                        metrics: [
                            "accuracy": b.accuracy + 0.2 * jitter, "latency_ms": b.latency + 0.01 * jitter,
                            "latency_sparse_ms": nil,
                            "gmacs": b.gmacs, "gmacs_effective": b.gmacs, "weight_mib": b.weights,
                            "weight_compressed_mib": b.weights,
                            "peak_mib": b.peak + jitter, "sparsity": 0.0,
                        ], nullReason: "dense model: no sparse kernel applies"))
                for (method, drop, keep) in [("nm_2_4", 1.2, 0.52), ("block_4x4", 0.9, 0.55)] {
                    let state = state(b.model, method, seed)
                    guard state != nil else { continue }
                    let sparseLatency: Double? =
                        b.model == "resnet18" && method == "nm_2_4" ? 1.70 + 0.02 * jitter : nil
                    let masked = b.latency * 1.02 + 0.01 * jitter, pairedDense = b.latency + 0.005 * jitter
                    // The engine times the same weights in fp16 on dense kernels beside the sparse ones.
                    var size: [String: JSONValue] = [:]
                    var blocks: [String: JSONValue] = [:]
                    if let sparse = sparseLatency {
                        size["sparse_fp16"] = ["median": .number(sparse)]
                        size["masked_fp16"] = ["median": .number(2.04 + 0.01 * jitter)]
                        blocks["sparse_fp16"] = noisyBlocks(sparse, seed: seed, phase: 1)
                        blocks["masked_fp16"] = noisyBlocks(2.04 + 0.01 * jitter, seed: seed, phase: 2)
                    }
                    // resnet18 keeps per-block timings (interleaved rounds); the other models'
                    // results are as older engines wrote them, without blocks.
                    if b.model == "resnet18" {
                        size["as_given"] = ["median": .number(masked)]
                        size["dense_baseline"] = ["median": .number(pairedDense)]
                        blocks["as_given"] = noisyBlocks(masked, seed: seed, phase: 3)
                        blocks["dense_baseline"] = noisyBlocks(pairedDense, seed: seed, phase: 4)
                    }
                    if !blocks.isEmpty { size["blocks"] = .object(blocks) }
                    let latency: JSONValue? = size.isEmpty ? nil : ["batch_sizes": ["1": .object(size)]]
                    rows.append(
                        row(
                            b.model, method, seed, state: state!,
                            metrics: state == .succeeded
                                ? [
                                    "accuracy": b.accuracy - drop + 0.3 * jitter,
                                    "latency_ms": masked,
                                    // The dense model the task started from, timed interleaved with it.
                                    "latency_dense_ms": pairedDense,
                                    "latency_sparse_ms": sparseLatency, "gmacs": b.gmacs,
                                    "gmacs_effective": b.gmacs * keep,
                                    "weight_mib": b.weights,
                                    "weight_compressed_mib": b.weights * (method == "nm_2_4" ? 0.5625 : 0.53),
                                    "peak_mib": b.peak + 2 + jitter, "sparsity": 0.48,
                                ] : [:],
                            nullReason: method == "block_4x4"
                                ? "no sparse kernel for 4x4 blocks on cpu" : "no 2:4 sparse kernel on cpu",
                            latency: latency))
                }
            }
        }
        return rows
    }

    /// Twelve per-block medians around `median` (±3%, a fixed pattern per seed and variant).
    static func noisyBlocks(_ median: Double, seed: Int, phase: Int) -> JSONValue {
        .array((0..<12).map { i in .number(median * (1 + 0.03 * sin(Double(i * (seed + 2) + phase * 7)))) })
    }

    /// nil: the task does not exist (the cell is missing).
    static func state(_ model: String, _ method: String, _ seed: Int) -> TaskState? {
        switch (model, method) {
        case ("resnet50", "nm_2_4"): return seed == 2 ? .failed : .succeeded
        case ("resnet50", "block_4x4"): return .failed
        case ("mobilenet_v2", "nm_2_4"): return seed == 2 ? .running : .succeeded
        case ("mobilenet_v2", "block_4x4"): return nil
        default: return .succeeded
        }
    }

    static func row(
        _ model: String, _ method: String, _ seed: Int, state: TaskState, metrics: [String: Double?],
        nullReason: String, latency: JSONValue? = nil
    ) -> ResultRow {
        var params: [String: JSONValue] = ["model": .string(model), "seed": .number(Double(seed)), "epochs": 3]
        if method != "dense" { params["method"] = .string(method) }
        let stage = method == "dense" ? "train" : "finetune"
        let id = "\(stage)-\(model)-\(method)-\(seed)"
        let failed = state == .failed
        return ResultRow(
            sweep: sweep, stage: stage, taskId: id, params: params, state: state, metrics: metrics,
            units: metrics.isEmpty ? [:] : units,
            details: metrics.isEmpty
                ? .null
                : .object([
                    "device": "cpu",
                    "null_reasons": metrics["latency_sparse_ms"] ?? nil == nil
                        ? ["latency_sparse_ms": .string(nullReason)] : [:],
                    "latency": latency ?? .null,
                ]),
            error: failed
                ? "CUDA out of memory: tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)\nat finetune step 12"
                : nil,
            attempts: failed ? 3 : (state == .running ? 1 : 1),
            artifacts: state == .succeeded
                ? [
                    ArtifactRef(
                        name: "checkpoint", sha256: String(repeating: "ab", count: 32), bytes: 44_780_000,
                        path: "/state/artifacts/ab/\(id).pt")
                ]
                : [])
    }
}
