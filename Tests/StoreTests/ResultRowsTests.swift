import SweepKit
import Testing

@testable import Store

@Suite("Result rows for the CLI and reports")
struct ResultRowsTests {
    /// resnet and vgg, seeds 0 and 1, methods 2:4 and 4x4: vgg/0 trained, vgg/0/2:4 fine-tuned
    /// with a model artifact, resnet/1 failed twice, its fine-tunes failed as a consequence.
    func populated() throws -> (TempDir, SweepStore) {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        _ = try store.launch(makePlan(seeds: [0, 1], methods: ["4x4", "2:4"]), now: 10)
        var batch = succeed("grid/train/vgg/0", attempt: "a1", at: 11, metrics: ["top1": 0.93])
        batch += succeed(
            "grid/finetune/vgg/0/2:4", attempt: "a2", at: 12, metrics: ["top1": 0.91, "latency_sparse_ms": nil])
        batch += [
            .artifact(sha256: "aa11", bytes: 1234, path: "artifacts/aa11.pt", at: 12),
            .artifact(sha256: "bb22", bytes: 99, path: "/abs/bb22.json", at: 12),
            .taskArtifact(taskId: "grid/finetune/vgg/0/2:4", name: "model", sha256: "aa11"),
            .taskArtifact(taskId: "grid/finetune/vgg/0/2:4", name: "log", sha256: "bb22"),
        ]
        batch += fail("grid/train/resnet/1", attempt: "a3", error: "NaN loss at step 10", final: false, at: 13)
        batch += fail("grid/train/resnet/1", attempt: "a4", error: "CUDA out of memory", final: true, at: 14)
        batch[batch.count - 1] = .taskState(
            taskId: "grid/train/resnet/1", state: .failed,
            error: "failed after 2 attempts", at: 15)
        for method in ["4x4", "2:4"] {
            batch.append(
                .taskState(
                    taskId: "grid/finetune/resnet/1/\(method)", state: .failed,
                    error: "input grid/train/resnet/1 failed", at: 15))
        }
        try store.apply(batch)
        return (dir, store)
    }

    @Test("rows come ordered by stage, model, method, seed with nothing filtered")
    func ordering() throws {
        let (_, store) = try populated()
        let rows = try store.resultRows(sweep: "grid")
        #expect(rows.count == 12)
        #expect(
            rows.map { "\($0.stage) \($0.model!) \($0.method) \($0.seed!)" } == [
                "train resnet dense 0", "train resnet dense 1", "train vgg dense 0", "train vgg dense 1",
                "finetune resnet 2:4 0", "finetune resnet 2:4 1", "finetune resnet 4x4 0", "finetune resnet 4x4 1",
                "finetune vgg 2:4 0", "finetune vgg 2:4 1", "finetune vgg 4x4 0", "finetune vgg 4x4 1",
            ])
        #expect(try store.resultRows(sweep: nil).count == 12)
        #expect(try store.resultRows(sweep: "other").isEmpty)
    }

    @Test("one task by id is the same row the full listing has, attempts, error and artifacts included")
    func oneTask() throws {
        let (_, store) = try populated()
        let all = try store.resultRows(sweep: nil)
        for id in ["grid/finetune/vgg/0/2:4", "grid/train/resnet/1", "grid/finetune/resnet/1/4x4"] {
            let one = try store.resultRows(sweep: nil, task: id)
            #expect(one.count == 1)
            let expected = try #require(all.first { $0.taskId == id })
            #expect(one.first?.taskId == id)
            #expect(one.first?.attempts == expected.attempts)
            #expect(one.first?.error == expected.error)
            #expect(one.first?.artifacts.map(\.sha256) == expected.artifacts.map(\.sha256))
            #expect(one.first?.metrics == expected.metrics)
        }
        #expect(try store.resultRows(sweep: nil, task: "grid/train/none/0").isEmpty)
        #expect(try store.resultRows(sweep: "other", task: "grid/train/resnet/1").isEmpty)
    }

    @Test("model, method=dense, stage and state filters narrow the rows")
    func filters() throws {
        let (_, store) = try populated()
        let vgg = try store.resultRows(sweep: "grid", where: [("model", "vgg")])
        #expect(vgg.count == 6 && vgg.allSatisfy { $0.model == "vgg" })

        // Training tasks have no method parameter: they are the dense baseline.
        let dense = try store.resultRows(sweep: "grid", where: [("method", "dense")])
        #expect(
            dense.map(\.taskId) == [
                "grid/train/resnet/0", "grid/train/resnet/1", "grid/train/vgg/0", "grid/train/vgg/1",
            ])

        let seedOne = try store.resultRows(sweep: "grid", stage: "finetune", where: [("seed", "1"), ("method", "2:4")])
        #expect(seedOne.map(\.taskId) == ["grid/finetune/resnet/1/2:4", "grid/finetune/vgg/1/2:4"])

        let succeeded = try store.resultRows(sweep: "grid", states: [.succeeded])
        #expect(succeeded.map(\.taskId) == ["grid/train/vgg/0", "grid/finetune/vgg/0/2:4"])
        #expect(try store.resultRows(sweep: "grid", states: [.failed]).count == 3)
        #expect(try store.resultRows(sweep: "grid", states: []).isEmpty)
        #expect(try store.resultRows(sweep: "grid", where: [("model", "alexnet")]).isEmpty)
    }

    @Test("a failed task shows its last attempt's error and its attempt count")
    func lastError() throws {
        let (_, store) = try populated()
        let failed = try store.resultRows(sweep: "grid", states: [.failed])
        let train = try #require(failed.first { $0.stage == "train" })
        #expect(train.error == "CUDA out of memory")
        #expect(train.attempts == 2)
        #expect(train.metrics.isEmpty)
        let consequence = try #require(failed.first { $0.stage == "finetune" })
        #expect(consequence.error == "input grid/train/resnet/1 failed")
        #expect(consequence.attempts == 0)
    }

    @Test("a succeeded task carries its metrics, units and artifacts resolved under the root")
    func artifacts() throws {
        let (dir, store) = try populated()
        let rows = try store.resultRows(sweep: "grid", stage: "finetune", states: [.succeeded], artifactRoot: dir.path)
        let row = try #require(rows.first)
        #expect(rows.count == 1)
        #expect(row.error == nil && row.attempts == 1)
        #expect(row.metrics == ["top1": 0.91, "latency_sparse_ms": nil])
        #expect(
            row.artifacts == [
                ArtifactRef(name: "log", sha256: "bb22", bytes: 99, path: "/abs/bb22.json"),
                ArtifactRef(name: "model", sha256: "aa11", bytes: 1234, path: dir.path + "/artifacts/aa11.pt"),
            ])
        #expect(
            try store.resultRows(sweep: "grid", states: [.succeeded]).last?.artifacts.last?.path == "artifacts/aa11.pt")
        #expect(try store.artifactPath(sha256: "aa11") == "artifacts/aa11.pt")
        #expect(try store.artifactPath(sha256: "cc33") == nil)
    }

    @Test("artifactDigests (what a restart reads) are the artifacts of the result rows, by task")
    func artifactDigests() throws {
        let (_, store) = try populated()
        var expected: [String: [ArtifactDigest]] = [:]
        for row in try store.resultRows(sweep: "grid") where !row.artifacts.isEmpty {
            expected[row.taskId] = row.artifacts.map {
                ArtifactDigest(name: $0.name, sha256: $0.sha256, bytes: $0.bytes)
            }
        }
        #expect(!expected.isEmpty)
        #expect(try store.artifactDigests(sweep: "grid") == expected)
        #expect(try store.artifactDigests(sweep: "other").isEmpty)
    }

    @Test("sweep summaries count tasks per state")
    func summaries() throws {
        let (_, store) = try populated()
        let summary = try #require(try store.sweepSummaries().first)
        #expect(summary.name == "grid" && summary.engine == "null" && summary.createdAt == 10 && !summary.cancelled)
        #expect(summary.counts == [.succeeded: 2, .failed: 3, .ready: 2, .pending: 5])
        #expect(summary.total == 12)
    }
}
