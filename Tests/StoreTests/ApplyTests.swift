import GRDB
import SweepKit
import Testing

@testable import Store

@Suite("Applying mutation batches")
struct ApplyTests {
    @Test("a started attempt sets its task running with the attempt count, and a restart sees both")
    func taskStarted() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        let plan = makePlan()
        _ = try store.launch(plan, now: 10)
        let task = plan.tasks[0].id
        try store.apply([
            .taskStarted(taskId: task, attemptsUsed: 2, at: 11),
            .attemptStarted(attemptId: "a1", taskId: task, workerId: "w1", at: 11),
        ])
        let record = try #require(try store.loadSnapshot().tasks.first { $0.id == task })
        #expect(record.state == .running)
        #expect(record.attemptsUsed == 2)
        #expect(throws: StoreError.self) {
            try store.apply([.taskStarted(taskId: "no-such-task", attemptsUsed: 1, at: 12)])
        }
    }

    @Test("a batch with one rejected mutation leaves nothing applied")
    func atomic() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        let eventsBefore = try store.recentEvents(limit: 100).count
        let batch: [StoreMutation] = [
            .worker(id: "w1", host: "gpu-1", info: ["gpus": 1], seenAt: 11, state: "idle"),
            .taskState(taskId: "grid/train/vgg/0", state: .running, error: nil, at: 11),
            .event(
                at: 11, kind: "assign", sweep: "grid", taskId: "grid/train/vgg/0", workerId: "w1", message: "assigned"),
            // No such task: the foreign key on attempts.task_id rejects it.
            .attemptStarted(attemptId: "a1", taskId: "grid/train/nope/0", workerId: "w1", at: 11),
        ]
        let error = #expect(throws: StoreError.self) { try store.apply(batch) }
        #expect(error?.code == .batchRejected)
        #expect(error?.description.contains("start attempt a1 of task grid/train/nope/0") == true)
        #expect(error?.description.contains("nothing in it was saved") == true)

        #expect(try store.task("grid/train/vgg/0")?.state == .ready)  // as launched: it consumes nothing
        #expect(try store.workers().isEmpty)
        #expect(try store.recentEvents(limit: 100).count == eventsBefore)
        #expect(try store.attempts(task: "grid/train/nope/0").isEmpty)
    }

    @Test("an update naming an unknown task or attempt rejects the batch")
    func unknownRows() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        for bad: StoreMutation in [
            .taskState(taskId: "ghost", state: .running, error: nil, at: 11),
            .attemptEnded(attemptId: "ghost", outcome: .lost, at: 11, exitCode: nil, error: nil, stderrTail: nil),
            .sweepCancelled(sweep: "ghost", cancelled: true, at: 11),
        ] {
            let error = #expect(throws: StoreError.self) {
                try store.apply([.taskState(taskId: "grid/train/vgg/0", state: .running, error: nil, at: 11), bad])
            }
            #expect(error?.code == .notFound)
            #expect(error?.description.contains("ghost") == true)
            #expect(try store.task("grid/train/vgg/0")?.state == .ready)
        }
    }

    @Test("the first result of a task is kept and a later one is reported as dropped")
    func resultOnce() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        let task = "grid/train/vgg/0"
        let first = try store.apply(succeed(task, attempt: "a1", at: 11, metrics: ["top1": 0.91]))
        #expect(first == [true])

        let stored = try store.apply([
            .attemptStarted(attemptId: "a2", taskId: task, workerId: "w2", at: 12),
            .result(taskId: task, attemptId: "a2", metrics: ["top1": 0.5], units: [:], details: .null, at: 13),
            .attemptEnded(attemptId: "a2", outcome: .duplicate, at: 13, exitCode: 0, error: nil, stderrTail: nil),
            .result(
                taskId: "grid/train/resnet/0", attemptId: "a2", metrics: ["top1": 0.7], units: [:], details: .null,
                at: 13),
        ])
        #expect(stored == [false, true])
        let row = try #require(
            try store.resultRows(sweep: "grid", where: [("model", "vgg")]).first { $0.taskId == task })
        #expect(row.metrics == ["top1": 0.91])
        #expect(row.units == ["top1": "fraction"])
        #expect(row.details == ["device": "cpu"])
        #expect(try store.countResults(sweep: "grid") == 2)
    }

    @Test("a nil metric comes back as nil, not dropped")
    func nilMetrics() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        let metrics: [String: Double?] = ["top1": 0.9, "latency_sparse_ms": nil, "flops": 1.5e9]
        try store.apply(succeed("grid/train/vgg/0", attempt: "a1", at: 11, metrics: metrics))
        let row = try #require(try store.resultRows(sweep: "grid", states: [.succeeded]).first)
        #expect(row.metrics == metrics)
        #expect(row.metrics.keys.contains("latency_sparse_ms"))
        #expect(row.metrics["latency_sparse_ms"] == .some(nil))
    }

    @Test("workers register once, keep first_seen, and heartbeats refresh last_seen")
    func workers() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        try store.apply([
            .worker(id: "w1", host: "gpu-1", info: ["gpus": 1], seenAt: 5, state: "idle"),
            .workerSeen(id: "w1", at: 6),
            .workerSeen(id: "never-registered", at: 6),
            .worker(id: "w1", host: "gpu-1", info: ["gpus": 2], seenAt: 7, state: "busy"),
            .workerSeen(id: "w1", at: 8),
        ])
        #expect(
            try store.workers() == [
                WorkerRow(id: "w1", host: "gpu-1", info: ["gpus": 2], firstSeen: 5, lastSeen: 8, state: "busy")
            ])
    }

    @Test("progress metrics are narrow rows; a repeated step replaces its value")
    func progressMetrics() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        try store.apply([
            .attemptStarted(attemptId: "a1", taskId: "grid/train/vgg/0", workerId: "w1", at: 11),
            .metric(attemptId: "a1", step: 1, name: "loss", value: 2.0),
            .metric(attemptId: "a1", step: 2, name: "loss", value: 1.5),
            .metric(attemptId: "a1", step: 2, name: "loss", value: 1.4),
            .metric(attemptId: "a1", step: 3, name: "loss", value: .nan),
        ])
        let rows = try store.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT step, value FROM metrics WHERE attempt_id = 'a1' AND name = 'loss' ORDER BY step"
            )
            .map { ($0[0] as Int, $0[1] as Double?) }
        }
        #expect(rows.map(\.0) == [1, 2, 3])
        #expect(rows.map(\.1) == [2.0, 1.4, nil])
    }
}
