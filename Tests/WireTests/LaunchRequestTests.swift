import Foundation
import SweepKit
import Testing

@testable import Wire

/// The coordinator reads a `launch` with `LaunchRequest(header:)` (JSONParser + field checks for
/// the tasks, Codable for the small outline), not with JSONDecoder: the plan must come out the
/// same, and a task no worker could accept must be refused at launch, by its index.
@Suite("LaunchRequest(header:): the plan as Codable would read it, each task checked")
struct LaunchRequestTests {
    static let yaml = """
        name: lr
        engine: sparsity
        data: {dataset: synthetic, train: 64, test: 32}
        grid:
          model: [resnet18, mobilenet_v2]
          seed: [0, 1]
        stages:
          train:
            params: {epochs: 1, max_steps: 2, batch_size: 16, lr: 0.05}
            timeout: 600
          finetune:
            after: train
            grid: {method: [nm_2_4]}
            params: {epochs: 1, max_steps: 1, batch_size: 16}
        methods:
          nm_2_4: {kind: n_m, n: 2, m: 4, skip: [first, last]}
        measure:
          latency: {batch_sizes: [1], warmup: 1, iterations: 2}
        resources: {device: cpu, exclusive: [finetune], isolate: true}
        dead_after: 120
        retries: 3
        """

    static func plan() throws -> SweepPlan { try SpecLoader.plan(yaml: yaml, file: "lr.yaml") }

    static func header(_ plan: SweepPlan) throws -> [UInt8] {
        try Codec.frames(.launch, LaunchRequest(plan: plan))[2]
    }

    /// The header with one task (index 1) edited as JSON.
    static func header(editingTask edit: (inout [String: JSONValue]) -> Void) throws -> [UInt8] {
        guard case .object(var root) = try JSONValue.parse(bytes: try header(try plan())),
            case .object(var plan)? = root["plan"], case .array(var tasks)? = plan["tasks"],
            case .object(var task) = tasks[1]
        else { throw WireError("unexpected shape") }
        edit(&task)
        tasks[1] = .object(task)
        plan["tasks"] = .array(tasks)
        root["plan"] = .object(plan)
        return JSONValue.object(root).canonicalBytes
    }

    @Test("every field of the plan comes back as JSONDecoder reads it, tasks in order")
    func sameAsCodable() throws {
        let plan = try Self.plan()
        #expect(plan.tasks.count == 8)
        #expect(plan.stageTimeouts != nil && plan.deadAfter == 120 && plan.exclusiveStages == ["finetune"])
        #expect(plan.isolatedStages == ["train", "finetune"])
        let header = try Self.header(plan)
        let fast = try LaunchRequest(header: header).plan
        let codable = try JSONDecoder().decode(CodablePlan.self, from: Data(header)).plan
        #expect(fast.tasks == codable.tasks)
        #expect(fast.tasks == plan.tasks)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(try encoder.encode(fast) == encoder.encode(codable))
        #expect(fast.specText == plan.specText && fast.retries == 3 && fast.device == "cpu")
    }

    @Test(
        "a task no assign could carry is refused, naming its index and field",
        arguments: [
            ("id", JSONValue.string("has space"), "launch.plan.tasks[1]`.id is not an id"),
            ("id", JSONValue.number(7), "launch.plan.tasks[1]`.id must be a string"),
            ("stage", JSONValue.string(String(repeating: "s", count: 129)), "launch.plan.tasks[1]`.stage is longer"),
            ("priority", JSONValue.number(1.5), "launch.plan.tasks[1]`.priority must be a whole number"),
            ("priority", JSONValue.number(1e300), "launch.plan.tasks[1]`.priority must be a whole number"),
            ("inputs", JSONValue.object(["train": .number(1)]), "launch.plan.tasks[1]`.inputs must map"),
            ("inputs", JSONValue.object(["../x": .string("abc")]), "launch.plan.tasks[1]`.inputs must map"),
            ("params", JSONValue.array([]), "launch.plan.tasks[1]`.params must be an object"),
            (
                "params",
                JSONValue.object(Dictionary(uniqueKeysWithValues: (0...1024).map { ("k\($0)", JSONValue.null) })),
                "launch.plan.tasks[1]`.params has more than 1024 entries"
            ),
        ])
    func refusedTask(key: String, value: JSONValue, message: String) throws {
        let header = try Self.header { $0[key] = value }
        #expect {
            try LaunchRequest(header: header)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("a missing priority, tasks that are not an array, a plan that is not an object: refused, not a crash")
    func refusedShapes() throws {
        let missing = try Self.header { $0["priority"] = nil }
        #expect(throws: WireError.self) { try LaunchRequest(header: missing) }
        for text in [
            #"{"plan":{"tasks":{}}}"#, #"{"plan":[]}"#, #"{"plan":{"tasks":[]}}"#, "[]", "{",
            #"{"plan":{"name":1,"tasks":[]}}"#,
        ] {
            #expect(throws: WireError.self, "\(text)") { try LaunchRequest(header: Array(text.utf8)) }
        }
    }
}

/// The Codable reading the coordinator used before (what `LaunchRequest` decoded as).
private struct CodablePlan: Decodable {
    var plan: SweepPlan
}
