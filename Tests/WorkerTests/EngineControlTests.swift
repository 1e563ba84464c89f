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

// Misbehaving engines (Tests/Fixtures/engines/) run as real subprocesses by a `Job` or an
// `EngineProcess`, with no coordinator: each test states the bound it checks.

private let enginesDir: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()
    url.deleteLastPathComponent()
    return url.appendingPathComponent("Fixtures/engines").path
}()

private func fixture(_ name: String) -> EngineCommand {
    EngineCommand(executable: "python3", arguments: ["\(enginesDir)/\(name)"])
}

/// The worker's grace between SIGTERM and SIGKILL, as `Job.cancel` uses it.
private let grace = EngineProcess.defaultKillGrace

/// True once `pid` has exited (a zombie waiting for init to reap it counts as gone). Also used by
/// WarmEngineTests.
func isGone(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 { return errno == ESRCH }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let paren = stat.range(of: ") ", options: .backwards)
    else { return true }
    return stat[paren.upperBound...].hasPrefix("Z")
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; true if it held.
func within(_ timeout: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = wallClock() + timeout
    while wallClock() < deadline {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return condition()
}

/// Kills what a test left behind (a test failing on a slow bound must not leave `sleep 60`s).
private func cleanUp(_ pids: [Int32?]) {
    for pid in pids.compactMap({ $0 }) where !isGone(pid) { kill(pid, SIGKILL) }
}

/// One attempt run by a real `Job` on its own thread, as a worker runs it.
private final class JobRun: Sendable {
    let job: Job
    let cache: String
    let progress = Mutex<[JSONValue]>([])
    let finished = Mutex<(type: MessageType, frames: [[UInt8]], at: Double)?>(nil)

    init(engine: String, params: [String: JSONValue] = [:]) throws {
        cache =
            FileManager.default.temporaryDirectory.appendingPathComponent("sg-ec-\(UUID().uuidString.prefix(8))").path
        let attemptId = "a\(UUID().uuidString.prefix(8).lowercased())"
        let assign = Assign(
            attemptId: attemptId, taskId: "t-\(attemptId)", sweep: "sw", stage: "train", engine: "e",
            params: params, method: nil, data: nil, measure: nil, inputs: [:], device: "cpu")
        job = Job(assign: assign, slot: SlotInfo(index: 0, device: "cpu"), startedAt: wallClock())
        let config = WorkerConfig(
            coordinator: "tcp://127.0.0.1:9", workerId: "w", host: "h",
            slots: [SlotInfo(index: 0, device: "cpu")], engines: ["e": fixture(engine)],
            cacheDirectory: cache, describeEngines: false)
        let context = try Context()
        Thread.detachNewThread { [self] in
            job.run(config: config, context: context, dataEndpoint: "tcp://127.0.0.1:9") { output in
                switch output {
                case .progress(let p): self.progress.withLock { $0.append(p.event) }
                case .finished(_, let type, let frames): self.finished.withLock { $0 = (type, frames, wallClock()) }
                }
            }
        }
    }

    var isFinished: Bool { finished.withLock { $0 != nil } }
    var finishedAt: Double? { finished.withLock { $0?.at } }

    /// The first progress event, once the engine printed it (within `timeout`).
    func firstProgress(timeout: Double = 20) async throws -> JSONValue {
        _ = await within(timeout) { progress.withLock { !$0.isEmpty } }
        return try #require(progress.withLock { $0.first }, "the engine did not start within \(timeout) s")
    }

    func failed() throws -> TaskFailed {
        let end = try #require(finished.withLock { $0 })
        #expect(end.type == .failed)
        return try Codec.parse(end.frames).decode(TaskFailed.self)
    }

    func result() throws -> TaskResult {
        let end = try #require(finished.withLock { $0 })
        if end.type == .failed {
            let failed = try Codec.parse(end.frames).decode(TaskFailed.self)
            Issue.record("the attempt failed: \(failed.error); stderr: \(failed.stderrTail ?? "")")
        }
        return try Codec.parse(end.frames).decode(TaskResult.self)
    }

    /// Files in the worker's artifact cache (nothing but `partial/` when no artifact was kept).
    var cachedArtifacts: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(cache)/artifacts")) ?? []).filter { $0 != "partial" }
    }
}

private func pid(_ event: JSONValue, _ key: String) -> Int32? {
    event[key]?.doubleValue.map { Int32($0) }
}

@Suite("Engine control: misbehaving engines cannot keep a slot, flood the worker or escape their task")
struct EngineControlTests {
    @Test("a hanging engine that ignores SIGTERM is killed: cancel frees the slot within grace + 1 s")
    func hangingEngine() async throws {
        let run = try JobRun(engine: "hang.py")
        let started = try await run.firstProgress()
        let engine = pid(started, "pid")
        defer { cleanUp([engine]) }
        let cancelledAt = wallClock()
        run.job.cancel(reason: "test")
        #expect(await within(grace + 1) { run.isFinished }, "the slot was still held \(grace + 1) s after the cancel")
        if let at = run.finishedAt { #expect(at - cancelledAt <= grace + 1) }
        #expect(try run.failed().error.hasPrefix("cancelled: test"))
        #expect(await within(1) { engine.map(isGone) ?? false }, "the engine outlived its attempt")
    }

    @Test("cancelling an engine whose child holds its stdout kills the whole group within grace + 1 s")
    func hangingEngineWithChild() async throws {
        let run = try JobRun(engine: "hang_with_child.py")
        let started = try await run.firstProgress()
        let engine = pid(started, "pid"), child = pid(started, "child")
        defer { cleanUp([engine, child]) }
        #expect(child != nil)
        run.job.cancel(reason: "test")
        #expect(await within(grace + 1) { run.isFinished }, "the slot was still held \(grace + 1) s after the cancel")
        #expect(
            await within(0.5) { (child.map(isGone) ?? false) && (engine.map(isGone) ?? false) },
            "the engine's child (pid \(child ?? -1)) outlived the cancel")
    }

    @Test("an engine that exits after its result, leaving a child with its stdout, ends the attempt within 1 s")
    func childOutlivesEngine() async throws {
        let run = try JobRun(engine: "orphan_after_result.py")
        let started = try await run.firstProgress()
        let child = pid(started, "child")
        defer { cleanUp([child]) }
        #expect(await within(10) { run.isFinished }, "the attempt was still running 10 s later (its child sleeps 60 s)")
        let result = try run.result()
        let exitedAt = try #require(result.details["exiting_at"]?.doubleValue)
        if let at = run.finishedAt {
            #expect(at - exitedAt < 1, "the attempt ended \(at - exitedAt) s after the engine")
        }
        #expect(result.metrics["accuracy"] == 1.0)
        #expect(
            await within(1) { child.map(isGone) ?? false }, "the engine's child (pid \(child ?? -1)) was left running")
    }

    @Test(
        "a child that left the engine's group still holding stdout cannot keep the run going: it ends within drain (0.5 s) + 0.5 s of the engine's exit"
    )
    func escapedChild() async throws {
        let engine = try EngineProcess(
            command: fixture("escaped_child.py"), arguments: ["run"], environment: [:],
            directory: FileManager.default.temporaryDirectory.path)
        let first = Mutex<JSONValue?>(nil)
        let ended = Mutex<(outcome: EngineProcess.Outcome, at: Double)?>(nil)
        Thread.detachNewThread {
            let outcome = engine.readLines { line in first.withLock { $0 = $0 ?? (try? JSONValue.parse(line)) } }
            ended.withLock { $0 = (outcome, wallClock()) }
        }
        #expect(await within(20) { first.withLock { $0 != nil } }, "the engine printed no result")
        let details = first.withLock { $0?["details"] }
        let child = details?["child"]?.doubleValue.map { Int32($0) }
        defer { cleanUp([child]) }
        let exitedAt = try #require(details?["exiting_at"]?.doubleValue)
        #expect(await within(5) { ended.withLock { $0 != nil } }, "still reading 5 s after the engine's result")
        guard let end = ended.withLock({ $0 }) else { return }
        #expect(end.outcome.exitCode == 0)
        #expect(end.at - exitedAt < 1, "the run ended \(end.at - exitedAt) s after the engine exited")
    }

    @Test("a 50 MB stdout line is refused within 5 s with a reason naming the 1 MiB cap")
    func longLine() async throws {
        let start = wallClock()
        let run = try JobRun(engine: "long_line.py")
        defer { if !run.isFinished { run.job.cancel(reason: "test over") } }
        #expect(await within(5) { run.isFinished }, "still reading the line after 5 s")
        guard let at = run.finishedAt else { return }
        #expect(at - start < 5)
        let failed = try run.failed()
        #expect(failed.error.contains("1 MiB"), "\(failed.error)")
        #expect(!failed.retryable)
    }

    @Test("two result events fail the attempt, not retryable (bound: 10 s)")
    func twoResults() async throws {
        let run = try JobRun(engine: "two_results.py")
        #expect(await within(10) { run.isFinished })
        guard run.isFinished else { return }
        let failed = try run.failed()
        #expect(failed.error.contains("result"), "\(failed.error)")
        #expect(!failed.retryable)
    }

    @Test(
        "stdout lines that are not events (not JSON, an unknown kind) are kept in the failure's stderr tail (bound: 10 s)"
    )
    func strayLinesKept() async throws {
        let run = try JobRun(engine: "chatty.py")
        #expect(await within(10) { run.isFinished })
        guard run.isFinished else { return }
        let failed = try run.failed()
        #expect(failed.exitCode == 3)
        let tail = failed.stderrTail ?? ""
        #expect(tail.contains("chatty engine: giving up"))
        #expect(tail.contains("2 stdout line(s)"), "\(tail)")
        #expect(tail.contains("loading weights from a library") && tail.contains("checkpointed"), "\(tail)")
    }

    @Test(
        "an artifact that is not a regular file inside the work directory fails the attempt; the file outside is untouched (bound: 10 s)",
        arguments: ["absolute", "parent", "symlink", "fifo"])
    func artifactOutsideWorkdir(mode: String) async throws {
        let outsideDir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sg-outside-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: outsideDir, withIntermediateDirectories: true)
        let outside = "\(outsideDir)/precious.txt"
        let content = Data("keep me where I am \(mode)\n".utf8)
        try content.write(to: URL(fileURLWithPath: outside))
        let run = try JobRun(
            engine: "artifact_outside.py",
            params: ["mode": .string(mode), "outside": .string(mode == "fifo" ? "" : outside)])
        defer { if !run.isFinished { run.job.cancel(reason: "test over") } }
        #expect(await within(10) { run.isFinished }, "the attempt was still running after 10 s")
        #expect(
            FileManager.default.contents(atPath: outside) == content,
            "the file outside the work directory was moved or changed")
        guard run.isFinished else { return }
        let failed = try run.failed()
        #expect(failed.error.contains("artifact"), "\(failed.error)")
        #expect(!failed.retryable)
        #expect(run.cachedArtifacts.isEmpty, "\(run.cachedArtifacts)")
    }

    @Test("an engine flooding stderr with 20 MB completes within 10 s and its stderr tail stays within 4 KiB")
    func stderrFlood() throws {
        let start = wallClock()
        let dir = FileManager.default.temporaryDirectory.path
        let engine = try EngineProcess(
            command: fixture("stderr_flood.py"), arguments: ["run"], environment: [:],
            directory: dir)
        var lines: [String] = []
        let ended = engine.readLines { lines.append($0) }
        #expect(wallClock() - start < 10)
        #expect(ended.exitCode == 0)
        #expect(lines.count == 1 && lines.first?.contains("\"result\"") == true)
        #expect(ended.stderrTail.utf8.count <= EngineProcess.tailBytes)
        #expect(ended.stderrTail.hasSuffix("END OF FLOOD\n"))
    }

    @Test(
        "an engine started from a thread with SIGTERM blocked still dies of SIGTERM, long before the SIGKILL (bound: 3 s)"
    )
    func sigtermBlockedInWorker() async throws {
        // Started on a thread of its own, so the blocked mask stays off the test's threads.
        let box = Mutex<Result<EngineProcess, any Error>?>(nil)
        Thread.detachNewThread {
            var mask = sigset_t()
            sigemptyset(&mask)
            sigaddset(&mask, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &mask, nil)
            let started = Result {
                try EngineProcess(
                    command: fixture("sleeper.py"), arguments: ["run"], environment: [:],
                    directory: FileManager.default.temporaryDirectory.path)
            }
            box.withLock { $0 = started }
        }
        #expect(await within(10) { box.withLock { $0 != nil } })
        let engine = try #require(try box.withLock { $0 }?.get())
        defer { kill(engine.pid, SIGKILL) }
        let ended = Mutex<EngineProcess.Outcome?>(nil)
        let first = Mutex<String?>(nil)
        Thread.detachNewThread {
            let outcome = engine.readLines { line in first.withLock { if $0 == nil { $0 = line } } }
            ended.withLock { $0 = outcome }
        }
        #expect(await within(20) { first.withLock { $0 != nil } })
        let announced = try JSONValue.parse(try #require(first.withLock { $0 }))
        #expect(announced["sig_blocked"]?.stringValue == "0000000000000000", "the engine started with signals blocked")
        engine.terminate(grace: 30)
        #expect(await within(3) { ended.withLock { $0 != nil } }, "SIGTERM did not end the engine within 3 s")
        #expect(ended.withLock { $0?.signal } == SIGTERM)
    }

    @Test("an engine sees none of the worker's descriptors (only 0, 1, 2) and runs in a session and group of its own")
    func descriptorsAndGroup() throws {
        // Descriptors the way a careless library opens them: inheritable.
        let leaked = open("/dev/null", O_RDONLY)
        var pipeEnds: [Int32] = [0, 0]
        pipe(&pipeEnds)
        defer { close(leaked); close(pipeEnds[0]); close(pipeEnds[1]) }
        #expect(leaked >= 3)
        let engine = try EngineProcess(
            command: fixture("probe.py"), arguments: ["run"], environment: [:],
            directory: FileManager.default.temporaryDirectory.path)
        var lines: [String] = []
        let ended = engine.readLines { lines.append($0) }
        #expect(ended.exitCode == 0, "\(ended.stderrTail)")
        let result = try JSONValue.parse(try #require(lines.first))
        let fds = try #require(result["details"]?["fds"]?.objectValue)
        #expect(fds.keys.sorted() == ["0", "1", "2"], "the engine inherited \(fds)")
        let details = try #require(result["details"])
        #expect(details["pgid"] == details["pid"], "the engine is not the leader of its own process group")
        #expect(details["sid"] == details["pid"], "the engine is not the leader of its own session")
    }
}
