/// `data:` and `measure:` — small fixed-schema sections read into the JSON the engine gets,
/// defaults filled in.
extension SpecReader {
    static let datasets = ["cifar10", "synthetic"]
    /// Images per split the engine will generate at most (engine/sparsegrid_engine/data.py).
    static let syntheticMaxImages = 1_000_000

    /// `{dataset: cifar10, root: PATH}` or `{dataset: synthetic, train: N, test: N, seed: S, noise: X,
    /// distractor: Y}` (the last two set how hard the synthetic data is; engine defaults 1.2 and 0.7).
    mutating func data(_ node: SpecNode, _ path: String) -> JSONValue? {
        guard let entries = node.entries else {
            diagnostics.add(
                node, path,
                "expected a mapping such as `{dataset: synthetic, train: 1024, test: 512}` or `{dataset: cifar10, root: ~/data/cifar-10-batches-py}`; found \(node.found)."
            )
            return nil
        }
        let datasetPath = KeyPath.child(path, "dataset")
        guard let datasetNode = entries.first(where: { $0.key == "dataset" })?.value else {
            diagnostics.add(
                node, datasetPath,
                "missing; say which data to use: `dataset: cifar10` (with `root:`) or `dataset: synthetic` (with `train:` and `test:` sizes)."
            )
            return nil
        }
        guard let dataset = choice(datasetNode, datasetPath, among: Self.datasets) else { return nil }
        switch dataset {
        case "cifar10":
            guard let f = fields(node, path, allowed: ["dataset", "root"], owner: "`data` for cifar10") else {
                return nil
            }
            // The path is kept as written (`~` included): each worker resolves it on its own host.
            guard
                let rootNode = require(
                    f, "root",
                    "give the folder holding `data_batch_1` … `test_batch`, e.g. `root: ~/data/cifar-10-batches-py`."),
                let root = string(rootNode, f.path("root"), example: "`root: ~/data/cifar-10-batches-py`")
            else { return nil }
            return ["dataset": "cifar10", "root": .string(root)]
        default:
            guard
                let f = fields(
                    node, path, allowed: ["dataset", "train", "test", "seed", "noise", "distractor"],
                    owner: "`data` for synthetic")
            else { return nil }
            // The engine generates what these ask for: bounded like every other number.
            let most = Self.syntheticMaxImages
            let train = require(f, "train", "give the number of training images, e.g. `train: 1024`.")
                .flatMap { int($0, f.path("train"), min: 1, max: most, example: "`train: 1024`") }
            let test = require(f, "test", "give the number of test images, e.g. `test: 512`.")
                .flatMap { int($0, f.path("test"), min: 1, max: most, example: "`test: 512`") }
            let seed =
                f["seed"].map { int($0, f.path("seed"), min: 0, max: 2_147_483_647, example: "`seed: 0`") } ?? 0
            guard let train, let test, let seed else { return nil }
            var data: [String: JSONValue] = [
                "dataset": "synthetic", "train": .number(Double(train)), "test": .number(Double(test)),
                "seed": .number(Double(seed)),
            ]
            // Passed on only when written, so specs without them keep their task ids.
            for (key, upper, example) in [("noise", 4.0, "`noise: 0.1`"), ("distractor", 1.0, "`distractor: 0`")] {
                guard let valueNode = f[key] else { continue }
                let value = number(valueNode, f.path(key), rule: "from 0 to \(Int(upper))", example: example) {
                    $0 >= 0 && $0 <= upper
                }
                guard let value else { return nil }
                data[key] = .number(value)
            }
            return .object(data)
        }
    }

    /// `measure.latency`'s keys in the order the docs list them; keys of the engine's table
    /// the docs do not know come last, sorted.
    static let latencyKeyOrder = ["batch_sizes", "warmup", "iterations", "precision", "max_seconds", "block"]
    /// What the spec reader fills in when `measure.latency` leaves them out (part of task ids).
    static let latencyDefaults: [String: Int] = ["warmup": 10, "iterations": 50]

    /// `{latency: {batch_sizes, warmup, iterations, precision, max_seconds, block}, flops: bool,
    /// memory: bool}`; what is not asked for is not measured. `latency`'s keys and ranges are the
    /// engine's (`EngineRanges.measure.latency`); `batch_sizes` must list distinct sizes.
    mutating func measure(_ node: SpecNode, _ path: String) -> JSONValue? {
        guard let f = fields(node, path, allowed: ["latency", "flops", "memory"], owner: "`measure`") else {
            return nil
        }
        var ok = true
        var latency: JSONValue = .null
        if let l = f["latency"] {
            let table = ranges.measure.latency
            let keys =
                Self.latencyKeyOrder.filter { table[$0] != nil }
                + table.keys.filter { !Self.latencyKeyOrder.contains($0) }.sorted()
            if let lf = fields(l, f.path("latency"), allowed: keys, owner: "`measure.latency`") {
                var object: [String: JSONValue] = [:]
                for key in keys {
                    let range = table[key]!
                    let p = lf.path(key)
                    let value: JSONValue?
                    if key == "batch_sizes" {
                        value = require(lf, key, "list the batch sizes to time, e.g. `batch_sizes: [1, 64]`.")
                            .flatMap {
                                rangedIntList($0, p, range, key: key, allowSingle: true, distinct: true)
                                    .map { .array($0.map { .number(Double($0)) }) }
                            }
                    } else if let n = lf[key] {
                        value = ranged(n, p, range, key: key)
                    } else {
                        if let d = Self.latencyDefaults[key] { object[key] = .number(Double(d)) }
                        continue
                    }
                    if let value { object[key] = value } else { ok = false }
                }
                if ok { latency = .object(object) }
            } else {
                ok = false
            }
        }
        let flops = f["flops"].map { bool($0, f.path("flops")) } ?? false
        let memory = f["memory"].map { bool($0, f.path("memory")) } ?? false
        guard ok, let flops, let memory else { return nil }
        return ["latency": latency, "flops": .bool(flops), "memory": .bool(memory)]
    }
}
