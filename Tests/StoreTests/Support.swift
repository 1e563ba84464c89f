import Foundation
import SweepKit

@testable import Store

/// A fresh directory under the system temp dir, removed when released.
final class TempDir {
    let path: String

    init() throws {
        path =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("sparsegrid-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A database path one level down, so the store has to create the directory.
    var dbPath: String { path + "/state/sparsegrid.db" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A two-stage sweep: one `train` task per (model, seed) and one `finetune` task per
/// (model, seed, method) consuming it. Ids are readable rather than hashes.
func makePlan(
    _ name: String = "grid", models: [String] = ["resnet", "vgg"], seeds: [Int] = [0],
    methods: [String] = ["2:4"], retries: Int = 1
) -> SweepPlan {
    var tasks: [PlannedTask] = []
    for model in models {
        for seed in seeds {
            tasks.append(
                PlannedTask(
                    id: "\(name)/train/\(model)/\(seed)", stage: "train",
                    params: ["model": .string(model), "seed": .number(Double(seed)), "epochs": 2],
                    inputs: [:], priority: 10))
        }
    }
    for model in models {
        for seed in seeds {
            for method in methods {
                tasks.append(
                    PlannedTask(
                        id: "\(name)/finetune/\(model)/\(seed)/\(method)", stage: "finetune",
                        params: [
                            "model": .string(model), "seed": .number(Double(seed)),
                            "method": .string(method),
                        ],
                        inputs: ["train": "\(name)/train/\(model)/\(seed)"], priority: 5))
            }
        }
    }
    return SweepPlan(
        name: name, engine: "null", context: ["data": ["name": "cifar10"]], tasks: tasks,
        retries: retries, device: "cpu",
        reports: [ReportSpec(title: "accuracy", rows: "model", columns: "method", values: ["top1"])],
        specText: "name: \(name)\n")
}

/// The mutations of one attempt that succeeds, in the order the coordinator commits them.
func succeed(
    _ task: String, attempt: String, worker: String = "w1", at t: Double,
    metrics: [String: Double?] = ["top1": 0.9]
) -> [StoreMutation] {
    [
        .taskStarted(taskId: task, attemptsUsed: 1, at: t),
        .attemptStarted(attemptId: attempt, taskId: task, workerId: worker, at: t),
        .attemptEnded(attemptId: attempt, outcome: .succeeded, at: t + 1, exitCode: 0, error: nil, stderrTail: nil),
        .result(
            taskId: task, attemptId: attempt, metrics: metrics, units: ["top1": "fraction"],
            details: ["device": "cpu"], at: t + 1),
        .taskState(taskId: task, state: .succeeded, error: nil, at: t + 1),
    ]
}

func fail(_ task: String, attempt: String, error: String, final: Bool, at t: Double) -> [StoreMutation] {
    [
        .taskState(taskId: task, state: .running, error: nil, at: t),
        .attemptStarted(attemptId: attempt, taskId: task, workerId: "w1", at: t),
        .attemptEnded(
            attemptId: attempt, outcome: .failed, at: t + 1, exitCode: 1, error: error, stderrTail: "Traceback…"),
        .taskState(taskId: task, state: final ? .failed : .ready, error: final ? error : nil, at: t + 1),
    ]
}

extension SweepStore {
    func task(_ id: String) throws -> TaskRecord? {
        try loadSnapshot().tasks.first { $0.id == id }
    }
}
