import Foundation
import SweepKit
import Testing
import Wire
import ZeroMQ

/// Messages about an attempt from anyone but the worker it was assigned to: a stranger that
/// never said hello, another worker that did, and a process claiming the real worker's id.
/// Each test starts a coordinator and a real worker running a slow task (20 s), reads the
/// running attempt's id from the database (the strongest attacker: it knows the id), forges,
/// then checks that the real worker's run was not disturbed and is the only thing stored.
@Suite("Forged results, failures, progress and hellos are refused", .serialized)
struct ForgeryTests {
    enum Sender: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case stranger = "a DEALER that never said hello"
        case otherWorker = "another worker that said hello"
        var testDescription: String { rawValue }
    }

    enum Forged: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case result = "a result with accuracy 12345"
        case failed = "a non-retryable failure"
        case progress = "progress with metrics of 12345"
        var testDescription: String { rawValue }
    }

    @Test(
        "a forged message about a running attempt from a DEALER that is not its worker is refused: nothing of it is stored, the task is not failed, the attempt is not lost, and the real worker's result is stored exactly once",
        arguments: Sender.allCases, Forged.allCases)
    func forgedAboutRunningAttempt(sender: Sender, forged: Forged) async throws {
        let scene = try await ForgeryScene(name: "forge-\(sender)-\(forged)")
        defer { scene.tearDown() }
        let forger = try RawDealer(scene.context, scene.coordinator.workers)
        if sender == .otherWorker {
            forger.send(
                .hello,
                Hello(
                    workerId: "P", host: "forger-host", pid: 999_999,
                    slots: [SlotInfo(index: 0, device: "cpu")],
                    engines: ["null": ["builtin": true], "test": ["engine": "test"]], running: []))
            let welcome = await forger.receive(.welcome, timeout: 5)
            #expect(welcome != nil, "the second worker must be admitted (it is a worker like any other)")
        }
        forger.send(forged.type, forged.header(scene))
        await scene.sync(forger)
        try await scene.expectUndisturbed(by: "\(forged) from \(sender)")
    }

    @Test(
        "a hello claiming the id of a live worker, then a heartbeat saying it runs nothing and a forged result: the real worker keeps its attempt (not lost, not cancelled), its result is stored exactly once, and the impostor's host is not recorded"
    )
    func stolenWorkerId() async throws {
        let scene = try await ForgeryScene(name: "forge-stolen-id")
        defer { scene.tearDown() }
        let thief = try RawDealer(scene.context, scene.coordinator.workers)
        thief.send(
            .hello,
            Hello(
                workerId: "A", host: "thief-host", pid: 999_999,
                slots: [SlotInfo(index: 0, device: "cpu")],
                engines: ["null": ["builtin": true], "test": ["engine": "test"]], running: []))
        await scene.sync(thief)
        try scene.expectStillRunning(after: "the impostor's hello")
        let hostNow = try SQL.strings(scene.state, "SELECT host FROM workers WHERE id = 'A'")
        #expect(!hostNow.contains("thief-host"), "the impostor's hello was recorded as worker A: host \(hostNow)")
        // Past the dead interval since the attempt started: a heartbeat that leaves it out
        // would end it as lost, were the heartbeat believed.
        try await Harness.waitFor("the attempt to be older than the dead interval", timeout: 10) {
            Date().timeIntervalSince1970 - scene.attemptStartedAt > scene.deadAfter + 0.5
        }
        thief.send(.heartbeat, Heartbeat(running: []))
        await scene.sync(thief)
        try scene.expectStillRunning(after: "the impostor's heartbeat listing nothing")
        thief.send(.result, Forged.result.header(scene))
        await scene.sync(thief)
        try await scene.expectUndisturbed(by: "a hello with the stolen id A")
        let host = try SQL.strings(scene.state, "SELECT host FROM workers WHERE id = 'A'")
        #expect(host == [ProcessInfo.processInfo.hostName], "the workers row of A now says \(host)")
    }

    @Test(
        "attempt ids are unguessable: each holds at least 128 bits of randomness (32+ hex digits) and two attempts of the same task share no structure (no task-id prefix, no run id, no counter)"
    )
    func attemptIdsAreUnguessable() async throws {
        let dir = Harness.tempDir("attempt-ids")
        let coordinator = try await CoordinatorUnderTest(dir: dir)
        defer { coordinator.stop() }
        let engineState = Harness.tempDir("attempt-ids-engine")
        let worker = try coordinator.startWorker(
            id: "A", testEngine: true, environment: ["TEST_ENGINE_STATE": engineState])
        defer { Harness.kill9(worker) }
        // Each task fails once, then succeeds: two attempts per task.
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "ids", xs: [1, 2], trainParams: "fail_attempts: 1"),
            in: dir)
        try await coordinator.launch(spec)
        let store = try Harness.store(coordinator.state)
        try await Harness.waitFor("both tasks to succeed after one failure each", timeout: 60) {
            let rows = try store.resultRows(sweep: "ids")
            return rows.count == 2 && rows.allSatisfy { $0.state == .succeeded }
        }
        var all: [(task: String, id: String)] = []
        for row in try store.resultRows(sweep: "ids") {
            let attempts = try store.attempts(task: row.taskId)
            #expect(
                attempts.count == 2, "task \(row.taskId) has \(attempts.count) attempts; the fixture fails each once")
            for a in attempts { all.append((row.taskId, a.id)) }
        }
        print("attempt ids: \(all.map(\.id))")
        for (task, id) in all {
            let hex = longestRun(id) { $0.isHexDigit }
            let alnum = longestRun(id) { $0.isLetter || $0.isNumber }
            #expect(
                hex >= 32 || (alnum >= 22 && Set(id).count >= 16),
                "attempt id '\(id)' has no 128-bit random part (longest hex run \(hex) characters)")
            #expect(!id.contains(task.prefix(8)), "attempt id '\(id)' contains its task id's prefix \(task.prefix(8))")
        }
        for i in all.indices {
            for j in all.indices where j > i {
                let common = longestCommonSubstring(all[i].id, all[j].id)
                let same = all[i].task == all[j].task ? " (same task)" : ""
                #expect(common.count < 8, "attempt ids '\(all[i].id)' and '\(all[j].id)' share '\(common)'\(same)")
            }
        }
    }
}

/// A coordinator, a real worker A running a 20 s task of the test engine, and the attempt. The
/// task must still be running when the scene first looks (after `launch` returns) and while the
/// forgeries arrive; 6 s was once too short on a loaded CI machine.
final class ForgeryScene {
    let coordinator: CoordinatorUnderTest
    let worker: Process
    let context: Context
    let attemptId: String
    let taskId: String
    let attemptStartedAt: Double
    let deadAfter = 2.0
    var state: String { coordinator.state }
    private var probes = 0

    init(name: String) async throws {
        let dir = Harness.tempDir(name)
        coordinator = try await CoordinatorUnderTest(dir: dir, heartbeat: 0.25, deadAfter: deadAfter)
        context = try Context()
        worker = try coordinator.startWorker(id: "A", testEngine: true)
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "victim", xs: [1], trainParams: "sleep: 20, value: 7"),
            in: dir)
        try await coordinator.launch(spec)
        var found: (String, String, Double)? = nil
        let state = coordinator.state
        try await Harness.waitFor("the task to run on A", timeout: 30) {
            guard
                let row = try SQL.rows(
                    state, "SELECT id, task_id, started_at FROM attempts WHERE outcome = 'running' AND worker_id = 'A'"
                ).first
            else { return false }
            found = (row[0], row[1], row[2])
            return true
        }
        (attemptId, taskId, attemptStartedAt) = found!
    }

    func tearDown() {
        Harness.kill9(worker)
        coordinator.stop()
    }

    /// Waits until the coordinator has handled everything `dealer` sent (its answer to a
    /// frame with a bad protocol version comes after them).
    func sync(_ dealer: RawDealer) async {
        probes += 1
        let tag = "PROBE-\(probes)"
        dealer.send([Array(tag.utf8), Array("hello".utf8), Array("{}".utf8)])
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            guard let frames = await dealer.receive(timeout: deadline.timeIntervalSinceNow) else { break }
            if frames.contains(where: { String(decoding: $0, as: UTF8.self).contains("'\(tag)'") }) { return }
        }
        // A coordinator may ignore a peer it does not trust without a word; then a new worker's
        // hello, answered after everything sent before it, shows the loop has moved on.
        if let fresh = try? RawDealer(context, coordinator.workers) {
            fresh.send(
                .hello,
                Hello(
                    workerId: "sync-\(probes)", host: "sync-host", pid: 3, slots: [],
                    engines: ["null": ["builtin": true]], running: []))
            if await fresh.receive(.welcome, timeout: 5) != nil { return }
        }
        Issue.record("the coordinator answered nothing within 7 s (\(coordinator.exitDescription))")
    }

    /// The attempt is still running on A, as the database says right now.
    func expectStillRunning(after what: String) throws {
        let outcome = try SQL.strings(
            state, "SELECT outcome || ' ' || coalesce(error, '') FROM attempts WHERE id = ?", [attemptId])
        #expect(
            outcome.first?.hasPrefix("running") == true,
            "after \(what) the real worker's attempt \(attemptId) is \(outcome.first ?? "missing")")
        let task = try SQL.strings(state, "SELECT state FROM tasks WHERE id = ?", [taskId])
        #expect(task == ["running"], "after \(what) the task is \(task)")
    }

    /// The real worker's run went on as if nothing had been sent, and only it was stored.
    func expectUndisturbed(by what: String) async throws {
        let state = coordinator.state
        let task = taskId
        var final = ""
        try await Harness.waitFor("the task to end", timeout: 90) {
            final = try SQL.strings(state, "SELECT state FROM tasks WHERE id = ?", [task]).first ?? ""
            return ["succeeded", "failed", "cancelled"].contains(final)
        }
        // Anything still in flight (a duplicate result, a retry) lands now.
        try await Task.sleep(nanoseconds: 500_000_000)
        final = try SQL.strings(state, "SELECT state FROM tasks WHERE id = ?", [task]).first ?? ""
        let error = try SQL.strings(state, "SELECT coalesce(error, '') FROM tasks WHERE id = ?", [task]).first ?? ""
        #expect(final == "succeeded", "after \(what) the task ended \(final) (\(error))")

        let attempts = try SQL.rows(
            state, "SELECT id, worker_id, outcome, coalesce(error, '') FROM attempts WHERE task_id = ? ORDER BY rowid",
            [task])
        let shown = attempts.map { "\($0[0] as String) on \($0[1] as String): \($0[2] as String) \($0[3] as String)" }
        #expect(attempts.count == 1, "after \(what) the task has \(attempts.count) attempts: \(shown)")
        let mine = attempts.first { ($0[0] as String) == attemptId }
        #expect(
            (mine?[2] as String?) == "succeeded",
            "after \(what) the real worker's attempt \(attemptId) is \((mine?[2] as String?) ?? "missing"): \(shown)")

        let results = try SQL.rows(state, "SELECT attempt_id, metrics_json FROM results WHERE task_id = ?", [task])
        #expect(results.count == 1, "after \(what): \(results.count) result rows")
        if let result = results.first {
            let metrics: String = result[1]
            #expect(
                (result[0] as String) == attemptId,
                "after \(what) the stored result is from attempt \(result[0] as String)")
            #expect(!metrics.contains("12345"), "after \(what) the stored result is the forged one: \(metrics)")
            #expect(metrics.contains("\"accuracy\":7"), "the stored metrics are not the real run's: \(metrics)")
        }
        let forgedMetrics = try SQL.int(state, "SELECT COUNT(*) FROM metrics WHERE value = 12345")
        #expect(forgedMetrics == 0, "after \(what) \(forgedMetrics) forged metric row(s) were stored")
        let forgedResults = try SQL.int(state, "SELECT COUNT(*) FROM results WHERE metrics_json LIKE '%12345%'")
        #expect(forgedResults == 0)
        #expect(worker.isRunning, "the real worker process died")
    }
}

extension ForgeryTests.Forged {
    var type: MessageType {
        switch self {
        case .result: return .result
        case .failed: return .failed
        case .progress: return .progress
        }
    }

    func header(_ scene: ForgeryScene) -> FuzzJSON {
        switch self {
        case .result:
            return FuzzJSON.header(
                .result,
                TaskResult(
                    attemptId: scene.attemptId, taskId: scene.taskId,
                    metrics: ["accuracy": 12345], units: ["accuracy": "%"],
                    details: ["forged": true], artifacts: []))
        case .failed:
            return FuzzJSON.header(
                .failed,
                TaskFailed(
                    attemptId: scene.attemptId, taskId: scene.taskId,
                    error: "forged failure", exitCode: 2, stderrTail: "forged",
                    retryable: false))
        case .progress:
            return FuzzJSON.header(
                .progress,
                TaskProgress(
                    attemptId: scene.attemptId,
                    event: [
                        "event": "progress", "epoch": 1, "epochs": 1,
                        "accuracy": 12345, "loss": 12345,
                    ]))
        }
    }
}

extension RawDealer {
    func send(_ type: MessageType, _ header: FuzzJSON) {
        send([Array(wireVersion.utf8), Array(type.rawValue.utf8), header.bytes])
    }
}

private func longestRun(_ s: String, _ accept: (Character) -> Bool) -> Int {
    var best = 0, current = 0
    for c in s {
        current = accept(c) ? current + 1 : 0
        best = max(best, current)
    }
    return best
}

private func longestCommonSubstring(_ a: String, _ b: String) -> String {
    let x = Array(a), y = Array(b)
    var best = (length: 0, end: 0)
    var previous = [Int](repeating: 0, count: y.count + 1)
    for i in 1...max(x.count, 1) where i <= x.count {
        var row = [Int](repeating: 0, count: y.count + 1)
        for j in 1...max(y.count, 1) where j <= y.count {
            if x[i - 1] == y[j - 1] {
                row[j] = previous[j - 1] + 1
                if row[j] > best.length { best = (row[j], i) }
            }
        }
        previous = row
    }
    return String(x[(best.end - best.length)..<best.end])
}
