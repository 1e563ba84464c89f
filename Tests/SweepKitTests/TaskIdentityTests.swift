import Foundation
import Testing

@testable import SweepKit

@Suite("Task ids are content hashes of what a task computes")
struct TaskIdentityTests {
    let base = try! Fixtures.plan(Fixtures.twoStage)

    func edited(_ from: String, _ to: String) throws -> SweepPlan {
        let text = Fixtures.twoStage.replacingOccurrences(of: from, with: to)
        #expect(text != Fixtures.twoStage, "the edit must apply")
        return try Fixtures.plan(text)
    }

    @Test("planning the same text twice gives the same ids, and ids are hex SHA-256")
    func stable() throws {
        let again = try Fixtures.plan(Fixtures.twoStage, file: "elsewhere/other-name.yaml")
        #expect(Fixtures.ids(again) == Fixtures.ids(base))
        #expect(Set(Fixtures.ids(base)).count == 12)
        #expect(base.tasks.allSatisfy { $0.id.count == 64 && $0.id.allSatisfy(\.isHexDigit) })
    }

    @Test("the id is the SHA-256 of the documented canonical JSON")
    func documentedFormula() throws {
        let task = base.tasks[0]
        let expected = TaskIdentity.id(
            sweep: "demo", stage: "train", params: task.params, inputs: [:], engine: "sparsity",
            data: ["dataset": "synthetic", "train": 64, "test": 32, "seed": 0], method: nil,
            measure: ["latency": ["batch_sizes": [1], "warmup": 2, "iterations": 5], "flops": false, "memory": false])
        #expect(task.id == expected)
        // Known answer, computed outside Swift:
        // printf '%s' '{"data":null,"engine":"null","inputs":{},"measure":null,"method":null,"params":{"a":1},"stage":"t","sweep":"s"}' | sha256sum
        let fixed = TaskIdentity.id(
            sweep: "s", stage: "t", params: ["a": 1], inputs: [:], engine: "null",
            data: nil, method: nil, measure: nil)
        #expect(fixed == "49c45fff013cf2faca237500c3e37761427c7bd1ce978626a74b7f270d373144")
    }

    @Test("edits that change no task keep every id")
    func unrelatedEdits() throws {
        let text =
            "# a comment\ndescription: a note\n"
            + Fixtures.twoStage
            .replacingOccurrences(of: "params: {epochs: 1, lr: 0.01}", with: "params: {lr: 0.01, epochs: 1}")
            + "\nretries: 5\nresources: {device: cpu}\nreport:\n  - {title: Renamed, rows: model, columns: seed, values: [loss]}\n"
        #expect(Fixtures.ids(try Fixtures.plan(text)) == Fixtures.ids(base))
        // Spelling a default out is the same as leaving it implicit.
        let explicit = try edited("test: 32}", "test: 32, seed: 0}")
        #expect(Fixtures.ids(explicit) == Fixtures.ids(base))
    }

    @Test("changing a stage's params changes its tasks and every task downstream")
    func paramEdit() throws {
        let plan = try edited("params: {epochs: 1, max_steps: 2}", "params: {epochs: 2, max_steps: 2}")
        #expect(Set(Fixtures.ids(plan)).isDisjoint(with: Fixtures.ids(base)))
    }

    @Test("changing a method's definition changes only the tasks that use it")
    func methodEdit() throws {
        let plan = try edited("probability: 0.5}", "probability: 0.4}")
        for (old, new) in zip(base.tasks, plan.tasks) {
            #expect((old.id == new.id) == (old.params["method"] != "block_4x4"))
        }
    }

    @Test("changing the data or the measurement changes every id")
    func dataAndMeasure() throws {
        for plan in [try edited("train: 64", "train: 65"), try edited("iterations: 5", "iterations: 6")] {
            #expect(Set(Fixtures.ids(plan)).isDisjoint(with: Fixtures.ids(base)))
        }
    }

    @Test("adding a grid value adds cells and keeps the existing ones")
    func growGrid() throws {
        let plan = try edited("seed: [0, 1]", "seed: [0, 1, 2]")
        #expect(plan.tasks.count == 18)
        #expect(Set(Fixtures.ids(base)).isSubset(of: Fixtures.ids(plan)))
    }

    @Test("the sweep name is part of the identity")
    func sweepName() throws {
        let plan = try edited("name: demo", "name: demo2")
        #expect(Set(Fixtures.ids(plan)).isDisjoint(with: Fixtures.ids(base)))
    }
}
