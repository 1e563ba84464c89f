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
        #expect(migrations.count == 2)
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
}
