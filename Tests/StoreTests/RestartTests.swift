import SweepKit
import Testing

@testable import Store

@Suite("Snapshot after a restart")
struct RestartTests {
    @Test("a snapshot of one sweep holds only that sweep's plan, tasks and running attempts")
    func oneSweep() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        let a = makePlan("a"), b = makePlan("b")
        _ = try store.launch(a, now: 10)
        _ = try store.launch(b, now: 10)
        try store.apply([
            .taskStarted(taskId: b.tasks[0].id, attemptsUsed: 1, at: 11),
            .attemptStarted(attemptId: "b1", taskId: b.tasks[0].id, workerId: "w1", at: 11),
        ])
        let onlyA = try store.loadSnapshot(sweep: "a")
        #expect(onlyA.sweeps.map(\.name) == ["a"])
        #expect(Set(onlyA.tasks.map(\.id)) == Set(a.tasks.map(\.id)))
        #expect(onlyA.tasks.contains { !$0.inputs.isEmpty })
        #expect(onlyA.runningAttempts.isEmpty)
        let onlyB = try store.loadSnapshot(sweep: "b")
        #expect(onlyB.runningAttempts.map(\.id) == ["b1"])
        #expect(try store.loadSnapshot().tasks.count == a.tasks.count + b.tasks.count)
    }

    @Test("a reopened store returns the sweeps, task states and still-running attempts")
    func snapshotAfterRestart() throws {
        let dir = try TempDir()
        do {
            let coordinator = try SweepStore(path: dir.dbPath)
            _ = try coordinator.launch(makePlan(), now: 10)
            _ = try coordinator.launch(makePlan("second", models: ["vgg"]), now: 11)
            try coordinator.apply(
                succeed("grid/train/vgg/0", attempt: "a1", at: 12) + [
                    .taskAttemptsUsed(taskId: "grid/train/vgg/0", attemptsUsed: 1),
                    .worker(id: "w2", host: "gpu-2", info: [:], seenAt: 13, state: "busy"),
                    .taskState(taskId: "grid/finetune/vgg/0/2:4", state: .running, error: nil, at: 13),
                    .attemptStarted(attemptId: "a2", taskId: "grid/finetune/vgg/0/2:4", workerId: "w2", at: 13),
                    .taskState(taskId: "grid/train/resnet/0", state: .ready, error: nil, at: 13),
                    .sweepCancelled(sweep: "second", cancelled: true, at: 14),
                ])
            // The coordinator dies here without ending attempt a2.
        }
        let restarted = try SweepStore(path: dir.dbPath)
        let snapshot = try restarted.loadSnapshot()
        #expect(snapshot.sweeps.map(\.name) == ["grid", "second"])
        #expect(snapshot.sweeps.first?.retries == 1)
        #expect(snapshot.cancelledSweeps == ["second"])
        #expect(snapshot.tasks.count == 6)
        let states = Dictionary(uniqueKeysWithValues: snapshot.tasks.map { ($0.id, $0.state) })
        #expect(states["grid/train/vgg/0"] == .succeeded)
        #expect(states["grid/finetune/vgg/0/2:4"] == .running)
        #expect(states["grid/train/resnet/0"] == .ready)
        #expect(snapshot.tasks.first { $0.id == "grid/train/vgg/0" }?.attemptsUsed == 1)
        #expect(
            snapshot.runningAttempts == [
                AttemptRow(
                    id: "a2", taskId: "grid/finetune/vgg/0/2:4", workerId: "w2", startedAt: 13, endedAt: nil,
                    outcome: .running, exitCode: nil, error: nil, stderrTail: nil)
            ])
        let attempt = try #require(try restarted.attempts(task: "grid/train/vgg/0").first)
        #expect(attempt.outcome == .succeeded && attempt.exitCode == 0 && attempt.endedAt == 13)
    }
}
