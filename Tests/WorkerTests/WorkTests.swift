import SweepKit
import Testing
import Wire

@testable import Worker

@Suite("WorkerSession: running attempts and reporting them")
struct WorkTests {
    @Test("an assign starts a job on the first free slot and uses it up")
    func assignStartsJob() {
        var s = welcomedSession(slots: 2)
        s.received(assign("a1"), now: 1)
        #expect(
            s.drain() == [
                .log("running train m1 magnitude (a1) on cpu, time limit 86400 s"),
                .startJob("a1", slot: 0, dataEndpoint: dataAddress),
            ])
        #expect(s.freeSlots.map(\.index) == [1])
        s.received(assign("a2"), now: 1)
        #expect(s.drainQuiet() == [.startJob("a2", slot: 1, dataEndpoint: dataAddress)])
        #expect(s.freeSlots.isEmpty)
        #expect(s.runningAttemptIds == ["a1", "a2"])
    }

    @Test("an assign with no free slot is answered with a retryable failure and starts nothing")
    func noFreeSlot() throws {
        var s = welcomedSession(slots: 1)
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.received(assign("a2"), now: 1)
        let effects = s.drainEffects()
        #expect(effects.map(Seen.init) == [.failed("a2", error: "worker w1 had no free slot", credit: 0)])
        guard case .send(.failed, let frames) = effects.first else { return }
        #expect(try Codec.parse(frames).decode(TaskFailed.self).retryable)
        #expect(s.runningAttemptIds == ["a1"])
        #expect(s.unacknowledged.isEmpty, "a refusal is not a result to keep")
    }

    @Test("assigns before a welcome and a second assign of a running attempt are ignored")
    func ignoredAssigns() {
        var s = makeSession()
        s.start(now: 0)
        _ = s.drainEffects()
        s.received(assign("a1"), now: 0.1)
        #expect(s.drain() == [])
        s.received(welcome(), now: 0.2)
        s.received(assign("a1"), now: 0.3)
        _ = s.drainEffects()
        s.received(assign("a1"), now: 0.4)
        #expect(s.drain() == [])
        #expect(s.freeSlots.count == 1)
    }

    @Test(
        "a finished job's result goes out with a ready credit, is kept until acknowledged, resent after a reconnect and welcome, and forgotten on ack"
    )
    func resultLifecycle() {
        var s = welcomedSession(slots: 2, deadAfter: 5)
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 2)
        #expect(s.drain() == [.log("finished a1 in 1 s"), .result("a1", credit: 0), .ready(1)])
        #expect(s.freeSlots.map(\.index) == [0, 1])
        #expect(s.unacknowledged.map(\.attemptId) == ["a1"])

        // The coordinator goes silent before acknowledging: after the reconnect and the new
        // welcome the result goes again, and the welcome's ready counts the free slots.
        s.tick(now: 7.5)
        #expect(s.drainQuiet().contains(.reconnect))
        s.received(welcome(), now: 7.6)
        #expect(s.drainQuiet() == [.result("a1", credit: 0), .ready(2)])

        s.received(.ack(Ack(attemptId: "a1", outcome: .stored)), now: 7.7)
        #expect(s.unacknowledged.isEmpty)
        s.received(welcome(), now: 7.8)
        #expect(s.drainQuiet() == [.ready(2)], "an acknowledged result is not sent again")
    }

    @Test("any ack outcome forgets the result, failures included")
    func anyAckForgets() {
        var s = welcomedSession(slots: 3)
        for id in ["a1", "a2", "a3"] { s.received(assign(id), now: 1) }
        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 2)
        s.jobFinished(
            attemptId: "a2", type: .failed, frames: failedFrames("a2", error: "engine exited with status 1"),
            now: 2)
        s.jobFinished(attemptId: "a3", type: .result, frames: resultFrames("a3"), now: 2)
        _ = s.drainEffects()
        #expect(s.unacknowledged.map(\.attemptId) == ["a1", "a2", "a3"])
        s.received(.ack(Ack(attemptId: "a2", outcome: .recorded)), now: 3)
        s.received(.ack(Ack(attemptId: "a3", outcome: .refused)), now: 3)
        #expect(s.unacknowledged.map(\.attemptId) == ["a1"])
        s.received(.ack(Ack(attemptId: "a1", outcome: .duplicate)), now: 3)
        #expect(s.unacknowledged.isEmpty)
    }

    @Test("an assign for the null engine is answered at once with credit 1, and resent without credit")
    func nullEngine() {
        var s = welcomedSession(slots: 1)
        s.received(assign("n1", engine: "null"), now: 1)
        #expect(s.drain() == [.result("n1", credit: 1)])
        #expect(s.runningAttemptIds.isEmpty)
        #expect(s.freeSlots.count == 1, "the null engine uses no slot")
        // With the only slot busy, the null engine still answers.
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.received(assign("n2", engine: "null"), now: 1)
        #expect(s.drain() == [.result("n2", credit: 1)])

        s.received(.reject(Reject(.unknownWorker, "unknown worker: send hello")), now: 2)
        s.received(welcome(), now: 2.1)
        #expect(
            s.drainQuiet() == [
                .hello(running: ["a1"], slots: 1), .result("n1", credit: 0),
                .result("n2", credit: 0),
            ])
    }

    @Test("a job running longer than --task-timeout is cancelled, once")
    func taskTimeout() {
        var s = welcomedSession(slots: 2, taskTimeout: 60, heartbeatInterval: 100, deadAfter: 1000)
        s.tick(now: 0)
        s.received(assign("a1"), now: 10)
        s.received(assign("a2"), now: 30)
        _ = s.drainEffects()
        s.tick(now: 70)
        #expect(s.drain() == [])
        s.tick(now: 70.5)
        let reason = "it ran longer than the worker's --task-timeout of 60 s"
        #expect(s.drainQuiet() == [.cancelJob("a1", reason: reason)])
        s.tick(now: 80)
        #expect(s.drain() == [], "asked once; the job reports how it ended")
        s.tick(now: 91)
        #expect(s.drainQuiet() == [.cancelJob("a2", reason: reason)])
        #expect(s.runningAttemptIds == ["a1", "a2"], "still running until the job says it ended")
    }

    @Test("a cancel from the coordinator stops that attempt's job and nothing else")
    func coordinatorCancel() {
        var s = welcomedSession()
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.received(.cancel(Cancel(attemptId: "a1", reason: "the sweep was cancelled")), now: 2)
        #expect(s.drainQuiet() == [.cancelJob("a1", reason: "the sweep was cancelled")])
        s.received(.cancel(Cancel(attemptId: "zz", reason: "not ours")), now: 2)
        #expect(s.drain() == [])
    }

    @Test("progress goes out only while welcomed")
    func progressWhileWelcomed() {
        var s = welcomedSession()
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.progress(TaskProgress(attemptId: "a1", event: ["event": "progress", "step": 1]), now: 1.5)
        #expect(s.drain() == [.progress("a1")])
        s.received(.reject(Reject(.unknownWorker, "unknown worker")), now: 2)
        _ = s.drainEffects()
        s.progress(TaskProgress(attemptId: "a1", event: ["event": "progress", "step": 2]), now: 2.5)
        #expect(s.drain() == [])
    }
}

@Suite("WorkerSession: stopping")
struct ShutdownTests {
    @Test("a cancel for shutdown or a time limit is retryable; one from the coordinator is not")
    func cancelRetryability() {
        var s = welcomedSession(slots: 2, taskTimeout: 10)
        s.received(assign("a1"), now: 1)
        s.received(assign("a2"), now: 1)
        _ = s.drainEffects()
        s.received(.cancel(Cancel(attemptId: "a1", reason: "the sweep was cancelled")), now: 2)
        s.tick(now: 20)
        let flags = s.drainEffects().compactMap { effect -> Bool? in
            if case .cancelJob(_, _, let retryable) = effect { return retryable }
            return nil
        }
        #expect(flags == [false, true])
    }

    @Test("stop now cancels running jobs, and bye goes once none runs, then finished")
    func stopWithJobs() {
        var s = welcomedSession(slots: 2)
        s.received(assign("a1"), now: 1)
        s.received(assign("a2"), now: 1)
        _ = s.drainEffects()
        s.stopNow(now: 5)
        let reason = "the worker is shutting down"
        #expect(s.drainQuiet() == [.cancelJob("a1", reason: reason), .cancelJob("a2", reason: reason)])
        s.stopNow(now: 5.1)
        s.stopRequested(now: 5.1)
        #expect(s.drain() == [])

        s.jobFinished(attemptId: "a1", type: .failed, frames: failedFrames("a1", error: "cancelled: \(reason)"), now: 6)
        #expect(
            s.drainQuiet() == [.failed("a1", error: "cancelled: \(reason)", credit: 0)],
            "no ready while stopping, and a2 still runs")
        s.jobFinished(attemptId: "a2", type: .failed, frames: failedFrames("a2", error: "cancelled: \(reason)"), now: 7)
        #expect(s.drainQuiet() == [.failed("a2", error: "cancelled: \(reason)", credit: 0), .bye, .finished])
        #expect(s.hasEnded)
        s.tick(now: 100)
        s.received(welcome(), now: 100)
        #expect(s.drain() == [])
    }

    @Test("stop with nothing running says bye at once")
    func stopIdle() {
        var s = welcomedSession()
        s.stopRequested(now: 1)
        #expect(s.drainQuiet() == [.bye, .finished])
    }

    @Test("an attempt assigned while draining or stopping is refused with a retryable failure and starts nothing")
    func assignWhileStopping() throws {
        var s = welcomedSession()
        s.received(assign("a1"), now: 1)
        s.stopRequested(now: 2)
        _ = s.drainEffects()
        s.received(assign("a2"), now: 2.1)
        let effects = s.drainEffects()
        let error = "worker w1 is draining (shutting down): it takes no new work"
        #expect(effects.map(Seen.init).filter { !$0.isLog } == [.failed("a2", error: error, credit: 0)])
        for case .send(.failed, let frames) in effects {
            #expect(try Codec.parse(frames).decode(TaskFailed.self).retryable)
        }
        #expect(s.runningAttemptIds == ["a1"])
        s.stopNow(now: 3)
        _ = s.drainEffects()
        s.received(assign("a3"), now: 3.1)
        #expect(s.drainQuiet() == [.failed("a3", error: error, credit: 0)])
        #expect(s.runningAttemptIds == ["a1"])
    }
}
