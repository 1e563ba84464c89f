import Foundation
import GRDB
import Testing

/// Workers that keep control of their engines, through the real binary: a stage's `timeout`
/// stops a long task and frees its slot (the attempt ends as `timeout` and the task runs again);
/// SIGTERM drains a worker (a running task finishes, no new work is taken) and a second SIGTERM
/// stops it at once; a worker says hello before its engines are described, exits at once when
/// stopped during `describe`, and describes from its cache on the next start; `--log-format
/// json` prints one JSON object per line.
@Suite("Liveness: timeouts, draining, start-up and operator logs", .serialized)
struct LivenessSystemTests {
    /// Starts the binary with stdout and stderr in separate files (the JSON log is stderr alone).
    static func startSplit(_ arguments: [String], out: String, err: String, environment: [String: String] = [:])
        throws -> Process
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Harness.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        for path in [out, err] { FileManager.default.createFile(atPath: path, contents: nil) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Every line of a JSON log, parsed; a line that is not a JSON object with the log's keys fails the test.
    static func jsonLines(_ path: String) -> [[String: Any]] {
        Harness.read(path).split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("not a JSON object: \(line)")
                return nil
            }
            for key in ["ts", "level", "event", "worker", "task", "attempt", "msg"] where object[key] == nil {
                Issue.record("missing \(key): \(line)")
            }
            return object
        }
    }

    func worker(
        _ coordinator: CoordinatorUnderTest, id: String, extra: [String] = [], environment: [String: String] = [:],
        cache: String? = nil
    ) throws -> Process {
        try Harness.start(
            [
                "worker", "--coordinator", coordinator.workers, "--id", id, "--slots", "1",
                "--cache", cache ?? "\(coordinator.dir)/\(id)", "--engine", Harness.testEngine,
                "--only", "test",
            ] + extra,
            log: "\(coordinator.dir)/\(id).log", environment: environment)
    }

    @Test(
        "a stage timeout of 1 s on a 30 s task frees the slot within the timeout plus the stop grace, the attempt ends as `timeout` with the limit in its error, and the task is retried; coordinator and worker log JSON lines"
    )
    func stageTimeout() async throws {
        let dir = Harness.tempDir("timeout")
        let state = "\(dir)/state"
        let coordinator = try Self.startSplit(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                "--heartbeat", "0.2", "--retry-backoff", "0.1", "--log-format", "json",
            ],
            out: "\(dir)/coordinator.out", err: "\(dir)/coordinator.err", environment: CoordinatorUnderTest.environment)
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let worker = try Self.startSplit(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W", "--engine",
                Harness.testEngine, "--only", "test", "--log-format", "json",
            ],
            out: "\(dir)/W.out", err: "\(dir)/W.err")
        defer { Harness.kill9(worker) }
        let spec = try Harness.writeSpec(
            """
            name: slow
            engine: test
            stages:
              train:
                timeout: 1
                params: {sleep: 30}
            retries: 1
            """, in: dir)
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)

        // Two attempts, both stopped at the stage's timeout: then the task has failed.
        try await Harness.waitFor("the task to time out twice", timeout: 60) {
            try SQL.strings(state, "SELECT state FROM tasks").first == "failed"
        }
        let attempts = try SQL.rows(
            state, "SELECT id, outcome, started_at, ended_at, coalesce(error, '') FROM attempts ORDER BY started_at")
        #expect(attempts.count == 2, "the timed-out task ran again: \(attempts.count) attempt(s)")
        // The engine gets SIGTERM at the timeout and SIGKILL 5 s later at most (`EngineProcess.terminate`).
        let grace = 5.0
        for row in attempts {
            let outcome: String = row[1]
            let error: String = row[4]
            #expect(outcome == "timeout", "attempt \(row[0] as String) ended as \(outcome): \(error)")
            #expect(error.contains("it ran longer than the stage's timeout of 1 s"), "\(error)")
            let held = (row[3] as Double? ?? .infinity) - (row[2] as Double)
            #expect(held < 1 + grace + 2, "the slot was held \(held) s for a 1 s timeout")
        }
        if attempts.count == 2 {
            #expect(
                (attempts[1][2] as Double) >= (attempts[0][3] as Double? ?? 0),
                "the retry started after the first ended")
        }
        let taskError = try SQL.strings(state, "SELECT coalesce(error, '') FROM tasks").first ?? ""
        #expect(taskError.contains("timed out: it ran longer than the stage's timeout of 1 s"), "\(taskError)")
        #expect(worker.isRunning, "the worker lives on")

        await Harness.stop(worker)
        try await Harness.waitFor("the worker to be recorded as left", timeout: 15) {
            try SQL.strings(state, "SELECT state FROM workers WHERE id = 'W'").first == "left"
        }
        await Harness.stop(coordinator)

        let coordinatorLog = Self.jsonLines("\(dir)/coordinator.err")
        let events = coordinatorLog.compactMap { $0["event"] as? String }
        for event in ["coordinator", "joined", "launch", "retry", "failed", "left"] {
            #expect(events.contains(event), "no `\(event)` line in the coordinator's log: \(events)")
        }
        let firstAttempt: String? = attempts.first?[0]
        let retry = coordinatorLog.first { $0["event"] as? String == "retry" }
        #expect(retry?["attempt"] as? String == firstAttempt)
        #expect(retry?["worker"] as? String == "W")
        #expect(
            (retry?["msg"] as? String)?.contains("timed out: it ran longer than the stage's timeout of 1 s") == true)
        let joined = coordinatorLog.first { $0["event"] as? String == "joined" }
        #expect((joined?["msg"] as? String)?.contains("with 1 slot(s) [cpu]") == true)

        let workerLog = Self.jsonLines("\(dir)/W.err")
        let workerEvents = workerLog.compactMap { $0["event"] as? String }
        for event in ["start", "describe", "connected", "running", "timeout", "failed", "bye"] {
            #expect(workerEvents.contains(event), "no `\(event)` line in the worker's log: \(workerEvents)")
        }
        #expect(workerLog.allSatisfy { $0["worker"] as? String == "W" })
    }

    @Test(
        "SIGTERM drains: the running task finishes and is stored, no new work is taken, bye and exit 0; a second SIGTERM stops a long task at once and it runs again elsewhere"
    )
    func drainAndStop() async throws {
        let dir = Harness.tempDir("drain")
        let coordinator = try await CoordinatorUnderTest(dir: dir, heartbeat: 0.2, deadAfter: 2, retryBackoff: 0.1)
        defer { coordinator.stop() }
        let state = coordinator.state
        let a = try worker(coordinator, id: "A", extra: ["--drain-grace", "30"])
        defer { Harness.kill9(a) }
        let spec = try Harness.writeSpec(Harness.testSpec(name: "drain", xs: [1, 2], trainParams: "sleep: 4"), in: dir)
        try await coordinator.launch(spec)
        try await Harness.waitFor("a task to run on A", timeout: 30) {
            try SQL.int(state, "SELECT COUNT(*) FROM attempts WHERE worker_id = 'A' AND outcome = 'running'") == 1
        }
        let signalled = Date()
        kill(a.processIdentifier, SIGTERM)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        #expect(a.isRunning, "the worker waits for its running task")
        try await Harness.waitFor("A to exit", timeout: 25) { !a.isRunning }
        let took = Date().timeIntervalSince(signalled)
        #expect(a.terminationStatus == 0, "\(Harness.read("\(dir)/A.log").suffix(2000))")
        #expect(took < 15, "draining one 4 s task took \(took) s")
        let outcomes = try SQL.strings(state, "SELECT outcome FROM attempts WHERE worker_id = 'A'")
        #expect(outcomes == ["succeeded"], "the drained task finished: \(outcomes)")
        #expect(
            try SQL.int(state, "SELECT COUNT(*) FROM tasks WHERE state = 'ready' AND attempts_used = 0") == 1,
            "the other task was not handed to the draining worker (no attempt used up)")
        try await Harness.waitFor("A to be recorded as left", timeout: 10) {
            try SQL.strings(state, "SELECT state FROM workers WHERE id = 'A'").first == "left"
        }
        #expect(Harness.read("\(dir)/A.log").contains("draining: taking no new work"))

        // A task of a minute on B: two SIGTERMs stop it at once, as a retryable failure.
        let long = try Harness.writeSpec(
            Harness.testSpec(name: "stubborn", xs: [1], trainParams: "sleep: 60"), in: dir,
            name: "long.yaml")
        let b = try worker(coordinator, id: "B")
        defer { Harness.kill9(b) }
        try await Harness.waitFor("the drain sweep to finish on B", timeout: 30) {
            try SQL.int(state, "SELECT COUNT(*) FROM tasks t WHERE t.sweep = 'drain' AND t.state = 'succeeded'") == 2
        }
        try await coordinator.launch(long)
        try await Harness.waitFor("the long task to run on B", timeout: 30) {
            try SQL.int(
                state,
                """
                SELECT COUNT(*) FROM attempts a JOIN tasks t ON t.id = a.task_id
                WHERE t.sweep = 'stubborn' AND a.worker_id = 'B' AND a.outcome = 'running'
                """) == 1
        }
        let stopped = Date()
        kill(b.processIdentifier, SIGTERM)
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(b.isRunning, "the first SIGTERM drains")
        kill(b.processIdentifier, SIGTERM)
        try await Harness.waitFor("B to exit after the second SIGTERM", timeout: 20) { !b.isRunning }
        let stopTook = Date().timeIntervalSince(stopped)
        // The engine gets SIGTERM at once and SIGKILL 5 s later at most (`EngineProcess.terminate`).
        #expect(stopTook < 9, "two SIGTERMs took \(stopTook) s to stop the worker")
        #expect(b.terminationStatus == 0, "\(Harness.read("\(dir)/B.log").suffix(2000))")
        // B sent its `failed` before exiting; the coordinator commits it in a turn of its own.
        try? await Harness.waitFor("the stopped attempt to be recorded", timeout: 10) {
            try SQL.int(
                state,
                """
                SELECT COUNT(*) FROM attempts a JOIN tasks t ON t.id = a.task_id
                WHERE t.sweep = 'stubborn' AND a.outcome <> 'running'
                """) == 1
        }
        let row = try SQL.rows(
            state,
            """
            SELECT a.outcome, coalesce(a.error, ''), t.state FROM attempts a JOIN tasks t ON t.id = a.task_id
            WHERE t.sweep = 'stubborn'
            """
        ).first
        #expect((row?[0] as String?) == "failed")
        #expect((row?[1] as String?)?.contains("the worker is shutting down") == true)
        #expect((row?[2] as String?) == "ready", "a stopped task runs again")

        let c = try worker(coordinator, id: "C")
        defer { Harness.kill9(c) }
        try await Harness.waitFor("the long task to run again elsewhere", timeout: 30) {
            try SQL.int(
                state,
                """
                SELECT COUNT(*) FROM attempts a JOIN tasks t ON t.id = a.task_id
                WHERE t.sweep = 'stubborn' AND a.worker_id = 'C' AND a.outcome = 'running'
                """) == 1
        }
        kill(c.processIdentifier, SIGTERM)
        kill(c.processIdentifier, SIGTERM)
        await Harness.stop(c)
    }

    @Test(
        "a worker says hello before its engine is described and exits at once when stopped during describe; once described, the next start offers the engine from its cache at once"
    )
    func startUp() async throws {
        let dir = Harness.tempDir("startup")
        let coordinator = try await CoordinatorUnderTest(dir: dir, heartbeat: 0.2, deadAfter: 2)
        defer { coordinator.stop() }
        let state = coordinator.state
        let cache = "\(dir)/cache"
        let offers = { (id: String) -> [String]? in
            guard let row = try? Harness.store(state).workers().first(where: { $0.id == id && $0.state == "alive" })
            else { return nil }
            return row.info["engines"]?.objectValue.map { Array($0.keys).sorted() }
        }

        // describe takes 30 s: the worker is there at once, offering only the null engine.
        let slow = ["TEST_ENGINE_DESCRIBE_SLEEP": "30"]
        let d = try worker(coordinator, id: "D", environment: slow, cache: cache)
        defer { Harness.kill9(d) }
        try await Harness.waitFor("D to say hello", timeout: 15) { offers("D") != nil }
        #expect(offers("D") == ["null"])
        try await Harness.waitFor("D to say what it is doing", timeout: 5) {
            Harness.read("\(dir)/D.log").contains("describing engine test (first start, cached afterwards)")
        }
        let stopped = Date()
        kill(d.processIdentifier, SIGTERM)
        try await Harness.waitFor("D to exit", timeout: 10) { !d.isRunning }
        #expect(
            Date().timeIntervalSince(stopped) < 3,
            "a worker stopped during describe took \(Date().timeIntervalSince(stopped)) s")
        #expect(d.terminationStatus == 0)

        // Described in the background, offered with a second hello.
        let e = try worker(coordinator, id: "E", cache: cache)
        defer { Harness.kill9(e) }
        try await Harness.waitFor("E to offer the test engine", timeout: 30) { offers("E") == ["null", "test"] }
        await Harness.stop(e)

        // From the cache: offered in the first hello, though describe would take 30 s.
        let f = try worker(coordinator, id: "F", environment: slow, cache: cache)
        defer { Harness.kill9(f) }
        let started = Date()
        try await Harness.waitFor("F to offer the test engine", timeout: 10) { offers("F") == ["null", "test"] }
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(Harness.read("\(dir)/F.log").contains("engine test: described from the cache"))
        await Harness.stop(f)
    }
}
