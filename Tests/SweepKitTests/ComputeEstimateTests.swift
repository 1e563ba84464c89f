import Foundation
import Testing

@testable import SweepKit

@Suite("validate's compute estimate and data-root warning")
struct ComputeEstimateTests {
    private func shipped(_ name: String) throws -> SweepPlan {
        try SpecLoader.validate(path: ShippedSweepsTests.sweeps.appendingPathComponent(name).path).plan
    }

    @Test("one task: trained images / rate, forward-only images at a third, latency calls, start-up")
    func oneTask() throws {
        let plan = try shipped("quick.yaml")
        let task = try #require(plan.tasks.first { $0.stage == "train" && $0.model == "resnet18" })
        // 3 epochs × min(1024, 6 × 32); 3 × 512 + 512 evaluated; (3 + 20) calls × 2 models at
        // batch sizes 1 and 16; 10 s start-up.
        let trained: Double = 576.0 / 33
        let forward: Double = (2048.0 + 2 * 23 * 17) / 99
        let expected: Double = trained + forward + 10
        #expect(abs(ComputeEstimate.seconds(for: task, context: plan.context, device: .cpu) - expected) < 1e-9)
    }

    /// The demo's measured attempt times (2026-11-30, `make demo`): the estimate must stay
    /// within a factor of 1.5 of each, or the table no longer describes what it says it measured.
    @Test("the CPU estimate is within 1.5× of the demo's measured task times")
    func matchesDemo() throws {
        let plan = try shipped("quick.yaml")
        let measured: [String: [String: Double]] = [
            "train": ["resnet18": 49.6, "densenet121": 137.9],
            "finetune": ["resnet18": 40.1, "densenet121": 129.4],
        ]
        for task in plan.tasks {
            let actual = try #require(measured[task.stage]?[task.model ?? ""])
            let estimate = ComputeEstimate.seconds(for: task, context: plan.context, device: .cpu)
            #expect(
                estimate > actual / 1.5 && estimate < actual * 1.5, "\(task.stage) \(task.model ?? ""): \(estimate)")
        }
        let total = try #require(ComputeEstimate(plan: plan))
        #expect(total.tasksEstimated == 6 && total.unknownModels.isEmpty)
        #expect(total.seconds.keys.sorted { $0.rawValue < $1.rawValue } == [.cpu, .gpu])
        #expect(total.text.hasPrefix("estimate  rough, for 6 tasks: about 8 min on one CPU slot, or"))
        #expect(total.text.contains("GPU assumed, not measured"))
    }

    @Test("paper.yaml: days on one CPU slot, hours on one GPU; a GPU-only spec gets only the GPU figure")
    func paperScale() throws {
        let plan = try shipped("paper.yaml")
        let estimate = try #require(ComputeEstimate(plan: plan))
        #expect(estimate.tasksEstimated == 45)
        #expect(try #require(estimate.seconds[.cpu]) > 5 * 86400)
        let gpu = try #require(estimate.seconds[.gpu])
        #expect(gpu > 3600 && gpu < 86400)
        var gpuOnly = plan
        gpuOnly.device = "gpu"
        #expect(ComputeEstimate(plan: gpuOnly)?.seconds.keys.map(\.rawValue) == ["gpu"])
    }

    @Test("another engine gets no estimate; an unknown model is left out and named")
    func unknowns() throws {
        let other = try SpecLoader.validate(
            yaml: "name: x\nengine: bench\nstages: {a: {}}\n", file: "x.yaml"
        ).plan
        #expect(ComputeEstimate(plan: other) == nil)
        var plan = try shipped("quick.yaml")
        plan.tasks[0].params["model"] = .string("vgg11")
        let estimate = try #require(ComputeEstimate(plan: plan))
        #expect(estimate.tasksEstimated == 5 && estimate.unknownModels == ["vgg11"])
        #expect(estimate.text.contains("5 of 6 tasks"))
        #expect(estimate.text.contains("no estimate for model(s) vgg11"))
    }

    @Test("a CIFAR-10 root missing here is a warning that says workers resolve it; a present one is not")
    func dataRoot() throws {
        let plan = try shipped("paper.yaml")
        var asked: [String] = []
        let warning = try #require(
            DataRootCheck.warning(plan: plan) {
                asked.append($0); return false
            })
        #expect(asked == [NSString(string: "~/data/cifar-10-batches-py").expandingTildeInPath])
        #expect(warning.hasPrefix("warning: data.root ~/data/cifar-10-batches-py does not exist on this host"))
        #expect(warning.contains("Each worker resolves it on its own host"))
        #expect(DataRootCheck.warning(plan: plan) { _ in true } == nil)
        #expect(DataRootCheck.warning(plan: try shipped("quick.yaml")) { _ in false } == nil, "synthetic data")
    }
}
