import Foundation
import GRDB
import SweepKit
import Testing

@testable import Store

@Suite("Read-only stores for the CLI")
struct ReadOnlyTests {
    @Test("opening a missing database read-only says how to create one")
    func missing() throws {
        let dir = try TempDir()
        let error = #expect(throws: StoreError.self) { try SweepStore.openReadOnly(path: dir.dbPath) }
        #expect(
            error
                == StoreError(
                    .noState,
                    "no sparsegrid state at \(dir.dbPath): run `sparsegrid run SPEC` or pass --state DIR"))
        #expect(!FileManager.default.fileExists(atPath: dir.dbPath))
    }

    @Test("a read-only store rejects every write, and SQLite itself refuses one")
    func rejectsWrites() throws {
        let dir = try TempDir()
        let writer = try SweepStore(path: dir.dbPath)
        _ = try writer.launch(makePlan(), now: 10)
        let reader = try SweepStore.openReadOnly(path: dir.dbPath)
        #expect(reader.isReadOnly)

        let apply = #expect(throws: StoreError.self) {
            try reader.apply([.event(at: 1, kind: "x", sweep: nil, taskId: nil, workerId: nil, message: "x")])
        }
        #expect(apply?.code == .readOnly)
        #expect(apply?.description.contains(dir.dbPath) == true)
        #expect(throws: StoreError.self) { try reader.launch(makePlan(), now: 20) }
        // Below the store's own guard, the connection is opened read-only.
        #expect(throws: DatabaseError.self) {
            try reader.pool.writeWithoutTransaction { try $0.execute(sql: "DELETE FROM events") }
        }
        #expect(try writer.recentEvents(limit: 10).count == 1)
        #expect(try reader.sweepSummaries().first?.total == 4)
    }

    @Test("a reader opens and reads a database whose writer has closed")
    func readsAfterWriterClosed() throws {
        let dir = try TempDir()
        do {
            let writer = try SweepStore(path: dir.dbPath)
            _ = try writer.launch(makePlan(), now: 10)
            try writer.apply(succeed("grid/train/vgg/0", attempt: "a1", at: 11))
        }
        let reader = try SweepStore.openReadOnly(path: dir.dbPath)
        #expect(try reader.countResults(sweep: "grid") == 1)
        #expect(try reader.resultRows(sweep: "grid", states: [.succeeded]).map(\.taskId) == ["grid/train/vgg/0"])
        #expect(try reader.plan(sweep: "grid")?.tasks.count == 4)
    }

    @Test("a reader sees the last committed state while the writer is inside a transaction")
    func readsDuringWrite() throws {
        let dir = try TempDir()
        let writer = try SweepStore(path: dir.dbPath)
        _ = try writer.launch(makePlan(), now: 10)
        let reader = try SweepStore.openReadOnly(path: dir.dbPath)

        let seenInside = try writer.pool.write { db -> [TaskState: Int] in
            try db.execute(sql: "UPDATE tasks SET state = 'running'")
            // The write lock is held and the change is uncommitted: a WAL reader neither
            // waits nor sees it.
            return try reader.sweepSummaries().first?.counts ?? [:]
        }
        #expect(seenInside == [.ready: 2, .pending: 2])
        #expect(try reader.sweepSummaries().first?.counts == [.running: 4])
    }

    @Test("reads keep working while another thread writes batches")
    func concurrentReadsAndWrites() async throws {
        let dir = try TempDir()
        let writer = try SweepStore(path: dir.dbPath)
        _ = try writer.launch(makePlan(), now: 10)
        let reader = try SweepStore.openReadOnly(path: dir.dbPath)

        let batches = 200
        let writing = Thread {
            for i in 0..<batches {
                try! writer.apply(
                    (0..<20).map { j in
                        .event(
                            at: Double(i), kind: "tick", sweep: "grid", taskId: nil, workerId: nil, message: "\(i).\(j)"
                        )
                    })
            }
        }
        writing.start()
        var counts: [Int] = []
        while counts.last != batches * 20 + 1 {
            counts.append(try reader.recentEvents(limit: 100_000).count)
            #expect(counts.last! % 20 == 1, "a reader saw half a batch")
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        #expect(counts == counts.sorted())
    }
}
