import Foundation
import Store
import SweepKit
import Testing

@testable import Coordinator

// Offline `cancel` and `retry` run the scheduler's own events on a restored scheduler and apply
// the effects to a real SQLite file: one code path with a live coordinator.

private func plan() -> SweepPlan {
    var tasks: [PlannedTask] = []
    for model in ["resnet", "vgg"] {
        tasks.append(
            PlannedTask(
                id: "train-\(model)", stage: "train", params: ["model": .string(model)], inputs: [:],
                priority: 10))
        tasks.append(
            PlannedTask(
                id: "tune-\(model)", stage: "finetune", params: ["model": .string(model)],
                inputs: ["train": "train-\(model)"], priority: 5))
    }
    return SweepPlan(
        name: "grid", engine: "null", context: .object([:]), tasks: tasks, retries: 1, device: "any",
        reports: [], specText: "name: grid\n")
}

private func tempDatabase() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sg-offline-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("sparsegrid.db").path
}

@Suite("Offline cancel and retry go through the scheduler")
struct OfflineControlTests {
    @Test("cancel ends running attempts, cancels unfinished tasks and keeps finished ones")
    func cancel() throws {
        let path = try tempDatabase()
        let store = try SweepStore(path: path)
        _ = try store.launch(plan(), now: 10)
        try store.apply([
            .taskState(taskId: "train-vgg", state: .succeeded, error: nil, at: 11),
            .taskState(taskId: "train-resnet", state: .running, error: nil, at: 12),
            .attemptStarted(attemptId: "a2", taskId: "train-resnet", workerId: "w1", at: 12),
        ])
        #expect(try OfflineControl.cancel(databasePath: path, sweep: "grid", now: 20) == 3)
        let snapshot = try store.loadSnapshot()
        #expect(snapshot.cancelledSweeps == ["grid"])
        #expect(snapshot.runningAttempts.isEmpty, "no attempt row is left running")
        #expect(
            Dictionary(uniqueKeysWithValues: snapshot.tasks.map { ($0.id, $0.state) }) == [
                "train-resnet": .cancelled, "train-vgg": .succeeded, "tune-resnet": .cancelled, "tune-vgg": .cancelled,
            ])
        let attempt = try #require(try store.attempts(task: "train-resnet").first)
        #expect(attempt.outcome == .cancelled && attempt.endedAt == 20)
    }

    @Test("retry puts failed and cancelled tasks back with a fresh budget; consumers wait for their inputs")
    func retry() throws {
        let path = try tempDatabase()
        let store = try SweepStore(path: path)
        _ = try store.launch(plan(), now: 10)
        try store.apply([
            .taskState(taskId: "train-vgg", state: .failed, error: "boom", at: 11),
            .taskAttemptsUsed(taskId: "train-vgg", attemptsUsed: 2),
            .taskState(taskId: "tune-vgg", state: .failed, error: "input failed", at: 12),
            .taskState(taskId: "train-resnet", state: .succeeded, error: nil, at: 13),
        ])
        #expect(try OfflineControl.retry(databasePath: path, sweep: "grid", now: 20) == 2)
        let tasks = Dictionary(uniqueKeysWithValues: try store.loadSnapshot().tasks.map { ($0.id, $0) })
        #expect(tasks["train-vgg"]?.state == .ready)
        #expect(tasks["train-vgg"]?.attemptsUsed == 0)
        #expect(tasks["tune-vgg"]?.state == .pending)
        #expect(tasks["train-resnet"]?.state == .succeeded)
    }

    @Test("an unknown sweep is named in the error with the sweeps that exist")
    func unknown() throws {
        let path = try tempDatabase()
        _ = try SweepStore(path: path).launch(plan(), now: 10)
        let error = #expect(throws: CoordinatorError.self) {
            try OfflineControl.cancel(databasePath: path, sweep: "nope", now: 20)
        }
        #expect(error?.description.contains("no sweep named 'nope'") == true)
        #expect(error?.description.contains("grid") == true)
    }
}
