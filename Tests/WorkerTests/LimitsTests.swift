import SweepKit
import Testing
import Wire

@testable import Worker

/// The `failed` message a job produces for an attempt the session cancelled (as `Job` does:
/// "cancelled: REASON", retryable as asked).
func cancelledFrames(_ attemptId: String, reason: String, retryable: Bool = true) -> [[UInt8]] {
    Codec.frames(
        .failed,
        TaskFailed(
            attemptId: attemptId, taskId: "task-\(attemptId)", error: "cancelled: \(reason)",
            exitCode: nil, stderrTail: "engine stderr", retryable: retryable))
}

extension WorkerSession {
    /// The `cancelJob` effects drained, with their retryable flags.
    mutating func drainCancels() -> [(id: String, reason: String, retryable: Bool)] {
        drainEffects().compactMap {
            if case .cancelJob(let id, let reason, let retryable) = $0 { return (id, reason, retryable) }
            return nil
        }
    }
}

/// The `failed` messages among the effects, decoded.
func sentFailures(_ effects: [WorkerEffect]) throws -> [TaskFailed] {
    try effects.compactMap {
        guard case .send(.failed, let frames) = $0 else { return nil }
        return try Codec.parse(frames).decode(TaskFailed.self)
    }
}

@Suite("WorkerSession: time limits")
struct TimeLimitTests {
    @Test("the effective limit is the smaller of the stage's timeout (from the assign) and the worker's --task-timeout")
    func effectiveLimit() {
        var s = welcomedSession(slots: 3, taskTimeout: 100, heartbeatInterval: 1000, deadAfter: 10_000)
        s.received(assign("short", timeout: 30), now: 0)
        s.received(assign("long", timeout: 500), now: 0)
        s.received(assign("none"), now: 0)
        _ = s.drainEffects()
        guard case .assign(let a) = assign("x", timeout: 30) else { return }
        #expect(s.effectiveTimeout(of: a).seconds == 30)

        s.tick(now: 30)
        #expect(s.drainCancels().isEmpty, "not before the limit has passed")
        s.tick(now: 30.5)
        let stage = s.drainCancels()
        #expect(stage.map(\.id) == ["short"])
        #expect(stage.first?.reason == "it ran longer than the stage's timeout of 30 s")
        #expect(stage.first?.retryable == true)

        s.tick(now: 100.5)
        let worker = s.drainCancels()
        #expect(worker.map(\.id) == ["long", "none"], "a stage timeout longer than --task-timeout does not extend it")
        #expect(
            worker.allSatisfy { $0.reason == "it ran longer than the worker's --task-timeout of 100 s" && $0.retryable }
        )
        s.tick(now: 200)
        #expect(s.drainCancels().isEmpty, "each limit asks once")
    }

    @Test("an engine that prints no event for --idle-timeout is stopped; each progress event restarts the count")
    func idleTimeout() {
        var s = welcomedSession(slots: 2, heartbeatInterval: 1000, deadAfter: 10_000, idleTimeout: 10)
        s.received(assign("a1"), now: 0)
        s.received(assign("a2"), now: 0)
        _ = s.drainEffects()
        s.progress(TaskProgress(attemptId: "a1", event: ["event": "progress", "step": 1]), now: 8)
        s.tick(now: 10.5)
        let first = s.drainCancels()
        #expect(first.map(\.id) == ["a2"])
        #expect(first.first?.reason == "no event from the engine for 10 s (the worker's --idle-timeout)")
        #expect(first.first?.retryable == true)
        s.tick(now: 18)
        #expect(s.drainCancels().isEmpty, "a1's last event was at 8")
        s.tick(now: 18.5)
        #expect(s.drainCancels().map(\.id) == ["a1"])
    }

    @Test("no idle limit without --idle-timeout")
    func noIdleTimeout() {
        var s = welcomedSession(slots: 1, taskTimeout: 1000, heartbeatInterval: 1000, deadAfter: 10_000)
        s.received(assign("a1"), now: 0)
        _ = s.drainEffects()
        s.tick(now: 999)
        #expect(s.drainCancels().isEmpty)
    }

    @Test(
        "a timed-out attempt's failure goes out as outcome `timeout`, retryable, with the limit that fired as its error"
    )
    func timeoutOutcome() throws {
        var s = welcomedSession(slots: 1, taskTimeout: 100, heartbeatInterval: 1000, deadAfter: 10_000)
        s.received(assign("a1", timeout: 5), now: 0)
        s.tick(now: 6)
        _ = s.drainEffects()
        let reason = "it ran longer than the stage's timeout of 5 s"
        s.jobFinished(
            attemptId: "a1", type: .failed, frames: cancelledFrames("a1", reason: reason, retryable: false),
            now: 7)
        let effects = s.drainEffects()
        let failed = try sentFailures(effects)
        #expect(failed.count == 1)
        #expect(failed.first?.outcome == .timeout)
        #expect(failed.first?.retryable == true)
        #expect(failed.first?.error == reason)
        #expect(failed.first?.stderrTail == "engine stderr", "what the job reported is kept")
        #expect(effects.map(Seen.init).contains(.ready(1)))
        // What is kept for a resend is the same message.
        let kept = try Codec.parse(s.unacknowledged[0].frames).decode(TaskFailed.self)
        #expect(kept.outcome == .timeout)
    }

    @Test("a result that arrives although a limit fired stays a result; other failures carry no outcome")
    func resultBeatsTimeout() throws {
        var s = welcomedSession(slots: 2, taskTimeout: 10, heartbeatInterval: 1000, deadAfter: 10_000)
        s.received(assign("a1"), now: 0)
        s.received(assign("a2"), now: 0)
        s.tick(now: 11)
        _ = s.drainEffects()
        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 11.5)
        #expect(s.drainQuiet() == [.result("a1", credit: 0), .ready(1)])

        var t = welcomedSession(slots: 1)
        t.received(assign("b1"), now: 0)
        _ = t.drainEffects()
        t.jobFinished(
            attemptId: "b1", type: .failed, frames: failedFrames("b1", error: "engine exited with status 1"),
            now: 1)
        #expect(try sentFailures(t.drainEffects()).map(\.outcome) == [nil])
    }
}

@Suite("WorkerSession: draining on SIGTERM")
struct DrainTests {
    @Test(
        "the first stop drains: running attempts finish, no ready is sent, and bye goes once their results are acknowledged"
    )
    func drainLetsAttemptsFinish() {
        var s = welcomedSession(slots: 2, heartbeatInterval: 1000, deadAfter: 10_000, drainGrace: 60)
        s.received(assign("a1"), now: 1)
        s.received(assign("a2"), now: 1)
        _ = s.drainEffects()
        s.stopRequested(now: 2)
        #expect(s.drainQuiet() == [], "nothing is cancelled")
        #expect(s.phase == .draining)
        s.tick(now: 30)
        #expect(s.drainQuiet() == [.heartbeat(["a1", "a2"])], "the attempts run on")

        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 31)
        #expect(s.drainQuiet() == [.result("a1", credit: 0)], "no ready while draining")
        s.jobFinished(attemptId: "a2", type: .result, frames: resultFrames("a2"), now: 32)
        #expect(s.drainQuiet() == [.result("a2", credit: 0)], "bye waits for the acks")
        s.received(.ack(Ack(attemptId: "a1", outcome: .stored)), now: 32.1)
        #expect(s.drainQuiet() == [])
        s.received(.ack(Ack(attemptId: "a2", outcome: .stored)), now: 32.2)
        #expect(s.drainQuiet() == [.bye, .finished])
        #expect(s.hasEnded)
    }

    @Test("when the drain grace passes, the attempts still running are cancelled as retryable, then bye")
    func drainGracePasses() {
        var s = welcomedSession(slots: 2, heartbeatInterval: 1000, deadAfter: 10_000, drainGrace: 60)
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.stopRequested(now: 10)
        s.tick(now: 69.9)
        #expect(s.drainCancels().isEmpty)
        s.tick(now: 70)
        let cancels = s.drainCancels()
        #expect(cancels.map(\.id) == ["a1"])
        #expect(cancels.first?.reason == WorkerSession.shutdownReason)
        #expect(cancels.first?.retryable == true)
        #expect(s.phase == .stopping)
        s.jobFinished(
            attemptId: "a1", type: .failed, frames: cancelledFrames("a1", reason: WorkerSession.shutdownReason),
            now: 71)
        #expect(
            s.drainQuiet() == [
                .failed("a1", error: "cancelled: the worker is shutting down", credit: 0), .bye,
                .finished,
            ], "stopping does not wait for acks")
    }

    @Test("a second stop during the drain cancels at once; a drain grace of 0 is the same as stopping now")
    func secondStop() {
        var s = welcomedSession(slots: 2, drainGrace: 60)
        s.received(assign("a1"), now: 1)
        s.received(assign("a2"), now: 1)
        _ = s.drainEffects()
        s.stopRequested(now: 2)
        _ = s.drainEffects()
        s.stopRequested(now: 2.5)
        #expect(s.drainCancels().isEmpty, "the same stop again changes nothing")
        s.stopNow(now: 3)
        let cancels = s.drainCancels()
        #expect(cancels.map(\.id) == ["a1", "a2"])
        #expect(cancels.allSatisfy { $0.retryable })

        var t = welcomedSession(slots: 1, drainGrace: 0)
        t.received(assign("b1"), now: 1)
        _ = t.drainEffects()
        t.stopRequested(now: 2)
        #expect(t.drainCancels().map(\.id) == ["b1"])
        #expect(t.phase == .stopping)
    }

    @Test("an attempt already stopped at a time limit is not cancelled again by the stop, and still reports timeout")
    func timeoutThenStop() throws {
        var s = welcomedSession(slots: 1, taskTimeout: 5, heartbeatInterval: 1000, deadAfter: 10_000)
        s.received(assign("a1"), now: 0)
        s.tick(now: 6)
        _ = s.drainEffects()
        s.stopNow(now: 7)
        #expect(s.drainCancels().isEmpty)
        s.jobFinished(
            attemptId: "a1", type: .failed,
            frames: cancelledFrames("a1", reason: "it ran longer than the worker's --task-timeout of 5 s"),
            now: 8)
        let effects = s.drainEffects()
        #expect(try sentFailures(effects).map(\.outcome) == [.timeout])
        #expect(effects.map(Seen.init).filter { !$0.isLog }.suffix(2) == [.bye, .finished])
    }
}

@Suite("WorkerSession: engines described after hello")
struct EnginesChangedTests {
    @Test(
        "an engine described after the welcome is offered with a new hello; no ready until its welcome, which counts the free slots"
    )
    func newHello() throws {
        var s = welcomedSession(slots: 2)
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        var engines = s.engines
        engines["sparsity"] = ["engine": "sparsity", "version": "1"]
        s.enginesChanged(engines, now: 2)
        let effects = s.drainEffects()
        #expect(effects.map(Seen.init) == [.hello(running: ["a1"], slots: 2)])
        guard case .send(.hello, let frames) = effects.first else { return }
        #expect(Set(try Codec.parse(frames).decode(Hello.self).engines.keys) == ["null", "sparsity"])
        #expect(s.welcomed, "the connection stays up: progress and results still go out")

        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 3)
        #expect(s.drainQuiet() == [.result("a1", credit: 0)], "no ready: the welcome will count this slot")
        s.received(welcome(), now: 3.1)
        #expect(s.drainQuiet() == [.result("a1", credit: 0), .ready(2)])
        s.enginesChanged(engines, now: 4)
        #expect(s.drain() == [], "the same engines: nothing to say")
    }

    @Test("engines described before any welcome go in a new hello")
    func beforeWelcome() {
        var s = makeSession()
        s.start(now: 0)
        _ = s.drainEffects()
        s.enginesChanged(["null": ["builtin": true], "test": ["engine": "test"]], now: 0.2)
        #expect(s.drain() == [.hello(running: [], slots: 2)])
        s.received(welcome(), now: 0.3)
        #expect(s.drainQuiet() == [.ready(2)])
    }
}
