import Foundation
import Store
import Testing

/// Faults injected: SIGTERM and SIGINT to a coordinator and a worker mid-sweep. Proves that
/// both run as services that shut down gracefully: each exits by itself (status 0) within a
/// few seconds, the worker says bye (recorded `left`, not `dead`), the coordinator removes its
/// endpoint file, and a restarted coordinator finishes the sweep.
@Suite("Coordinator and worker stop gracefully on SIGTERM/SIGINT", .serialized)
struct ShutdownTests {
    @Test("SIGTERM to a worker: it says bye and exits 0; SIGINT to the coordinator: it exits 0 and a restart finishes")
    func gracefulStops() async throws {
        let dir = Harness.tempDir("shutdown")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "calm", xs: [1, 2, 3, 4], trainParams: "sleep: 1"),
            in: dir)
        let coordinatorArgs = [
            "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
            "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "2",
        ]
        let coordinator = try Harness.start(coordinatorArgs, log: "\(dir)/coordinator-1.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache",
                "\(dir)/W", "--engine", Harness.testEngine, "--only", "test",
            ],
            log: "\(dir)/W.log")
        defer { Harness.kill9(worker) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("a task to run") { try store.workers().contains { $0.id == "W" } }

        let stopped = Date()
        await Harness.stop(worker, signal: SIGTERM)
        #expect(worker.terminationStatus == 0, "\(Harness.read("\(dir)/W.log"))")
        #expect(Date().timeIntervalSince(stopped) < 8)
        try await Harness.waitFor("the worker to be recorded as left") {
            try store.workers().first { $0.id == "W" }?.state == "left"
        }

        await Harness.stop(coordinator, signal: SIGINT)
        #expect(coordinator.terminationStatus == 0, "\(Harness.read("\(dir)/coordinator-1.log"))")
        #expect(Harness.read("\(dir)/coordinator-1.log").contains("coordinator stopped"))
        #expect(!FileManager.default.fileExists(atPath: "\(state)/coordinator.json"))

        let again = try Harness.start(coordinatorArgs, log: "\(dir)/coordinator-2.log")
        defer { Harness.kill9(again) }
        let second = try await Harness.coordinatorEndpoints(state)
        let worker2 = try Harness.start(
            [
                "worker", "--coordinator", second.workers, "--id", "W2", "--slots", "2",
                "--cache", "\(dir)/W2", "--engine", Harness.testEngine, "--only", "test",
            ],
            log: "\(dir)/W2.log")
        defer { Harness.kill9(worker2) }
        try await Harness.waitFor("the sweep to finish after the restart", timeout: 90) {
            let rows = try store.resultRows(sweep: "calm")
            return rows.count == 4 && rows.allSatisfy { $0.state == .succeeded }
        }
        await Harness.stop(worker2)
        await Harness.stop(again, signal: SIGTERM)
        #expect(again.terminationStatus == 0)
    }
}
