import Foundation
import SweepKit
import Synchronization
import Testing
import Wire
import ZeroMQ

@testable import Worker

#if canImport(Glibc)
    import Glibc
#endif

// Long-lived (`serve`) engines, run as real subprocesses by real `Job`s that share one
// `WarmEngines` pool, as a worker's slots do; no coordinator (no artifacts to move).

private let fixturesDir: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()
    url.deleteLastPathComponent()
    return url.appendingPathComponent("Fixtures").path
}()

private let testEngine = EngineCommand(executable: "python3", arguments: ["\(fixturesDir)/test_engine.py"])
private let liar = EngineCommand(executable: "python3", arguments: ["\(fixturesDir)/engines/serve_liar.py"])

/// How one attempt ended.
private struct Ended: Sendable {
    var type: MessageType
    var frames: [[UInt8]]

    var result: TaskResult? { type == .result ? try? Codec.parse(frames).decode(TaskResult.self) : nil }
    var failed: TaskFailed? { type == .failed ? try? Codec.parse(frames).decode(TaskFailed.self) : nil }

    /// The engine pid the task's details report (the fixtures put it there).
    var pid: Int32? { result?.details["pid"]?.doubleValue.map { Int32($0) } }
    var taskIndex: Int? {
        (result?.details["engine_process"]?["task_index"] ?? result?.details["task_index"])?.doubleValue.map {
            Int($0)
        }
    }
    var mode: String? { result?.details["engine_process"]?["mode"]?.stringValue }
    var what: String { failed.map { "failed: \($0.error) [stderr: \($0.stderrTail ?? "")]" } ?? "result" }
}

/// Where a job thread leaves how its attempt ended.
private final class Finish: Sendable {
    let ended = Mutex<Ended?>(nil)
    var value: Ended? { ended.withLock { $0 } }
}

/// A worker's slots in miniature: jobs on slot 0 with a shared pool (nil: process per task).
private final class Slot: Sendable {
    let pool: WarmEngines?
    let config: WorkerConfig
    let context: Context

    init(reuse: Int?, engine: EngineCommand, killGrace: Double = EngineProcess.defaultKillGrace) throws {
        pool = reuse.map { WarmEngines(reuse: $0, killGrace: killGrace) }
        let cache = FileManager.default.temporaryDirectory
            .appendingPathComponent("sg-warm-\(UUID().uuidString.prefix(8))").path
        config = WorkerConfig(
            coordinator: "tcp://127.0.0.1:9", workerId: "w", host: "h",
            slots: [SlotInfo(index: 0, device: "cpu")], engines: ["e": engine],
            cacheDirectory: cache, describeEngines: false)
        context = try Context()
    }

    /// Starts one attempt; `job` is its handle (for `cancel`), `wait` its end.
    func start(_ params: [String: JSONValue]) -> (job: Job, ended: Finish) {
        let attemptId = "a\(UUID().uuidString.prefix(8).lowercased())"
        let assign = Assign(
            attemptId: attemptId, taskId: "t-\(attemptId)", sweep: "sw", stage: "train", engine: "e",
            params: params, method: nil, data: nil, measure: nil, inputs: [:], device: "cpu")
        let job = Job(assign: assign, slot: SlotInfo(index: 0, device: "cpu"), startedAt: wallClock(), warm: pool)
        let ended = Finish()
        let config = self.config, context = self.context
        Thread.detachNewThread {
            job.run(config: config, context: context, dataEndpoint: "tcp://127.0.0.1:9") { output in
                if case .finished(_, let type, let frames) = output {
                    ended.ended.withLock { $0 = Ended(type: type, frames: frames) }
                }
            }
        }
        return (job, ended)
    }

    /// Runs one attempt to its end (within `timeout`).
    func run(_ params: [String: JSONValue] = [:], timeout: Double = 30) async throws -> Ended {
        let (_, ended) = start(params)
        #expect(await within(timeout) { ended.value != nil }, "the attempt did not end within \(timeout) s")
        return try #require(ended.value)
    }

    func stop() { pool?.shutdown() }
}

@Suite("Warm engines: one long-lived serve process per slot, replaced when the rules say so", .serialized)
struct WarmEngineTests {
    @Test("four tasks on one slot run in one process (task_index 1…4); the fifth, past --engine-reuse 4, in a new one")
    func reuse() async throws {
        let slot = try Slot(reuse: 4, engine: testEngine)
        defer { slot.stop() }
        var pids: [Int32] = []
        for k in 1...5 {
            let ended = try await slot.run(["value": .number(Double(k))])
            #expect(ended.result != nil, "task \(k): \(ended.what)")
            #expect(ended.mode == "serve")
            #expect(ended.taskIndex == (k <= 4 ? k : 1), "task \(k) ran as index \(ended.taskIndex ?? -1)")
            #expect(ended.result?.metrics["accuracy"].flatMap { $0 } == Double(k))
            pids.append(try #require(ended.pid))
        }
        #expect(Set(pids.prefix(4)).count == 1, "pids \(pids)")
        #expect(pids[4] != pids[0])
        #expect(await within(12) { isGone(pids[0]) }, "the process past its reuse count still runs")
    }

    @Test("without a pool (--engine-reuse 0, or no serve) each task runs in a process of its own, mode run")
    func noPool() async throws {
        let slot = try Slot(reuse: nil, engine: testEngine)
        let a = try await slot.run(), b = try await slot.run()
        #expect(a.mode == "run" && b.mode == "run")
        #expect(a.pid != nil && a.pid != b.pid)
        #expect(!WorkerNode.servesWarm(["serve": ["version": 1]], reuse: 0))
        #expect(WorkerNode.servesWarm(["serve": ["version": 1]], reuse: 1))
        #expect(!WorkerNode.servesWarm(["serve": ["version": 2]], reuse: 100))
        #expect(!WorkerNode.servesWarm(["engine": "x"], reuse: 100))
        #expect(!WorkerNode.servesWarm(nil, reuse: 100))
        #expect(!WorkerNode.servesWarm(["serve": ["version": 1]], reuse: 100, isolate: true))
    }

    @Test("a failed task (exit 3) and a task whose end says recycle each put the next task in a fresh process")
    func replacedAfterFailureAndRecycle() async throws {
        let slot = try Slot(reuse: 100, engine: testEngine)
        defer { slot.stop() }
        let first = try await slot.run()
        let failing = try await slot.run(["exit_code": 3])
        #expect(failing.failed?.exitCode == 3, "\(failing.what)")
        #expect(failing.failed?.retryable == true)
        let afterFailure = try await slot.run(["recycle": true])
        #expect(afterFailure.result != nil, "\(afterFailure.what)")
        #expect(afterFailure.pid != first.pid && afterFailure.taskIndex == 1)
        let afterRecycle = try await slot.run()
        #expect(afterRecycle.pid != afterFailure.pid && afterRecycle.taskIndex == 1)
        let p = try #require(first.pid)
        #expect(await within(12) { isGone(p) })
    }

    @Test("an artifact whose file does not match its announced SHA-256 fails the attempt and retires the process")
    func artifactLieRetires() async throws {
        let slot = try Slot(reuse: 100, engine: testEngine)
        defer { slot.stop() }
        let first = try await slot.run()
        let lying = try await slot.run(["artifact_bytes": 64, "artifact_sha": "wrong"])
        #expect(lying.failed?.error.contains("does not match the SHA-256") == true, "\(lying.what)")
        let next = try await slot.run()
        #expect(next.result != nil, "\(next.what)")
        #expect(next.pid != first.pid && next.taskIndex == 1, "the lying engine's process ran the next task")
        let p = try #require(first.pid)
        #expect(await within(12) { isGone(p) }, "the lying engine's process still runs")
    }

    @Test("the stderr tail of a task holds that task's stderr only")
    func stderrPerTask() async throws {
        let slot = try Slot(reuse: 100, engine: testEngine)
        defer { slot.stop() }
        _ = try await slot.run(["value": 11])
        let failing = try await slot.run(["value": 22, "exit_code": 3])
        let tail = try #require(failing.failed?.stderrTail, "\(failing.what)")
        #expect(tail.contains("'value': 22"), "\(tail)")
        #expect(!tail.contains("'value': 11"), "the previous task's stderr leaked into this one: \(tail)")
    }

    @Test("a stopped task (time limit, cancel) stops the whole group; the next task gets a fresh process")
    func stoppedTask() async throws {
        let slot = try Slot(reuse: 100, engine: liar, killGrace: 1)
        defer { slot.stop() }
        let first = try await slot.run()
        let (job, ended) = slot.start(["lie": "hang"])
        // Wait for the task to be running: its child (`sleep 60`) is there.
        var children: [Int32] = []
        _ = await within(5) {
            children = (try? childPids(of: first.pid ?? -1)) ?? []
            return !children.isEmpty
        }
        #expect(!children.isEmpty, "the hanging task started no child")
        job.cancel(reason: "it ran longer than the stage's timeout of 1 s", retryable: true)
        #expect(await within(5) { ended.value != nil })
        let stopped = try #require(ended.value)
        #expect(stopped.failed?.error.hasPrefix("cancelled:") == true, "\(stopped.what)")
        #expect(stopped.failed?.retryable == true)
        let engine = try #require(first.pid)
        #expect(await within(3) { isGone(engine) && children.allSatisfy(isGone) }, "children \(children)")
        let next = try await slot.run()
        #expect(next.result != nil && next.pid != first.pid && next.taskIndex == 1, "\(next.what)")
    }

    @Test(
        "a lying stream fails the attempt with a reason (or, after the end, spoils the process), and the next task gets a fresh process",
        arguments: [
            ("exit_without_end", "before its `end` line", true),
            ("exit_mid", "exited with status 3 before its `end` line", true),
            ("close_stdout", "closed its stdout", false),
            ("bad_exit", "`exit` is not an integer 0 to 255", false),
            ("string_exit", "`exit` is not an integer 0 to 255", false),
            ("bad_recycle", "`recycle` is not true or false", false),
            ("line_after_end", "", true),
            ("double_end", "", true),
            ("late_line", "", true),
        ])
    func lyingStream(lie: String, reason: String, retryable: Bool) async throws {
        let slot = try Slot(reuse: 100, engine: liar, killGrace: 1)
        defer { slot.stop() }
        let first = try await slot.run()
        #expect(first.result != nil && first.taskIndex == 1, "\(first.what)")
        let lying = try await slot.run(["lie": .string(lie)])
        if reason.isEmpty {
            #expect(lying.result != nil, "\(lie): \(lying.what)")
            #expect(lying.pid == first.pid)
            if lie == "late_line" { try await Task.sleep(nanoseconds: 600_000_000) }
        } else {
            let failed = try #require(lying.failed, "\(lie): the attempt succeeded")
            #expect(failed.error.contains(reason), "\(lie): \(failed.error)")
            #expect(failed.retryable == retryable, "\(lie): \(failed.error)")
        }
        let next = try await slot.run()
        #expect(next.result != nil, "\(lie): \(next.what)")
        #expect(next.pid != first.pid && next.taskIndex == 1, "\(lie): the next task ran in the spoiled process")
        let old = try #require(first.pid)
        #expect(await within(5) { isGone(old) }, "\(lie): the replaced process still runs")
    }

    @Test("an engine that closed its stdin: the next task line meets EPIPE, the worker lives, the task is retryable")
    func closedStdin() async throws {
        let slot = try Slot(reuse: 100, engine: liar, killGrace: 1)
        defer { slot.stop() }
        let first = try await slot.run(["lie": "close_stdin"])
        #expect(first.result != nil, "\(first.what)")
        let refused = try await slot.run()
        let failed = try #require(refused.failed, "the task line went to a closed stdin, yet it succeeded")
        #expect(failed.error.contains("could not give the task"), "\(failed.error)")
        #expect(failed.retryable)
        let next = try await slot.run()
        #expect(next.result != nil && next.pid != first.pid, "\(next.what)")
    }

    @Test("shutdown closes each idle engine's stdin and reaps it: no warm process outlives the pool")
    func shutdown() async throws {
        let slot = try Slot(reuse: 100, engine: testEngine)
        let ended = try await slot.run()
        let pid = try #require(ended.pid)
        #expect(slot.pool?.pids == [pid])
        let started = wallClock()
        slot.stop()
        #expect(isGone(pid), "pid \(pid) still runs after shutdown returned")
        #expect(wallClock() - started < EngineProcess.defaultKillGrace, "it exited on stdin EOF, not on a signal")
        #expect(slot.pool?.pids == [])
    }

    @Test("Assign.isolate: absent is false, true round-trips, anything but a boolean is refused")
    func assignIsolate() throws {
        let plain = Assign(
            attemptId: "a1", taskId: "t1", sweep: "sw", stage: "train", engine: "e", params: [:], method: nil,
            data: nil, measure: nil, inputs: [:], device: "cpu")
        #expect(plain.json["isolate"] == nil)
        var isolated = plain
        isolated.isolate = true
        let decoded = try Codec.parse(Codec.frames(.assign, isolated)).decode(Assign.self)
        #expect(decoded.isolate)
        #expect(try !Codec.parse(Codec.frames(.assign, plain)).decode(Assign.self).isolate)
        guard case .object(var fields) = plain.json else { return }
        fields["isolate"] = "yes"
        #expect(throws: (any Error).self) { try Assign(fields: Fields(.object(fields), message: "assign")) }
    }

    @Test("the end line's checks")
    func endLine() {
        func parse(_ text: String) -> String {
            switch WarmEngine.endLine(Array(text.utf8)[...]) {
            case nil: "none"
            case .success(let end): "exit \(end.exit) recycle \(end.recycle)"
            case .failure(let problem): "bad: \(problem)"
            }
        }
        #expect(parse(#"{"event":"end","exit":0}"#) == "exit 0 recycle false")
        #expect(parse(#"{"event":"end","exit":255,"recycle":true}"#) == "exit 255 recycle true")
        #expect(parse(#"{"event":"end","exit":256}"#).hasPrefix("bad"))
        #expect(parse(#"{"event":"end","exit":-1}"#).hasPrefix("bad"))
        #expect(parse(#"{"event":"end","exit":1.5}"#).hasPrefix("bad"))
        #expect(parse(#"{"event":"end"}"#).hasPrefix("bad"))
        #expect(parse(#"{"event":"end","exit":0,"recycle":1}"#).hasPrefix("bad"))
        #expect(parse(#"{"event":"progress","note":"end"}"#) == "none")
        #expect(parse(#"{"event":"result","metrics":{"end":1}}"#) == "none")
    }
}

/// The pids whose parent is `pid` (from /proc).
private func childPids(of pid: Int32) throws -> [Int32] {
    let names = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }
    return names.filter { p in
        guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
            let paren = stat.range(of: ") ", options: .backwards)
        else { return false }
        let fields = stat[paren.upperBound...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid
    }
}
