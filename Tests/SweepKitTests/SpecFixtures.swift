@testable import SweepKit

/// Spec texts shared by the suites. Line numbers matter: messages are asserted exactly.
enum Fixtures {
    /// Two stages over 2 models × 2 seeds; finetune adds two methods.
    static let twoStage = """
        name: demo
        data: {dataset: synthetic, train: 64, test: 32}
        grid:
          model: [resnet18, mobilenet_v2]
          seed: [0, 1]
        stages:
          train:
            params: {epochs: 1, max_steps: 2}
          finetune:
            after: train
            grid:
              method: [nm_2_4, block_4x4]
            params: {epochs: 1, lr: 0.01}
        methods:
          nm_2_4: {kind: n_m, n: 2, m: 4, skip: [first, last]}
          block_4x4: {kind: block, shape: [4, 4], select: random, probability: 0.5}
        measure:
          latency: {batch_sizes: [1], warmup: 2, iterations: 5}
        """

    static func plan(_ yaml: String, file: String = "spec.yaml") throws -> SweepPlan {
        try SpecLoader.plan(yaml: yaml, file: file)
    }

    /// The issues of a spec that must fail, as the lines a user sees.
    static func problems(_ yaml: String, file: String = "spec.yaml") -> [String] {
        do {
            _ = try SpecLoader.plan(yaml: yaml, file: file)
            return ["(no error)"]
        } catch let error as SpecError {
            return error.issues.map(\.description)
        } catch {
            return ["unexpected error: \(error)"]
        }
    }

    static func ids(_ plan: SweepPlan) -> [String] { plan.tasks.map(\.id) }
}
