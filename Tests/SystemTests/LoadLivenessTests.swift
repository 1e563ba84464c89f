import Foundation
import Store
import Testing

/// Fault injected: a worker whose engines keep every core busy while four more busy processes
/// run on this 2-core machine, for 20 s, with heartbeats every second and the default dead
/// interval (30 s). Proves: a busy worker is not declared dead, none of its attempts is lost or
/// rerun, and each task succeeds with exactly one attempt. (Before, the 5 s default declared
/// such a worker dead on a loaded host and reran its tasks.)
@Suite("A worker under CPU load stays alive", .serialized)
struct LoadLivenessTests {
    @Test("two CPU-bound engines plus four busy processes for 20 s: no worker declared dead, no attempt lost")
    func busyWorkerStaysAlive() async throws {
        let dir = Harness.tempDir("load")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Harness.testSpec(name: "busy", xs: [1, 2], trainParams: "spin: 20"), in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--slots", "2",
                "--cache", "\(dir)/W", "--engine", Harness.testEngine, "--only", "test",
            ],
            log: "\(dir)/W.log")
        defer { Harness.kill9(worker) }
        // Four busy loops beside the engines, for the length of the tasks.
        var spinners: [Process] = []
        for _ in 0..<4 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", "import time\nt=time.time()\nwhile time.time()-t<22: pass"]
            try p.run()
            spinners.append(p)
        }
        defer { for p in spinners where p.isRunning { p.terminate() } }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("both tasks to finish", timeout: 120) {
            let rows = try store.resultRows(sweep: "busy")
            return rows.count == 2 && rows.allSatisfy { $0.state == .succeeded }
        }
        #expect(try store.workers().first { $0.id == "W" }?.state == "alive")
        for row in try store.resultRows(sweep: "busy") {
            let attempts = try store.attempts(task: row.taskId)
            #expect(attempts.count == 1, "\(attempts.map { "\($0.outcome.rawValue) \($0.error ?? "")" })")
        }
        #expect(!Harness.read("\(dir)/coordinator.log").contains("went silent"))
    }
}
