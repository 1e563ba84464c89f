import Foundation
import Testing

/// A worker whose CURVE key the coordinator does not list is told so (with its key and
/// fingerprint), and gets in once the key is added to the list and the coordinator reloads it,
/// without a restart of either. A malformed list on reload keeps the old one.
@Suite("The coordinator's allow-list is reloaded; a refused worker is told", .serialized)
struct AllowListReloadTests {
    @Test("refused key: the worker says so; append it, SIGHUP: the retrying worker registers")
    func refusedThenReloaded() async throws {
        let dir = Harness.tempDir("allow-reload")
        let state = "\(dir)/state"
        for name in ["coord", "good", "late"] {
            #expect(try await Harness.run(["keygen", "\(dir)/\(name)"]).status == 0)
        }
        let list = "\(dir)/authorized.txt"
        try FileManager.default.copyItem(atPath: "\(dir)/good.pub", toPath: list)
        let lateKey = Harness.read("\(dir)/late.pub").trimmingCharacters(in: .whitespacesAndNewlines)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--curve-key", "\(dir)/coord.key",
                "--authorized-keys", list,
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let lateWorker = [
            "worker", "--coordinator", endpoints.workers, "--id", "L",
            "--curve-key", "\(dir)/late.key", "--server-key", "\(dir)/coord.pub",
            "--engine", Harness.testEngine, "--only", "test", "--cache", "\(dir)/L",
        ]

        // With a connect timeout: gives up, saying why rather than "no coordinator answered".
        let gaveUp = try await Harness.run(lateWorker + ["--connect-timeout", "3"], timeout: 30)
        #expect(gaveUp.status != 0)
        #expect(gaveUp.stderr.contains("refused this worker's CURVE key"), "\(gaveUp.stderr)")
        #expect(gaveUp.stderr.contains(lateKey))
        #expect(gaveUp.stderr.contains("fingerprint SHA256:"))
        #expect(gaveUp.stderr.contains("--authorized-keys"))
        #expect(!gaveUp.stderr.contains("no coordinator answered"))

        // Without one: it keeps retrying, and says so once.
        let worker = try Harness.start(lateWorker, log: "\(dir)/L.log")
        defer { Harness.kill9(worker) }
        try await Harness.waitFor("the worker to report the refusal") {
            Harness.read("\(dir)/L.log").contains("keeps retrying")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: list))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("# added later\n\(lateKey)\n".utf8))
        try handle.close()
        kill(coordinator.processIdentifier, SIGHUP)
        try await Harness.waitFor("the coordinator to reload its list") {
            Harness.read("\(dir)/coordinator.log").contains("reloaded the allow-lists on SIGHUP: 2 worker key(s)")
        }
        let store = try Harness.store(state)
        try await Harness.waitFor("the late worker to register") { try store.workers().map(\.id).contains("L") }
        #expect(coordinator.isRunning, "SIGHUP must not end the coordinator")

        // A malformed line on reload (noticed by the file poll): the old list stays, the log says where.
        try "\(lateKey)\nnot a key\n".write(toFile: list, atomically: true, encoding: .utf8)
        try await Harness.waitFor("the coordinator to refuse the malformed list") {
            Harness.read("\(dir)/coordinator.log").contains("kept the previous allow-lists")
        }
        #expect(Harness.read("\(dir)/coordinator.log").contains("\(list):2: 'not a key'"))
        #expect(coordinator.isRunning)
    }

    @Test("a malformed allow-list at start is refused with its file and line")
    func malformedAtStart() async throws {
        let dir = Harness.tempDir("allow-bad")
        #expect(try await Harness.run(["keygen", "\(dir)/coord"]).status == 0)
        try "# workers\nshort\n".write(toFile: "\(dir)/list.txt", atomically: true, encoding: .utf8)
        let out = try await Harness.run(
            [
                "coordinator", "--state", "\(dir)/state", "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--curve-key", "\(dir)/coord.key",
                "--authorized-keys", "\(dir)/list.txt",
            ], timeout: 30)
        #expect(out.status != 0)
        #expect(
            out.stderr.contains("\(dir)/list.txt:2: 'short' in --authorized-keys is not a 40-character Z85 public key"))
    }
}
