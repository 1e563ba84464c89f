import GRDB
import SweepKit
import Testing

@testable import Store

@Suite("Launching a sweep")
struct LaunchTests {
    @Test("a first launch inserts every task with its inputs: ready when it consumes nothing, else pending")
    func firstLaunch() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        let plan = makePlan()
        let summary = try store.launch(plan, now: 10)
        #expect(summary == LaunchSummary(sweep: "grid", new: 4, reused: 0, rerun: 0, total: 4))
        let snapshot = try store.loadSnapshot()
        #expect(snapshot.tasks.map(\.id) == plan.tasks.map(\.id))
        #expect(
            snapshot.tasks.allSatisfy { $0.state == ($0.inputs.isEmpty ? .ready : .pending) && $0.attemptsUsed == 0 })
        #expect(snapshot.tasks.filter { $0.state == .ready }.count == 2)
        let finetune = try #require(snapshot.tasks.first { $0.id == "grid/finetune/vgg/0/2:4" })
        #expect(finetune.inputs == ["train": "grid/train/vgg/0"])
        #expect(finetune.params == ["model": "vgg", "seed": 0, "method": "2:4"])
        #expect(finetune.priority == 5)
        let stored = try #require(try store.plan(sweep: "grid"))
        #expect(stored.context == plan.context && stored.reports == plan.reports && stored.tasks == plan.tasks)
        #expect(try store.plan(sweep: "other") == nil)
    }

    @Test("the tasks are stored once, as rows: plan_json holds the plan without them")
    func tasksStoredOnce() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        let plan = makePlan(models: ["resnet", "vgg", "vit"], seeds: [0, 1])
        _ = try store.launch(plan, now: 10)
        let text = try #require(
            try store.read { db in try String.fetchOne(db, sql: "SELECT plan_json FROM sweeps WHERE name = 'grid'") })
        #expect(try JSONColumns.plan(text, sweep: "grid").tasks.isEmpty)
        #expect(!text.contains("grid/train/resnet/0"))
        // Read back from the rows: the same tasks, in plan order; after a relaunch that drops
        // some, only the latest plan's.
        #expect(try store.plan(sweep: "grid")?.tasks == plan.tasks)
        let smaller = makePlan(models: ["vit", "vgg"], seeds: [1])
        _ = try store.launch(smaller, now: 20)
        #expect(try store.plan(sweep: "grid")?.tasks == smaller.tasks)
        #expect(try store.loadSnapshot().sweeps.allSatisfy { $0.tasks.isEmpty })
    }

    @Test("launching the same plan twice inserts nothing new")
    func sameTwice() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        try store.apply(succeed("grid/train/vgg/0", attempt: "a1", at: 11))
        #expect(
            try store.launch(makePlan(), now: 20) == LaunchSummary(sweep: "grid", new: 0, reused: 4, rerun: 0, total: 4)
        )
        #expect(try store.task("grid/train/vgg/0")?.state == .succeeded)
    }

    @Test("a failed task is rerun by a relaunch, with its attempts and error reset")
    func rerunsFailed() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        try store.apply(
            fail("grid/train/resnet/0", attempt: "a1", error: "CUDA out of memory", final: true, at: 11)
                + [.taskAttemptsUsed(taskId: "grid/train/resnet/0", attemptsUsed: 2)])
        #expect(try store.task("grid/train/resnet/0")?.state == .failed)

        let summary = try store.launch(makePlan(), now: 20)
        #expect(summary == LaunchSummary(sweep: "grid", new: 0, reused: 3, rerun: 1, total: 4))
        let task = try #require(try store.task("grid/train/resnet/0"))
        #expect(task.state == .ready && task.attemptsUsed == 0 && task.error == nil)
        // History survives the rerun.
        #expect(try store.attempts(task: "grid/train/resnet/0").map(\.error) == ["CUDA out of memory"])
    }

    @Test("a plan with one extra task inserts exactly that task")
    func oneExtra() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        var bigger = makePlan()
        bigger.tasks.append(
            PlannedTask(
                id: "grid/finetune/vgg/0/4x4", stage: "finetune",
                params: ["model": "vgg", "seed": 0, "method": "4x4"],
                inputs: ["train": "grid/train/vgg/0"], priority: 5))
        #expect(
            try store.launch(bigger, now: 20) == LaunchSummary(sweep: "grid", new: 1, reused: 4, rerun: 0, total: 5))
        #expect(try store.sweepSummaries().first?.total == 5)
    }

    @Test("tasks a relaunch no longer plans are dropped: unfinished ones cancelled, all hidden")
    func dropsRemoved() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(models: ["resnet", "vgg"]), now: 10)
        try store.apply(
            succeed("grid/train/vgg/0", attempt: "a1", at: 11)
                + [
                    .taskState(taskId: "grid/finetune/vgg/0/2:4", state: .running, error: nil, at: 12),
                    .attemptStarted(attemptId: "a2", taskId: "grid/finetune/vgg/0/2:4", workerId: "w1", at: 12),
                ])

        let summary = try store.launch(makePlan(models: ["resnet"]), now: 20)
        #expect(summary == LaunchSummary(sweep: "grid", new: 0, reused: 2, rerun: 0, total: 2, dropped: 2))
        let snapshot = try store.loadSnapshot()
        #expect(Set(snapshot.tasks.map(\.id)) == ["grid/train/resnet/0", "grid/finetune/resnet/0/2:4"])
        #expect(snapshot.runningAttempts.isEmpty)
        #expect(try store.attempts(task: "grid/finetune/vgg/0/2:4").map(\.outcome) == [.cancelled])
        #expect(try store.resultRows(sweep: "grid").count == 2)
        #expect(try store.countResults(sweep: "grid") == 0)

        // A second launch without them leaves them alone: nothing more is dropped.
        let same = try store.launch(makePlan(models: ["resnet"]), now: 25)
        #expect(same == LaunchSummary(sweep: "grid", new: 0, reused: 2, rerun: 0, total: 2, dropped: 0))
        #expect(try store.attempts(task: "grid/finetune/vgg/0/2:4").map(\.outcome) == [.cancelled])

        // Planning them again brings the succeeded one back as it was and reruns the other.
        let again = try store.launch(makePlan(models: ["resnet", "vgg"]), now: 30)
        #expect(again == LaunchSummary(sweep: "grid", new: 0, reused: 3, rerun: 1, total: 4))
        #expect(try store.countResults(sweep: "grid") == 1)
    }

    @Test("a plan naming another sweep's task is refused, naming both; neither sweep changes")
    func foreignTask() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan("one"), now: 10)
        var forged = makePlan("two")
        forged.tasks[0].id = "one/train/vgg/0"
        #expect {
            try store.launch(forged, now: 20)
        } throws: { "\($0)".contains("lists task one/train/vgg/0, a task of sweep one") }
        #expect(try store.loadSnapshot().tasks.map(\.sweep).allSatisfy { $0 == "one" })
        #expect(try store.sweepSummaries().map(\.name) == ["one"])
    }

    @Test("a launch in parts stores what one launch of the whole plan stores, inputs included")
    func inParts() throws {
        let whole = try TempDir(), parts = try TempDir()
        let a = try SweepStore(path: whole.dbPath), b = try SweepStore(path: parts.dbPath)
        let plan = makePlan(models: ["resnet", "vgg", "vit"], seeds: [0, 1], methods: ["2:4", "4x4"])
        let one = try a.launch(plan, now: 10)
        try b.stageLaunch(session: "s1", sweep: plan.name, first: 0, tasks: Array(plan.tasks[0..<5]))
        try b.stageLaunch(session: "s1", sweep: plan.name, first: 5, tasks: Array(plan.tasks[5...]))
        #expect(try b.sweepSummaries().isEmpty, "staged parts are not a sweep yet")
        let merged = try b.finishLaunch(session: "s1", plan: plan, now: 10)
        #expect(merged == one)
        let (x, y) = (try a.loadSnapshot().tasks, try b.loadSnapshot().tasks)
        #expect(x.map(\.id) == y.map(\.id) && x.map(\.inputs) == y.map(\.inputs) && x.map(\.params) == y.map(\.params))
        #expect(x.map(\.priority) == y.map(\.priority) && x.map(\.state) == y.map(\.state))

        // A part repeating an id of an earlier part is refused, naming it.
        try b.stageLaunch(session: "s2", sweep: plan.name, first: 0, tasks: Array(plan.tasks[0..<3]))
        #expect {
            try b.stageLaunch(session: "s2", sweep: plan.name, first: 3, tasks: [plan.tasks[1]])
        } throws: { "\($0)".contains("lists task \(plan.tasks[1].id) twice") }
    }

    @Test("a relaunch un-cancels the sweep")
    func unCancels() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 10)
        try store.apply(
            [.sweepCancelled(sweep: "grid", cancelled: true, at: 11)]
                + makePlan().tasks.map { .taskState(taskId: $0.id, state: .cancelled, error: "cancelled", at: 11) })
        #expect(try store.loadSnapshot().cancelledSweeps == ["grid"])
        #expect(
            try store.launch(makePlan(), now: 20) == LaunchSummary(sweep: "grid", new: 0, reused: 0, rerun: 4, total: 4)
        )
        #expect(try store.loadSnapshot().cancelledSweeps.isEmpty)
        #expect(try store.sweepSummaries().first?.cancelled == false)
    }

    @Test("a plan listing one task id twice is refused before anything is written")
    func duplicateIds() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        var plan = makePlan()
        plan.tasks.append(plan.tasks[0])
        let error = #expect(throws: StoreError.self) { try store.launch(plan, now: 10) }
        #expect(error?.code == .invalidPlan)
        #expect(try store.sweepSummaries().isEmpty)
    }
}
