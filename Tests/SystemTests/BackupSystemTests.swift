import Foundation
import GRDB
import Store
import Testing

/// `sparsegrid backup` against a live coordinator, and the documented restore: the
/// coordinator killed, its database replaced by the backup (no -wal/-shm), a new coordinator
/// started on the state directory finishes the sweep.
@Suite("Backup and restore with a live coordinator", .serialized)
struct BackupSystemTests {
    @Test(
        "backup mid-sweep exits 0; restoring it (kill, replace the database, restart) finishes the sweep with every task succeeded exactly once, and `results` agrees"
    )
    func backupAndRestore() async throws {
        let dir = Harness.tempDir("backup")
        let coordinator = try await CoordinatorUnderTest(dir: dir, heartbeat: 0.2, deadAfter: 1, retryBackoff: 0.05)
        defer { coordinator.stop() }
        let worker = try coordinator.startWorker(id: "W", slots: 2, testEngine: true)
        defer { Harness.kill9(worker) }
        let xs = Array(1...10)
        let total = xs.count * 2
        // train tasks hand a checkpoint to their finetune task over the artifact socket.
        let spec = try Harness.writeSpec(
            Harness.testSpec(
                name: "saved", xs: xs, trainParams: "sleep: 0.3, artifact_bytes: 2000", finetune: "sleep: 0.2",
                retries: 3),
            in: dir)
        try await coordinator.launch(spec)
        let state = coordinator.state
        let database = "\(state)/sparsegrid.db"
        try await Harness.waitFor("a few tasks to succeed", timeout: 60) { try Self.succeeded(in: database) >= 4 }

        let backups = "\(dir)/backups"
        try FileManager.default.createDirectory(atPath: backups, withIntermediateDirectories: true)
        let out = "\(backups)/saved.db"
        let backup = try await Harness.run(["backup", "--state", state, out], timeout: 60)
        #expect(backup.status == 0, "backup: \(backup.stdout) \(backup.stderr)")
        #expect(backup.stdout.contains("integrity ok"), "\(backup.stdout)")
        var info = stat()
        #expect(lstat(out, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: backups) == ["saved.db"])
        // The backup is a plain database: readable where it is, with no -wal beside it.
        let savedCount = try Self.succeeded(in: out)
        #expect(savedCount >= 4 && savedCount < total, "the backup holds \(savedCount) of \(total) finished")

        // Let more tasks finish after the backup: they are lost by the restore and run again.
        try await Harness.waitFor("tasks to finish after the backup", timeout: 60) {
            try Self.succeeded(in: database) >= min(total, savedCount + 3)
        }
        let finishedAtKill = try Self.succeeded(in: database)
        await coordinator.kill9()
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: "\(state)/sparsegrid.db\(suffix)")
        }
        try FileManager.default.copyItem(atPath: out, toPath: "\(state)/sparsegrid.db")
        #expect(try Self.succeeded(in: database) == savedCount, "the restored database is the backup")
        try await coordinator.restart()

        try await Harness.waitFor("the sweep to finish after the restore", timeout: 120) {
            try Self.succeeded(in: database) == total
        }
        // Settle: nothing left running (a restored attempt whose worker finished it before the
        // restore ends as lost once the worker's hello does not list it).
        try await Harness.waitFor("no attempt left running", timeout: 30) {
            try SQL.int(state, "SELECT COUNT(*) FROM attempts WHERE outcome = 'running'") == 0
        }
        let lost = try SQL.int(state, "SELECT COUNT(*) FROM attempts WHERE outcome = 'lost'")
        print(
            "backup/restore: the backup held \(savedCount) of \(total) tasks finished, \(finishedAtKill) were when "
                + "the coordinator was killed; after the restore all \(total) finished (\(lost) restored attempt(s) lost)"
        )
        let notOnce = try SQL.strings(
            state,
            """
            SELECT t.id FROM tasks t WHERE t.sweep = 'saved' AND
              (SELECT COUNT(*) FROM attempts a WHERE a.task_id = t.id AND a.outcome = 'succeeded') != 1
            """)
        #expect(notOnce.isEmpty, "tasks without exactly one succeeded attempt: \(notOnce)")
        let store = try Harness.store(state)
        for task in try store.resultRows(sweep: "saved") {
            let wins = try store.attempts(task: task.taskId).filter { $0.outcome == .succeeded }
            #expect(wins.count == 1, "task \(task.taskId): \(wins.count) succeeded attempts")
        }
        let results = try await Harness.run(["results", "saved", "--state", state, "--format", "json"])
        #expect(results.status == 0, "\(results.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(results.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == total)
        #expect(rows.allSatisfy { $0["state"] as? String == "succeeded" }, "\(rows.prefix(2))")
        #expect(
            try SQL.int(
                state, "SELECT COUNT(*) FROM results r JOIN tasks t ON t.id = r.task_id WHERE t.sweep = 'saved'")
                == total)
        await Harness.stop(worker)
    }

    @Test("backup refuses an existing OUT and a missing state directory or database, naming them, and writes nothing")
    func refusals() async throws {
        let dir = Harness.tempDir("backup-refusals")
        let missing = "\(dir)/nowhere"
        let noDir = try await Harness.run(["backup", "--state", missing, "\(dir)/a.db"])
        #expect(noDir.status == 1)
        #expect(noDir.stderr.contains(missing) && noDir.stderr.contains("sparsegrid coordinator"), "\(noDir.stderr)")

        let empty = "\(dir)/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let noDatabase = try await Harness.run(["backup", "--state", empty, "\(dir)/a.db"])
        #expect(noDatabase.status == 1)
        #expect(noDatabase.stderr.contains("\(empty)/sparsegrid.db"), "\(noDatabase.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/a.db"))

        let state = "\(dir)/state"
        _ = try SweepStore(path: "\(state)/sparsegrid.db")
        let taken = "\(dir)/taken.db"
        try Data("precious".utf8).write(to: URL(fileURLWithPath: taken))
        let exists = try await Harness.run(["backup", "--state", state, taken])
        #expect(exists.status == 1)
        #expect(exists.stderr.contains("\(taken) exists"), "\(exists.stderr)")
        #expect(FileManager.default.contents(atPath: taken) == Data("precious".utf8))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == ["empty", "state", "taken.db"])

        let fine = try await Harness.run(["backup", "--state", state, "\(dir)/fine.db"])
        #expect(fine.status == 0, "\(fine.stderr)")
    }

    /// Succeeded tasks of sweep `saved` in the database file at `path`, read-only.
    static func succeeded(in path: String) throws -> Int {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: config)
        defer { try? queue.close() }
        return try queue.read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM tasks WHERE sweep = 'saved' AND state = 'succeeded'") ?? 0
        }
    }
}
