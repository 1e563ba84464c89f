import Foundation
import GRDB
import SweepKit
import Synchronization
import Testing

@testable import Store

/// `SweepStore.backup(to:)` against a real database that another connection keeps writing.
@Suite("Online backup")
struct BackupTests {
    /// Tasks each writer transaction finishes: a copy holding a count that is not a multiple of
    /// it would hold half a transaction.
    static let perCommit = 7

    @Test(
        "a backup taken while another connection commits: opens, passes integrity_check, holds one committed state (no torn transaction), is one snapshot (never restarted) and did not stall the writer"
    )
    func concurrentWriter() throws {
        let dir = try TempDir()
        let taskCount = 20_000
        let plan = Self.plan(tasks: taskCount)
        // The writer is its own store (its own DatabasePool: another connection, as the
        // coordinator is another process for `sparsegrid backup`).
        let writerStore = try SweepStore(path: dir.dbPath)
        _ = try writerStore.launch(plan, now: 1)
        try writerStore.apply([.worker(id: "w1", host: "localhost", info: [:], seenAt: 1, state: "idle")])
        let writer = Writer(store: writerStore, tasks: plan.tasks.map(\.id), perCommit: Self.perCommit)
        writer.start()
        defer { writer.stop() }
        try Self.waitUntil { writer.committed >= 20 * Self.perCommit }

        let reader = try SweepStore.openReadOnly(path: dir.dbPath)
        let out = dir.path + "/copy.db"
        let before = writer.committed
        var commitsDuringSteps: [Int] = []
        let summary = try reader.backup(to: out, pagesPerStep: 16) { _, _ in
            commitsDuringSteps.append(writer.committed)
            // Give the writer time between steps, as a big database's steps would.
            usleep(2_000)
        }
        let after = writer.committed
        writer.stop()
        #expect(writer.error == nil, "the writer failed: \(writer.error ?? "")")

        // One snapshot: the page count never changed and the copy never restarted, although
        // the writer committed between the steps.
        let expectedSteps = (summary.pages + 15) / 16
        #expect(summary.steps == expectedSteps, "\(summary.steps) steps for \(summary.pages) pages")
        #expect(after > before, "the writer committed nothing while the backup ran")
        #expect(
            (commitsDuringSteps.last ?? 0) > (commitsDuringSteps.first ?? 0),
            "the writer made no progress between the backup's steps")
        let maxCommit = writer.maxCommitSeconds
        print(
            String(
                format: "backup under a writer: %d pages in %d steps, %.2f s; writer committed %d tasks meanwhile, "
                    + "its slowest commit %.1f ms",
                summary.pages, summary.steps, summary.copySeconds, after - before, maxCommit * 1000))

        // The copy: a file of its own, mode 0600, nothing left beside it.
        var info = stat()
        #expect(lstat(out, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("partial") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")

        var config = Configuration()
        config.readonly = true
        let copy = try DatabaseQueue(path: out, configuration: config)
        let (check, succeeded, attempts, results, mode) = try copy.read { db in
            (
                try String.fetchAll(db, sql: "PRAGMA integrity_check"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE state = 'succeeded'") ?? -1,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attempts WHERE outcome = 'succeeded'") ?? -1,
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM results") ?? -1,
                try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
            )
        }
        try copy.close()
        #expect(check == ["ok"])
        #expect(mode == "delete", "the copy should be a self-contained file, not WAL (\(mode))")
        #expect(succeeded % Self.perCommit == 0, "\(succeeded) succeeded tasks: a transaction was torn")
        #expect(attempts == succeeded && results == succeeded)
        #expect(succeeded >= before && succeeded <= after, "\(succeeded) not within [\(before), \(after)]")
        #expect(summary.tasks == taskCount && summary.results == succeeded && summary.sweeps == 1)

        // The restore path: the copy as a state directory's database opens for writing and
        // gives the scheduler the same committed state.
        let restored = try TempDir()
        try FileManager.default.createDirectory(
            atPath: (restored.dbPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: out, toPath: restored.dbPath)
        let store = try SweepStore(path: restored.dbPath)
        let snapshot = try store.loadSnapshot()
        #expect(snapshot.tasks.count == taskCount)
        #expect(snapshot.tasks.filter { $0.state == .succeeded }.count == succeeded)
        #expect(snapshot.runningAttempts.isEmpty)
    }

    @Test("a backup refuses an existing file or directory and a missing directory, and changes nothing")
    func refusals() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 1)
        let existing = dir.path + "/taken.db"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: existing))

        let exists = #expect(throws: StoreError.self) { try store.backup(to: existing) }
        #expect(exists?.code == .backupRefused)
        #expect(exists?.description.contains(existing) == true)
        #expect(FileManager.default.contents(atPath: existing) == Data("keep me".utf8))

        let isDir = #expect(throws: StoreError.self) { try store.backup(to: dir.path) }
        #expect(isDir?.code == .backupRefused)
        #expect(isDir?.description.contains("is a directory") == true)

        let missing = dir.path + "/no/such/dir/copy.db"
        let noDir = #expect(throws: StoreError.self) { try store.backup(to: missing) }
        #expect(noDir?.code == .backupRefused)
        #expect(noDir?.description.contains("\(dir.path)/no/such/dir") == true)

        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(Set(leftovers) == ["state", "taken.db"])
        // And a fine backup next to them still works.
        let ok = try store.backup(to: dir.path + "/fine.db", pagesPerStep: -1)
        #expect(ok.steps == 1 && ok.tasks == makePlan().tasks.count)
    }

    @Test(
        "integrity_check's false NULL report (SQLite 3.40-3.41, WITHOUT ROWID) is ignored only when no row holds a NULL"
    )
    func falseNullReports() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(), now: 1)
        try store.apply(fail("grid/train/vgg/0", attempt: "a1", error: "boom", final: false, at: 2))
        let verdicts = try store.pool.read { db in
            try [
                // task_inputs has rows, none with a NULL: the report is false.
                "NULL value in task_inputs.input_task_id",
                // tasks.error is NULL in most rows: a report about it is not ignored.
                "NULL value in tasks.error",
                "NULL value in tasks.no_such_column",
                "row 3 missing from index attempts_on_task",
                "NULL value in tasks.id; DROP TABLE tasks",
            ].map { try SweepStore.isFalseNullReport($0, db) }
        }
        #expect(verdicts == [true, false, false, false, false])
    }

    static func plan(tasks count: Int) -> SweepPlan {
        let tasks = (0..<count).map { i in
            PlannedTask(
                id: String(format: "task-%06d", i), stage: "train",
                params: ["model": "resnet", "seed": .number(Double(i)), "method": "2:4"], inputs: [:], priority: 1)
        }
        return SweepPlan(
            name: "big", engine: "null", context: [:], tasks: tasks, retries: 0, device: "any", reports: [],
            specText: "")
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    static func waitUntil(timeout: Double = 60, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() > deadline { throw StoreError(.notFound, "timed out waiting") }
            usleep(5_000)
        }
    }
}

/// A thread that finishes `perCommit` tasks per transaction (attempt started and ended, result,
/// task state) until stopped or out of tasks, counting what it committed.
final class Writer: @unchecked Sendable {
    private let store: SweepStore
    private let tasks: [String]
    private let perCommit: Int
    private let done = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let slowestNanos = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let failure = Mutex<String?>(nil)
    private var thread: Thread?

    init(store: SweepStore, tasks: [String], perCommit: Int) {
        self.store = store
        self.tasks = tasks
        self.perCommit = perCommit
    }

    var committed: Int { done.load(ordering: .acquiring) }
    var error: String? { failure.withLock { $0 } }
    var maxCommitSeconds: Double { Double(slowestNanos.load(ordering: .relaxed)) / 1e9 }

    func start() {
        let thread = Thread { [self] in
            var next = 0
            while !stopped.load(ordering: .relaxed), next + perCommit <= tasks.count {
                var batch: [StoreMutation] = []
                for task in tasks[next..<(next + perCommit)] {
                    let t = Double(next)
                    batch += succeed(task, attempt: "att-\(task)", at: t)
                }
                let began = DispatchTime.now().uptimeNanoseconds
                do {
                    try store.apply(batch)
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    break
                }
                let took = Int(DispatchTime.now().uptimeNanoseconds - began)
                if took > slowestNanos.load(ordering: .relaxed) { slowestNanos.store(took, ordering: .relaxed) }
                next += perCommit
                done.store(next, ordering: .releasing)
            }
            finished.signal()
        }
        self.thread = thread
        thread.start()
    }

    /// Stops the thread and waits for it (idempotent).
    func stop() {
        guard thread != nil else { return }
        stopped.store(true, ordering: .relaxed)
        finished.wait()
        thread = nil
    }
}

/// The figure the docs quote: how long a backup of a big state database takes, and what it
/// costs a writer committing meanwhile. Prints the figures; checks the copy.
@Suite("Online backup of a big database")
struct BackupSizeTests {
    @Test("100,000 finished tasks: the backup's duration, and the writer's slowest commit with and without it")
    func hundredThousandTasks() throws {
        let dir = try TempDir()
        let finished = 100_000
        let plan = BackupTests.plan(tasks: finished + 20_000)
        let store = try SweepStore(path: dir.dbPath)
        var clock = ContinuousClock.now
        _ = try store.launch(plan, now: 1)
        var batch: [StoreMutation] = []
        for (i, task) in plan.tasks.prefix(finished).enumerated() {
            batch += succeed(task.id, attempt: "a-\(i)", at: Double(i))
            batch.append(
                .event(
                    at: Double(i), kind: "task", sweep: "big", taskId: task.id, workerId: "w1",
                    message: "task \(task.id) succeeded on w1"))
            if batch.count >= 600 {
                try store.apply(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        try store.apply(batch)
        let fillSeconds = BackupTests.seconds(since: clock)
        let size = (try FileManager.default.attributesOfItem(atPath: dir.dbPath)[.size] as? Int) ?? 0

        // The writer's commits alone, then with a backup running.
        let remaining = plan.tasks.suffix(20_000).map(\.id)
        let writer = Writer(store: store, tasks: remaining, perCommit: 5)
        writer.start()
        defer { writer.stop() }
        try BackupTests.waitUntil { writer.committed >= 2_000 }
        let baseline = writer.maxCommitSeconds
        let reader = try SweepStore.openReadOnly(path: dir.dbPath)
        let before = writer.committed
        clock = ContinuousClock.now
        var slowestDuringCopy = 0.0
        let summary = try reader.backup(to: dir.path + "/big-copy.db") { copied, total in
            if copied == total { slowestDuringCopy = writer.maxCommitSeconds }
        }
        let backupSeconds = BackupTests.seconds(since: clock)
        let during = writer.committed - before
        let slowest = writer.maxCommitSeconds
        writer.stop()
        #expect(writer.error == nil)
        print(
            String(
                format: "backup of %d finished tasks (%.0f MiB database, filled in %.1f s): %.2f s in all "
                    + "(copy %.2f s, %d pages in %d steps); the writer committed %d tasks meanwhile; its slowest "
                    + "commit %.1f ms before the backup, %.1f ms including the copy, %.1f ms including the "
                    + "copy's integrity check and fsync",
                finished, Double(size) / 1_048_576, fillSeconds, backupSeconds, summary.copySeconds, summary.pages,
                summary.steps, during, baseline * 1000, slowestDuringCopy * 1000, slowest * 1000))
        #expect(summary.tasks == plan.tasks.count)
        #expect(summary.results >= finished + before && summary.results <= finished + before + during)
        #expect(
            summary.steps == (summary.pages + Int(SweepStore.backupPagesPerStep) - 1)
                / Int(SweepStore.backupPagesPerStep))
    }
}
