import Foundation
import Testing

@testable import SweepKit

@Suite("A valid spec expands into a task DAG")
struct PlanExpansionTests {
    @Test("each stage has the product of the top grid and its own grid, in the order written")
    func counts() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        #expect(plan.countsByStage.map(\.stage) == ["train", "finetune"])
        #expect(plan.countsByStage.map(\.count) == [4, 8])
        let train = plan.tasks.filter { $0.stage == "train" }
        #expect(
            train.map { "\($0.model!)/\($0.seed!)" } == [
                "resnet18/0", "resnet18/1", "mobilenet_v2/0", "mobilenet_v2/1",
            ])
        let finetune = plan.tasks.filter { $0.stage == "finetune" }
        #expect(finetune.prefix(2).map(\.method) == ["nm_2_4", "block_4x4"])
    }

    @Test("task params are the grid values plus the stage's params")
    func params() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        let first = plan.tasks.first { $0.stage == "finetune" }!
        #expect(first.params == ["model": "resnet18", "seed": 0, "method": "nm_2_4", "epochs": 1, "lr": 0.01])
        #expect(plan.tasks[0].params == ["model": "resnet18", "seed": 0, "epochs": 1, "max_steps": 2])
        #expect(plan.tasks[0].method == "dense")
    }

    @Test("each finetune task consumes the train task of the same model and seed")
    func edges() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        let train = Dictionary(
            uniqueKeysWithValues: plan.tasks.filter { $0.stage == "train" }.map {
                ("\($0.model!)/\($0.seed!)", $0.id)
            })
        #expect(plan.tasks.filter { $0.stage == "train" }.allSatisfy { $0.inputs.isEmpty })
        for task in plan.tasks where task.stage == "finetune" {
            #expect(task.inputs == ["train": train["\(task.model!)/\(task.seed!)"]!])
        }
        // Topological: every input appears before its consumer.
        for (i, task) in plan.tasks.enumerated() {
            for input in task.inputs.values {
                #expect(plan.tasks[..<i].contains { $0.id == input })
            }
        }
    }

    @Test("earlier stages get higher priority")
    func priority() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        #expect(Set(plan.tasks.filter { $0.stage == "train" }.map(\.priority)) == [2])
        #expect(Set(plan.tasks.filter { $0.stage == "finetune" }.map(\.priority)) == [1])
    }

    @Test("the context carries data, method definitions and measurement with defaults filled in")
    func context() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        #expect(plan.context["data"] == ["dataset": "synthetic", "train": 64, "test": 32, "seed": 0])
        #expect(
            plan.context["methods"]?["nm_2_4"] == [
                "name": "nm_2_4", "kind": "n_m", "n": 2, "m": 4, "skip": ["first", "last"],
            ])
        #expect(
            plan.context["methods"]?["block_4x4"] == [
                "name": "block_4x4", "kind": "block", "shape": [4, 4], "select": "random", "probability": 0.5,
                "skip": [],
            ])
        #expect(
            plan.context["measure"] == [
                "latency": ["batch_sizes": [1], "warmup": 2, "iterations": 5], "flops": false, "memory": false,
            ])
    }

    @Test("engine, resources, retries and the default report tables")
    func defaults() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        #expect(plan.name == "demo")
        #expect(plan.engine == "sparsity")
        #expect(plan.device == "any")
        #expect(plan.retries == 2)
        #expect(
            plan.reports == [
                ReportSpec(
                    title: "Accuracy and latency", rows: "model", columns: "method", values: ["accuracy", "latency_ms"]),
                ReportSpec(
                    title: "FLOPs and memory", rows: "model", columns: "method",
                    values: ["gmacs", "weight_mib", "peak_mib"]),
            ])
        #expect(plan.specText == Fixtures.twoStage)
    }

    @Test("a spec's own report list replaces the defaults")
    func ownReports() throws {
        let plan = try Fixtures.plan(
            Fixtures.twoStage + """

                report:
                  - {title: Seeds, rows: seed, columns: method, values: accuracy}
                resources: {device: gpu}
                retries: 0
                """)
        #expect(plan.reports == [ReportSpec(title: "Seeds", rows: "seed", columns: "method", values: ["accuracy"])])
        #expect(plan.device == "gpu")
        #expect(plan.retries == 0)
    }

    @Test("a single scalar in a grid is a list of one value")
    func scalarAxis() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage.replacingOccurrences(of: "seed: [0, 1]", with: "seed: 7"))
        #expect(plan.countsByStage.map(\.count) == [2, 4])
        #expect(plan.tasks.allSatisfy { $0.seed == 7 })
    }

    @Test("a chain of stages links each task to the matching task of the stage before")
    func chain() throws {
        let plan = try Fixtures.plan(
            """
            name: chain
            engine: null
            grid: {model: [a, b]}
            stages:
              train: {grid: {width: [1, 2]}}
              prune:
                after: train
                grid: {width: [2], method: [x, y]}
              finetune:
                after: prune
                grid: {width: [2], method: [x, y], lr: [0.1, 0.2]}
            """)
        #expect(plan.countsByStage.map(\.count) == [4, 4, 8])
        #expect(plan.tasks.map(\.priority) == [3, 3, 3, 3, 2, 2, 2, 2] + Array(repeating: 1, count: 8))
        let byId = Dictionary(uniqueKeysWithValues: plan.tasks.map { ($0.id, $0) })
        for task in plan.tasks where task.stage == "finetune" {
            let prune = byId[task.inputs["prune"]!]!
            #expect(prune.params["method"] == task.params["method"] && prune.params["model"] == task.params["model"])
            let train = byId[prune.inputs["train"]!]!
            #expect(train.params == ["model": task.params["model"]!, "width": 2])
        }
    }

    @Test("other engines pass params and method definitions through unchecked")
    func otherEngine() throws {
        let plan = try Fixtures.plan(
            """
            name: bench
            engine: null
            grid: {sleep_ms: [0, 5], method: [m1, other]}
            stages:
              work: {params: {payload: {size: 3, tags: [a, b]}}}
            methods:
              m1: {anything: [1, 2]}
            """)
        #expect(plan.engine == "null")
        #expect(plan.tasks.count == 4)
        #expect(plan.tasks[0].params == ["sleep_ms": 0, "method": "m1", "payload": ["size": 3, "tags": ["a", "b"]]])
        #expect(plan.context == ["data": nil, "methods": ["m1": ["anything": [1, 2], "name": "m1"]], "measure": nil])
    }

    @Test("a YAML merge key reuses anchored params; keys written beside it win")
    func mergeKey() throws {
        let plan = try Fixtures.plan(
            """
            name: merged
            engine: null
            stages:
              train: {params: &base {lr: 0.1, epochs: 10, wd: 0.001}}
              finetune: {after: train, params: {epochs: 3, <<: *base, extra: true}}
            """)
        #expect(
            plan.tasks.map(\.params) == [
                ["lr": 0.1, "epochs": 10, "wd": 0.001],
                ["lr": 0.1, "epochs": 3, "wd": 0.001, "extra": true],
            ])
    }

    @Test("a merged mapping keeps its own lines in messages")
    func mergeKeyPositions() {
        let text = Fixtures.twoStage
            .replacingOccurrences(of: "params: {epochs: 1, max_steps: 2}", with: "params: &p {epochs: 1, max_step: 2}")
            .replacingOccurrences(of: "params: {epochs: 1, lr: 0.01}", with: "params: {<<: *p, lr: 0.01}")
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:8:28: `stages.train.params.max_step`: `max_step` is not a parameter of the sparsity engine; did you mean `max_steps`? Parameters: epochs, batch_size, lr, lr_final, momentum, weight_decay, scheduler, val_split, max_steps, eval_batch_size, channels_last, num_threads.",
                "spec.yaml:8:28: `stages.finetune.params.max_step`: `max_step` is not a parameter of the sparsity engine; did you mean `max_steps`? Parameters: epochs, batch_size, lr, lr_final, momentum, weight_decay, scheduler, val_split, max_steps, eval_batch_size, channels_last, num_threads.",
            ])
    }
}
