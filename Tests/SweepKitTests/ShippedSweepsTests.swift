import Foundation
import Testing

@testable import SweepKit

@Suite("The sweeps shipped in sweeps/ validate")
struct ShippedSweepsTests {
    static let sweeps = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sweeps")

    /// Tasks per stage each shipped sweep must expand to.
    static let expected: [String: [String: Int]] = [
        "smoke.yaml": ["train": 2, "finetune": 4],
        "quick.yaml": ["train": 2, "finetune": 4],
        "paper.yaml": ["train": 15, "finetune": 30],
        "recommended.yaml": ["train": 15, "finetune": 30, "finetune_lowlr": 15, "finetune_ramp": 15],
    ]

    @Test("every YAML file in sweeps/ is listed here")
    func allListed() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.sweeps.path).filter {
            $0.hasSuffix(".yaml")
        }
        #expect(Set(files) == Set(Self.expected.keys))
    }

    @Test("each shipped sweep loads with its expected task counts", arguments: expected.keys.sorted())
    func loads(file: String) throws {
        let plan = try SpecLoader.load(path: Self.sweeps.appendingPathComponent(file).path)
        let counts = Dictionary(uniqueKeysWithValues: plan.countsByStage.map { ($0.stage, $0.count) })
        #expect(counts == Self.expected[file]!)
        #expect(plan.name + ".yaml" == file)
        // Every consumer's input exists in the plan.
        let ids = Set(plan.tasks.map(\.id))
        #expect(plan.tasks.allSatisfy { $0.inputs.values.allSatisfy(ids.contains) })
    }

    @Test("paper.yaml keeps the published protocol")
    func paperProtocol() throws {
        let plan = try SpecLoader.load(path: Self.sweeps.appendingPathComponent("paper.yaml").path)
        let train = plan.tasks.first { $0.stage == "train" }!
        #expect(train.params["epochs"] == 10 && train.params["lr"] == 0.05 && train.params["weight_decay"] == 0.0005)
        #expect(train.params["val_split"] == 0)
        #expect(plan.context["data"] == ["dataset": "cifar10", "root": "~/data/cifar-10-batches-py"])
        #expect(plan.context["measure"]?["latency"]?["batch_sizes"] == [1, 64])
        // Fine-tuning reuses the training protocol (a YAML merge key) with 3 epochs.
        for task in plan.tasks where task.stage == "finetune" {
            var expected = train.params
            expected["epochs"] = 3
            expected["method"] = task.params["method"]
            expected["model"] = task.params["model"]
            expected["seed"] = task.params["seed"]
            #expect(task.params == expected)
        }
    }

    @Test("recommended.yaml's variants differ from the published ones only where intended")
    func recommendedVariants() throws {
        let plan = try SpecLoader.load(path: Self.sweeps.appendingPathComponent("recommended.yaml").path)
        let methods = plan.context["methods"]!
        var lowlr = methods["nm_2_4_lowlr"]!.objectValue!, published = methods["nm_2_4"]!.objectValue!
        lowlr["name"] = nil
        published["name"] = nil
        #expect(lowlr == published)
        #expect(methods["block_4x4_ramp"]?["probability_start"] == 0.3)
        let low = plan.tasks.first { $0.stage == "finetune_lowlr" }!
        #expect(low.params["lr"] == 0.0001 && low.params["lr_final"] == 0.00001 && low.params["scheduler"] == "none")
        #expect(low.params["momentum"] == 0.9 && low.params["epochs"] == 3)
        let ramp = plan.tasks.first { $0.stage == "finetune_ramp" }!
        #expect(ramp.params["epochs"] == 8)
        #expect(
            plan.tasks.filter { $0.stage.hasPrefix("finetune") }.allSatisfy { $0.inputs.keys.sorted() == ["train"] })
    }
}

@Suite("Synthetic data keys are bounded and passed on only when written")
struct SyntheticDataKeysTests {
    static func spec(_ data: String) -> String {
        """
        name: s
        engine: sparsity
        data: \(data)
        grid: {model: [resnet18]}
        stages:
          train: {params: {epochs: 1}}
        """
    }

    @Test("noise and distractor reach the task; out-of-range values name the key and range")
    func difficulty() throws {
        let plan = try SpecLoader.plan(
            yaml: Self.spec("{dataset: synthetic, train: 64, test: 32, noise: 0.1, distractor: 0}"), file: "s.yaml")
        #expect(plan.context["data"]?["noise"] == 0.1)
        #expect(plan.context["data"]?["distractor"] == 0)
        let plain = try SpecLoader.plan(
            yaml: Self.spec("{dataset: synthetic, train: 64, test: 32}"), file: "s.yaml")
        #expect(plain.context["data"]?["noise"] == nil)
        for (data, key) in [
            ("{dataset: synthetic, train: 64, test: 32, noise: 5}", "data.noise"),
            ("{dataset: synthetic, train: 64, test: 32, distractor: -0.5}", "data.distractor"),
            ("{dataset: synthetic, train: 2000000, test: 32}", "data.train"),
            ("{dataset: synthetic, train: 64, test: 32, seed: 4294967296}", "data.seed"),
        ] {
            #expect(throws: SpecError.self) { try SpecLoader.plan(yaml: Self.spec(data), file: "s.yaml") }
            do {
                _ = try SpecLoader.plan(yaml: Self.spec(data), file: "s.yaml")
            } catch {
                #expect("\(error)".contains("`\(key)`"), "\(data): \(error)")
            }
        }
    }
}
