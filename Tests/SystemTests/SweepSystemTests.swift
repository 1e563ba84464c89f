import Foundation
import Store
import SweepKit
import Testing

/// End-to-end behaviour with real processes: a coordinator, workers, engine subprocesses,
/// ZeroMQ over loopback and the SQLite database. Uses the stdlib test engine
/// (Tests/Fixtures/test_engine.py) so each task takes milliseconds to seconds.
@Suite("Sweeps across real worker processes", .serialized)
struct SweepSystemTests {
    @Test("a sweep runs across three worker processes and every result is stored once")
    func threeWorkers() async throws {
        let dir = Harness.tempDir("three")
        let spec = try Harness.writeSpec(
            Harness.testSpec(
                name: "three", xs: Array(1...9), trainParams: "sleep: 0.4, artifact_bytes: 1000",
                finetune: "sleep: 0.1"), in: dir)
        let state = "\(dir)/state"
        let out = try await Harness.run(
            [
                "run", spec, "--workers", "3", "--state", state, "--engine", Harness.testEngine,
                "--plain",
            ], timeout: 180)
        #expect(out.status == 0, "run failed: \(out.stdout)\n\(out.stderr)")
        let store = try Harness.store(state)
        let rows = try store.resultRows(sweep: "three")
        #expect(rows.count == 18)
        #expect(rows.allSatisfy { $0.state == .succeeded })
        #expect(try store.countResults(sweep: "three") == 18)
        var workers = Set<String>()
        for row in rows {
            let attempts = try store.attempts(task: row.taskId)
            #expect(attempts.filter { $0.outcome == .succeeded }.count == 1)
            for a in attempts { workers.insert(a.workerId) }
        }
        #expect(workers == ["local-1", "local-2", "local-3"])
        #expect(out.stdout.contains("report: "))
    }

    @Test("relaunching a finished spec runs nothing")
    func relaunchRunsNothing() async throws {
        let dir = Harness.tempDir("relaunch")
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "again", xs: [1, 2, 3], trainParams: "value: 7"), in: dir)
        let state = "\(dir)/state"
        let args = ["run", spec, "--workers", "1", "--state", state, "--engine", Harness.testEngine, "--plain"]
        let first = try await Harness.run(args)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("3 tasks (3 new, 0 reused"))
        let attemptsBefore = try Harness.store(state).resultRows(sweep: "again").map(\.attempts)
        let second = try await Harness.run(args)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("3 tasks (0 new, 3 reused, 0 to run again)"))
        #expect(try Harness.store(state).resultRows(sweep: "again").map(\.attempts) == attemptsBefore)

        // A new grid value adds only the new cell.
        let grown = try Harness.writeSpec(
            Harness.testSpec(name: "again", xs: [1, 2, 3, 4], trainParams: "value: 7"),
            in: dir, name: "grown.yaml")
        let third = try await Harness.run(["run", grown] + args.dropFirst(2))
        #expect(third.status == 0, "\(third.stderr)")
        #expect(third.stdout.contains("4 tasks (1 new, 3 reused"))
    }

    @Test("a crashed engine is recorded with its exit code and stderr tail and retried; an invalid task is not")
    func crashesAndInvalidTasks() async throws {
        let dir = Harness.tempDir("crash")
        let engineState = Harness.tempDir("engine-state")
        let spec = try Harness.writeSpec(
            """
            name: crashy
            engine: test
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
              x: [1]
            stages:
              flaky:
                params: {fail_attempts: 1}
              broken:
                params: {exit_code: 2}
            retries: 2
            """, in: dir)
        let state = "\(dir)/state"
        let out = try await Harness.run(
            [
                "run", spec, "--workers", "1", "--state", state, "--engine", Harness.testEngine,
                "--plain", "--retry-backoff", "0.1",
            ],
            environment: ["TEST_ENGINE_STATE": engineState])
        #expect(out.status == 1, "a sweep with a failed task must exit non-zero")
        let store = try Harness.store(state)
        let flaky = try #require(try store.resultRows(sweep: "crashy", stage: "flaky").first)
        #expect(flaky.state == .succeeded)
        let flakyAttempts = try store.attempts(task: flaky.taskId).sorted { $0.startedAt < $1.startedAt }
        #expect(flakyAttempts.map(\.outcome) == [.failed, .succeeded])
        #expect(flakyAttempts[0].exitCode == 3)
        #expect(flakyAttempts[0].stderrTail?.contains("failing on purpose") == true)
        let broken = try #require(try store.resultRows(sweep: "crashy", stage: "broken").first)
        #expect(broken.state == .failed)
        #expect(try store.attempts(task: broken.taskId).map(\.outcome) == [.invalid])
        #expect(out.stdout.contains("1 of 2 task(s) did not succeed"))
    }

    @Test("a checkpoint produced on one worker is consumed by a task on another, hash-verified")
    func checkpointMovesBetweenWorkers() async throws {
        let dir = Harness.tempDir("handoff")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "handoff", xs: [1], trainParams: "artifact_bytes: 2500000", finetune: "value: 1"),
            in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "1",
                "--retry-backoff", "0.1",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        // Worker A runs `train`, then hangs in `finetune` (its engine stalls that stage).
        let a = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "A", "--cache", "\(dir)/A",
                "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/A.log",
            environment: ["TEST_ENGINE_STALL_STAGE": "finetune"])
        defer { Harness.kill9(a) }
        let launched = try await Harness.run(
            ["launch", spec, "--coordinator", endpoints.control, "--state", state], timeout: 30)
        #expect(launched.status == 0, "\(launched.stderr)")
        #expect(launched.stdout.contains("sweep handoff: 2 new, 0 reused, 0 to run again, 2 total"))
        let store = try Harness.store(state)
        try await Harness.waitFor("finetune to start on A") {
            guard let ft = try store.resultRows(sweep: "handoff", stage: "finetune").first else { return false }
            return try store.attempts(task: ft.taskId).contains { $0.workerId == "A" && $0.outcome == .running }
        }
        // A dies mid-task; B, which never saw the checkpoint, must fetch and verify it.
        let b = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "B", "--cache", "\(dir)/B",
                "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/B.log")
        defer { Harness.kill9(b) }
        await Harness.stop(a, signal: SIGKILL)
        try await Harness.waitFor("finetune to succeed") {
            try store.resultRows(sweep: "handoff", stage: "finetune").first?.state == .succeeded
        }
        let train = try #require(try store.resultRows(sweep: "handoff", stage: "train").first)
        let finetune = try #require(try store.resultRows(sweep: "handoff", stage: "finetune").first)
        let checkpoint = try #require(train.artifacts.first)
        #expect(checkpoint.bytes == 2_500_000)
        #expect(try store.attempts(task: train.taskId).map(\.workerId) == ["A"])
        let ftAttempts = try store.attempts(task: finetune.taskId).sorted { $0.startedAt < $1.startedAt }
        #expect(ftAttempts.map(\.workerId) == ["A", "B"])
        #expect(ftAttempts.map(\.outcome) == [.lost, .succeeded])
        #expect(finetune.details["inputs_verified"]?["train"]?.stringValue == checkpoint.sha256)
        #expect(try store.countResults(sweep: "handoff") == 2)
        // The coordinator keeps the canonical copy; B's cache holds a verified copy.
        #expect(FileManager.default.fileExists(atPath: checkpoint.path))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/B/artifacts/\(checkpoint.sha256)"))
    }

    @Test("a worker killed with SIGKILL mid-task: the task completes on another worker, stored exactly once")
    func killedWorker() async throws {
        let dir = Harness.tempDir("kill")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Harness.testSpec(name: "kill", xs: [1], trainParams: "sleep: 2"), in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "1",
                "--retry-backoff", "0.1",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let a = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "A", "--cache", "\(dir)/A",
                "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/A.log")
        defer { Harness.kill9(a) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("the task to run on A") {
            guard let t = try store.resultRows(sweep: "kill").first else { return false }
            return try store.attempts(task: t.taskId).contains { $0.workerId == "A" && $0.outcome == .running }
        }
        let b = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "B", "--cache", "\(dir)/B",
                "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/B.log")
        defer { Harness.kill9(b) }
        await Harness.stop(a, signal: SIGKILL)
        try await Harness.waitFor("the task to succeed") {
            try store.resultRows(sweep: "kill").first?.state == .succeeded
        }
        let task = try #require(try store.resultRows(sweep: "kill").first)
        let attempts = try store.attempts(task: task.taskId).sorted { $0.startedAt < $1.startedAt }
        #expect(attempts.map(\.workerId) == ["A", "B"])
        #expect(attempts.map(\.outcome) == [.lost, .succeeded])
        #expect(try store.countResults(sweep: "kill") == 1)
        let status = try await Harness.run(["status", "--state", state])
        #expect(status.stdout.contains("kill [####################] 1/1 done"), "\(status.stdout)")
    }

    @Test("a coordinator restarted mid-sweep finishes the sweep without rerunning finished tasks")
    func coordinatorRestart() async throws {
        let dir = Harness.tempDir("restart")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "restart", xs: Array(1...8), trainParams: "sleep: 0.5"),
            in: dir)
        // Fixed ports outside the ephemeral range, so nothing else takes them while it is down.
        let ports = try Harness.stablePorts(3)
        let coordinatorArgs = [
            "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:\(ports[0])",
            "--control", "tcp://127.0.0.1:\(ports[2])", "--heartbeat", "0.2", "--dead-after", "5",
        ]
        var coordinator = try Harness.start(coordinatorArgs, log: "\(dir)/coordinator-1.log")
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--slots", "2",
                "--cache", "\(dir)/W", "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/W.log")
        defer { Harness.kill9(worker) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("some tasks to finish") {
            try store.resultRows(sweep: "restart").filter { $0.state == .succeeded }.count >= 2
        }
        await Harness.stop(coordinator, signal: SIGKILL)
        let doneBefore = Set(try store.resultRows(sweep: "restart").filter { $0.state == .succeeded }.map(\.taskId))
        // Same state directory, same addresses: the worker reconnects by itself.
        try? FileManager.default.removeItem(atPath: "\(state)/coordinator.json")
        let workerPort = endpoints.workers, controlPort = endpoints.control
        coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", workerPort, "--control", controlPort,
                "--heartbeat", "0.2", "--dead-after", "5",
            ],
            log: "\(dir)/coordinator-2.log")
        defer { Harness.kill9(coordinator) }
        // Generous: on a loaded two-core machine a 1 s dead interval and a 90 s wait were missed
        // once (a clean-clone CI run); the logs say why when it happens again.
        do {
            try await Harness.waitFor("the sweep to finish after the restart", timeout: 180) {
                try store.resultRows(sweep: "restart").allSatisfy { $0.state == .succeeded }
            }
        } catch {
            Issue.record(
                """
                \(error)
                coordinator after the restart: \(Harness.read("\(dir)/coordinator-2.log").suffix(3000))
                worker: \(Harness.read("\(dir)/W.log").suffix(3000))
                """)
            throw error
        }
        #expect(try store.countResults(sweep: "restart") == 8)
        for id in doneBefore {
            let attempts = try store.attempts(task: id)
            #expect(attempts.count == 1, "task \(id) finished before the restart and must not run again")
        }
        for row in try store.resultRows(sweep: "restart") {
            #expect(try store.attempts(task: row.taskId).filter { $0.outcome == .succeeded }.count == 1)
        }
    }

    @Test("cancel stops a running sweep; retry runs its cancelled tasks again to success")
    func cancelAndRetry() async throws {
        let dir = Harness.tempDir("cancel")
        let state = "\(dir)/state"
        // Worker H's engine hangs in `train`; worker F's finishes at once.
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "stoppable", xs: [1, 2], trainParams: "value: 5"),
            in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "1",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let hanging = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "H", "--slots", "2",
                "--cache", "\(dir)/H", "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/H.log",
            environment: ["TEST_ENGINE_STALL_STAGE": "train"])
        defer { Harness.kill9(hanging) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("both tasks to run") {
            try store.resultRows(sweep: "stoppable").allSatisfy { $0.state == .running }
        }
        let cancel = try await Harness.run(["cancel", "stoppable", "--state", state])
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(cancel.stdout.contains("sweep stoppable cancelled"))
        try await Harness.waitFor("both tasks to be cancelled and their engines stopped") {
            let rows = try store.resultRows(sweep: "stoppable")
            let attempts = try rows.flatMap { try store.attempts(task: $0.taskId) }
            return rows.allSatisfy { $0.state == .cancelled } && attempts.allSatisfy { $0.outcome == .cancelled }
        }
        // A worker whose engine finishes takes over; retry brings the cancelled tasks back.
        await Harness.stop(hanging)
        let finishing = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "F", "--cache",
                "\(dir)/F", "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/F.log")
        defer { Harness.kill9(finishing) }
        let retry = try await Harness.run(["retry", "stoppable", "--state", state])
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(retry.stdout.contains("sweep stoppable: 2 task(s) will run again"))
        try await Harness.waitFor("the retried tasks to succeed") {
            try store.resultRows(sweep: "stoppable").allSatisfy { $0.state == .succeeded }
        }
        #expect(try store.countResults(sweep: "stoppable") == 2)
    }

    @Test("the default state directory, ./.sparsegrid, works from any directory and stores absolute artifact paths")
    func defaultRelativeState() async throws {
        let dir = Harness.tempDir("relative")
        _ = try Harness.writeSpec(
            Harness.testSpec(name: "rel", xs: [1], trainParams: "artifact_bytes: 1000"),
            in: dir)
        let out = try await Harness.run(
            ["run", "spec.yaml", "--workers", "1", "--engine", Harness.testEngine, "--plain"],
            directory: dir)
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        let rows = try Harness.store("\(dir)/.sparsegrid").resultRows(sweep: "rel")
        let artifact = try #require(rows.first?.artifacts.first)
        #expect(artifact.path.hasPrefix("/"))
        #expect(FileManager.default.fileExists(atPath: artifact.path))
    }
}
