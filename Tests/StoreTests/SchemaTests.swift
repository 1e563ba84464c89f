import Foundation
import GRDB
import SweepKit
import Testing

@testable import Store

@Suite("Schema and migrations")
struct SchemaTests {
    @Test("a new store creates its directory, every table, and WAL mode")
    func createsSchema() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        #expect(FileManager.default.fileExists(atPath: dir.dbPath))
        let (tables, journal) = try store.pool.read { db in
            (
                Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")),
                try String.fetchOne(db, sql: "PRAGMA journal_mode")
            )
        }
        for table in [
            "sweeps", "tasks", "task_inputs", "attempts", "workers", "metrics", "results",
            "artifacts", "task_artifacts", "events", "curve_points", "curve_drops",
        ] {
            #expect(tables.contains(table), "missing table \(table)")
        }
        #expect(journal == "wal")
    }

    @Test("reopening an existing store keeps its data and applies no migration twice")
    func reopens() throws {
        let dir = try TempDir()
        do {
            let store = try SweepStore(path: dir.dbPath)
            _ = try store.launch(makePlan(), now: 100)
        }
        let reopened = try SweepStore(path: dir.dbPath)
        let migrations = try reopened.pool.read { try Schema.migrator.completedMigrations($0) }
        #expect(migrations.count == 3)
        #expect(try reopened.sweepSummaries().map(\.total) == [4])
        #expect(try reopened.launch(makePlan(), now: 200).new == 0)
    }

    @Test("a file that is not a database is refused with a sentence naming it")
    func refusesGarbage() throws {
        let dir = try TempDir()
        let path = dir.path + "/not-a-db"
        try Data("hello, this is not sqlite at all, definitely not".utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StoreError.self) { try SweepStore(path: path) }
        #expect(error?.code == .cannotOpen)
        #expect(error?.description.contains(path) == true)
    }

    @Test("v3 on a v2 store: attempts gain device and co-tenancy columns, NULL (not recorded) for old rows")
    func migratesV2ToV3() throws {
        let dir = try TempDir()
        try FileManager.default.createDirectory(
            atPath: (dir.dbPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // A state directory as a build before v3 left it, with a finished attempt in it.
        do {
            let pool = try DatabasePool(path: dir.dbPath)
            try Schema.migrator.migrate(pool, upTo: "v2: curve_points, curve_drops")
            let columns = try pool.read { try $0.columns(in: "attempts").map(\.name) }
            #expect(!columns.contains("device"))
            try pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO sweeps (name, engine, spec_text, plan_json, retries, device, created_at, updated_at)
                        VALUES ('old', 'null', '', '{}', 0, 'any', 1, 1);
                        INSERT INTO tasks (id, sweep, stage, params_json, priority, state, ordinal, created_at, updated_at)
                        VALUES ('t-old', 'old', 'train', '{}', 1, 'succeeded', 0, 1, 1);
                        INSERT INTO attempts (id, task_id, worker_id, started_at, ended_at, outcome)
                        VALUES ('a-old', 't-old', 'w1', 1, 2, 'succeeded');
                        """)
            }
        }
        let store = try SweepStore(path: dir.dbPath)
        let migrations = try store.pool.read { try Schema.migrator.completedMigrations($0) }
        #expect(migrations.last?.hasPrefix("v3: ") == true)
        let old = try store.pool.read { db in
            try Row.fetchOne(
                db, sql: "SELECT device, cotenants_at_once, cotenants_json FROM attempts WHERE id = 'a-old'")
        }
        let oldValues = try #require(old).databaseValues
        #expect(oldValues.count == 3 && oldValues.allSatisfy(\.isNull))

        // A new result records where it ran and who shared the device; results show it.
        let plan = makePlan()
        _ = try store.launch(plan, now: 10)
        let shared = plan.tasks[0].id, alone = plan.tasks[1].id, unknown = plan.tasks[2].id
        try store.apply(
            succeed(shared, attempt: "a1", at: 20) + succeed(alone, attempt: "a2", at: 20)
                + succeed(unknown, attempt: "a3", at: 20) + [
                    .attemptDevice(attemptId: "a1", device: "cuda:0", atOnce: 2, coTenants: [alone]),
                    .attemptDevice(attemptId: "a2", device: "cuda:1", atOnce: 1, coTenants: []),
                ])
        let rows = Dictionary(uniqueKeysWithValues: try store.resultRows(sweep: plan.name).map { ($0.taskId, $0) })
        #expect(rows[shared]?.device == "cuda:0")
        #expect(rows[shared]?.tasksAtOnce == 2)
        #expect(rows[shared]?.coTenants == [alone])
        #expect(rows[shared]?.measuredShared == true)
        #expect(rows[alone]?.coTenants == [] && rows[alone]?.measuredShared == false)
        #expect(rows[unknown]?.device == nil && rows[unknown]?.tasksAtOnce == nil && rows[unknown]?.coTenants == nil)
        #expect(rows[unknown]?.measuredShared == false)

        // At most `maxCoTenants` ids are stored, whatever a caller passes.
        try store.apply([
            .attemptDevice(
                attemptId: "a3", device: "cpu", atOnce: 200, coTenants: (0..<200).map { "t\($0)" })
        ])
        #expect(try store.resultRows(sweep: plan.name).first { $0.taskId == unknown }?.coTenants?.count == 64)
    }
}
