/// `data:` and `measure:` — small fixed-schema sections read into the JSON the engine gets,
/// defaults filled in.
extension SpecReader {
    static let datasets = ["cifar10", "synthetic"]

    /// `{dataset: cifar10, root: PATH}` or `{dataset: synthetic, train: N, test: N, seed: S}`.
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
                    node, path, allowed: ["dataset", "train", "test", "seed"], owner: "`data` for synthetic")
            else { return nil }
            let train = require(f, "train", "give the number of training images, e.g. `train: 1024`.")
                .flatMap { int($0, f.path("train"), min: 1, example: "`train: 1024`") }
            let test = require(f, "test", "give the number of test images, e.g. `test: 512`.")
                .flatMap { int($0, f.path("test"), min: 1, example: "`test: 512`") }
            let seed = f["seed"].map { int($0, f.path("seed"), min: 0, example: "`seed: 0`") } ?? 0
            guard let train, let test, let seed else { return nil }
            return [
                "dataset": "synthetic", "train": .number(Double(train)), "test": .number(Double(test)),
                "seed": .number(Double(seed)),
            ]
        }
    }

    /// `{latency: {batch_sizes, warmup, iterations}, flops: bool, memory: bool}`; what is not
    /// asked for is not measured.
    mutating func measure(_ node: SpecNode, _ path: String) -> JSONValue? {
        guard let f = fields(node, path, allowed: ["latency", "flops", "memory"], owner: "`measure`") else {
            return nil
        }
        var ok = true
        var latency: JSONValue = .null
        if let l = f["latency"] {
            if let lf = fields(
                l, f.path("latency"), allowed: ["batch_sizes", "warmup", "iterations"], owner: "`measure.latency`")
            {
                let sizes = require(lf, "batch_sizes", "list the batch sizes to time, e.g. `batch_sizes: [1, 64]`.")
                    .flatMap { node in
                        list(node, lf.path("batch_sizes"), allowSingle: true, what: "batch sizes") { r, n, p in
                            r.int(n, p, min: 1, example: "`[1, 64]`")
                        }
                    }
                let warmup = lf["warmup"].map { int($0, lf.path("warmup"), min: 0, example: "`warmup: 20`") } ?? 10
                let iterations =
                    lf["iterations"].map { int($0, lf.path("iterations"), min: 1, example: "`iterations: 200`") } ?? 50
                if let sizes, let warmup, let iterations {
                    latency = [
                        "batch_sizes": .array(sizes.map { .number(Double($0)) }),
                        "warmup": .number(Double(warmup)), "iterations": .number(Double(iterations)),
                    ]
                } else {
                    ok = false
                }
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
