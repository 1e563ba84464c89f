import SweepKit
import Testing

@testable import Store

@Suite("Result rows carry the winning attempt's times")
struct ResultTimesTests {
    @Test("start and finish come from the attempt whose result is stored, read back from the SQLite file")
    func winningAttempt() throws {
        let dir = try TempDir()
        do {
            let store = try SweepStore(path: dir.dbPath)
            _ = try store.launch(makePlan(seeds: [0]), now: 10)
            // resnet/0: a failed attempt 100–101, then the winning one 200–201.
            var batch = fail("grid/train/resnet/0", attempt: "a1", error: "NaN loss", final: false, at: 100)
            batch += succeed("grid/train/resnet/0", attempt: "a2", at: 200)
            // vgg/0 failed for good: no result, no times.
            batch += fail("grid/train/vgg/0", attempt: "a3", error: "boom", final: true, at: 300)
            try store.apply(batch)
        }
        // A fresh connection to the file, as `sparsegrid report` opens it.
        let rows = try SweepStore(path: dir.dbPath).resultRows(sweep: "grid", stage: "train")
        let resnet = try #require(rows.first { $0.taskId == "grid/train/resnet/0" })
        #expect(resnet.startedAt == 200)
        #expect(resnet.finishedAt == 201)
        #expect(resnet.attempts == 2)
        let vgg = try #require(rows.first { $0.taskId == "grid/train/vgg/0" })
        #expect(vgg.startedAt == nil && vgg.finishedAt == nil)
        let pending = try store(dir).resultRows(sweep: "grid", stage: "finetune")
        #expect(pending.allSatisfy { $0.startedAt == nil && $0.finishedAt == nil })
    }

    private func store(_ dir: TempDir) throws -> SweepStore { try SweepStore(path: dir.dbPath) }
}
