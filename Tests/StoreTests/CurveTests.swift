import Foundation
import GRDB
import SweepKit
import Testing

@testable import Store

@Suite("Learning curves: stored progress points per attempt")
struct CurveTests {
    static let task = "grid/train/resnet/0"
    static let other = "grid/train/vgg/0"

    /// A store with the grid plan and three attempts: a1 and a2 of `task` (a1 started first),
    /// b1 of `other`.
    func storeWithAttempts(_ path: String) throws -> SweepStore {
        let store = try SweepStore(path: path)
        _ = try store.launch(makePlan(), now: 10)
        try store.apply([
            .attemptStarted(attemptId: "a1", taskId: Self.task, workerId: "w1", at: 11),
            .attemptStarted(attemptId: "b1", taskId: Self.other, workerId: "w2", at: 12),
            .attemptStarted(attemptId: "a2", taskId: Self.task, workerId: "w3", at: 13),
        ])
        return store
    }

    func point(_ epoch: Int, loss: Double? = nil, at: Double) -> CurvePoint {
        CurvePoint(epoch: epoch, epochs: 3, step: 32 * epoch, loss: loss, trainAcc: 10, testAcc: 20, lr: 0.01, at: at)
    }

    @Test("points come back per attempt in start order, in arrival order, with absent fields nil")
    func storedAndGrouped() throws {
        let dir = try TempDir()
        let store = try storeWithAttempts(dir.dbPath)
        // a2's points arrive before a1's: attempts are still listed in start order.
        try store.apply([
            .curvePoint(attemptId: "a2", point: point(1, loss: 2.5, at: 20)),
            .curvePoint(attemptId: "b1", point: point(1, loss: 9, at: 20)),
        ])
        try store.apply([
            .curvePoint(attemptId: "a1", point: point(2, loss: 1.5, at: 21)),
            // Arrival order, not epoch order: a repeat and a lower epoch stay as they came.
            .curvePoint(attemptId: "a1", point: point(1, loss: nil, at: 22)),
            .curvePoint(attemptId: "a1", point: CurvePoint(valAcc: 33.5, at: 23)),
        ])
        let curves = try store.curves(task: Self.task)
        #expect(curves.map(\.attemptId) == ["a1", "a2"])
        #expect(curves.map(\.workerId) == ["w1", "w3"])
        #expect(curves.map(\.dropped) == [0, 0])
        #expect(
            curves.first?.points == [
                point(2, loss: 1.5, at: 21), point(1, loss: nil, at: 22), CurvePoint(valAcc: 33.5, at: 23),
            ])
        #expect(curves.last?.points == [point(1, loss: 2.5, at: 20)])
        #expect(try store.curves(task: Self.other).map(\.points) == [[point(1, loss: 9, at: 20)]])
        // An attempt without points, or a task without attempts, has no entry.
        try store.apply([.attemptStarted(attemptId: "c1", taskId: "grid/finetune/vgg/0/2:4", workerId: "w1", at: 30)])
        #expect(try store.curves(task: "grid/finetune/vgg/0/2:4").isEmpty)
        #expect(try store.curves(task: "grid/finetune/resnet/0/2:4").isEmpty)
        #expect(try store.curves(task: "no such task").isEmpty)
    }

    @Test("at most 1000 points per attempt: the first ones are kept, later ones counted as dropped")
    func capped() throws {
        let dir = try TempDir()
        let store = try storeWithAttempts(dir.dbPath)
        // In several batches, as the coordinator's loop commits them.
        for batch in stride(from: 0, to: 1005, by: 250) {
            try store.apply(
                (batch..<min(batch + 250, 1005)).map {
                    .curvePoint(attemptId: "a1", point: CurvePoint(step: $0, at: Double($0)))
                })
        }
        try store.apply([.curvePoint(attemptId: "a2", point: CurvePoint(step: 0, at: 0))])
        let curves = try store.curves(task: Self.task)
        #expect(curves.count == 2)
        #expect(curves.first?.points.count == SweepStore.maxCurvePoints)
        #expect(curves.first?.points.map(\.step) == Array(0..<1000))
        #expect(curves.first?.dropped == 5)
        // The cap is per attempt: a2 still stores.
        #expect(curves.last?.points.count == 1)
        #expect(curves.last?.dropped == 0)
        let (rows, dropped) = try store.pool.read { db in
            (
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM curve_points WHERE attempt_id = 'a1'"),
                try Int.fetchOne(db, sql: "SELECT dropped FROM curve_drops WHERE attempt_id = 'a1'")
            )
        }
        #expect(rows == 1000)
        #expect(dropped == 5)
    }

    @Test("curves survive reopening the database, and the cap counts the points stored before")
    func surviveReopen() throws {
        let dir = try TempDir()
        do {
            let store = try storeWithAttempts(dir.dbPath)
            try store.apply(
                (0..<999).map { .curvePoint(attemptId: "a1", point: CurvePoint(step: $0, at: Double($0))) } + [
                    .curvePoint(attemptId: "a2", point: point(1, loss: 0.5, at: 1_764_530_101.2))
                ])
        }
        let reopened = try SweepStore(path: dir.dbPath)
        #expect(try reopened.curves(task: Self.task).map(\.points.count) == [999, 1])
        #expect(try reopened.curves(task: Self.task).last?.points == [point(1, loss: 0.5, at: 1_764_530_101.2)])
        try reopened.apply([
            .curvePoint(attemptId: "a1", point: CurvePoint(step: 999, at: 999)),
            .curvePoint(attemptId: "a1", point: CurvePoint(step: 1000, at: 1000)),
        ])
        let readOnly = try SweepStore.openReadOnly(path: dir.dbPath)
        let a1 = try #require(readOnly.curves(task: Self.task).first)
        #expect(a1.points.count == 1000)
        #expect(a1.points.last?.step == 999)
        #expect(a1.dropped == 1)
    }

    @Test("a database of the previous schema (v1 only) is upgraded, its data kept, and then stores curves")
    func migratesFromV1() throws {
        let dir = try TempDir()
        let path = dir.path + "/old.db"
        let migrator = Schema.migrator
        let v1 = try #require(migrator.migrations.first)
        #expect(migrator.migrations.count == 3)
        do {
            // What an earlier build wrote: only the v1 migration, and rows in its tables.
            let old = try DatabaseQueue(path: path)
            try migrator.migrate(old, upTo: v1)
            try old.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO sweeps (name, engine, spec_text, plan_json, retries, device, created_at, updated_at)
                        VALUES ('old', 'null', 'name: old', '{}', 1, 'cpu', 1, 1);
                        INSERT INTO tasks (id, sweep, stage, params_json, priority, state, ordinal, created_at, updated_at)
                        VALUES ('t-old', 'old', 'train', '{}', 1, 'running', 0, 1, 1);
                        INSERT INTO attempts (id, task_id, worker_id, started_at, outcome)
                        VALUES ('a-old', 't-old', 'w-old', 2, 'running');
                        """)
            }
            try old.close()
        }
        // A read-only open refuses the old schema; the coordinator's writable open upgrades it.
        #expect(throws: StoreError.self) { try SweepStore.openReadOnly(path: path) }
        let store = try SweepStore(path: path)
        let (applied, tables) = try store.pool.read { db in
            (
                try migrator.appliedIdentifiers(db),
                Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
            )
        }
        #expect(applied == Set(migrator.migrations))
        #expect(tables.isSuperset(of: ["curve_points", "curve_drops", "attempts", "metrics"]))
        #expect(try store.attempts(task: "t-old").map(\.id) == ["a-old"])
        #expect(try store.curves(task: "t-old").isEmpty)
        try store.apply([.curvePoint(attemptId: "a-old", point: point(1, loss: 1, at: 3))])
        #expect(try store.curves(task: "t-old").map(\.points) == [[point(1, loss: 1, at: 3)]])
        #expect(try SweepStore.openReadOnly(path: path).curves(task: "t-old").first?.workerId == "w-old")
    }
}
