import SweepKit
import Testing

@testable import Coordinator

/// The event loop's side of the metrics, driven by a real `Scheduler` with a hand-moved clock:
/// effects go through the tap in the order the loop translates them.
@Suite("The event loop's metrics tap")
struct MetricsTapTests {
    struct Loop {
        var scheduler = Scheduler(config: SchedulerConfig(deadAfter: 30, retryBackoff: 10), runId: "a")
        var tap = MetricsTap(metrics: CoordinatorMetrics(version: "x"))
        var departing: Set<String> = []
        var assigned: [String] = []

        /// What `EventLoop.flush` does with this turn's effects, then the send at `sentAt`.
        mutating func turn(now: Double, sentAt: Double? = nil) {
            scheduler.dispatch(now: now)
            for effect in scheduler.drainEffects() {
                tap.observe(effect, scheduler: scheduler, departing: departing, now: now)
                if case .assign(_, let attemptId, let taskId) = effect {
                    tap.assigned(taskId: taskId, attemptId: attemptId, stage: "train", now: now)
                    assigned.append(attemptId)
                }
                if case .workerDead(let id) = effect { departing.remove(id) }
            }
            tap.turnSent(at: sentAt ?? now, scheduler: scheduler)
        }

        mutating func hello(_ id: String, now: Double) {
            let registration = WorkerRegistration(identity: Array(id.utf8), key: nil, host: "h", info: .null)
            _ = scheduler.workerHello(
                id: id, registration: registration,
                capabilities: WorkerCapabilities(engines: ["null"], hasGPU: false, hasCPU: true, slots: 1),
                running: [], now: now)
            tap.workerJoined(id)
        }
    }

    @Test("dispatch latency runs from ready (or the end of a retry backoff) to the send")
    func dispatchLatencyAndDurations() {
        var loop = Loop()
        loop.scheduler.addSweep(
            name: "sw", engine: "null", device: "any", retries: 1, cancelled: false,
            tasks: [
                TaskSeed(
                    id: "t1", sweep: "sw", stage: "train", priority: 1, state: .pending, attemptsUsed: 0, inputs: [])
            ],
            now: 0)
        loop.turn(now: 0)  // t1 becomes ready at 0: no worker yet
        loop.hello("w1", now: 2)
        loop.scheduler.workerReady(id: "w1", credits: 1, now: 2)
        loop.turn(now: 2, sentAt: 2.5)  // assigned at 2, sent at 2.5: latency 2.5
        #expect(loop.assigned == ["a-1"])
        // It fails, retryably: ready again, but not before the 10 s backoff ends at 15.
        _ = loop.scheduler.failureArrived(
            attemptId: "a-1", from: "w1", FailureReport(error: "boom", exitCode: 1, retryable: true), now: 5)
        loop.scheduler.workerReady(id: "w1", credits: 1, now: 5)
        loop.turn(now: 5)
        #expect(loop.assigned == ["a-1"])
        loop.scheduler.workerSeen(id: "w1", now: 16)
        loop.scheduler.tick(now: 16)
        loop.turn(now: 16, sentAt: 16.25)  // dispatchable from 15, sent at 16.25: latency 1.25
        #expect(loop.assigned == ["a-1", "a-2"])
        _ = loop.scheduler.resultArrived(attemptId: "a-2", from: "w1", now: 20)
        loop.turn(now: 20, sentAt: 21)

        let e = Exposition(loop.tap.metrics.exposition())
        let d = "sparsegrid_dispatch_latency_seconds"
        #expect(e["\(d)_count"] == 2)
        #expect(e["\(d)_sum"] == 3.75, "2.5 + 1.25; not 2.5 + 11.25 (the backoff is not dispatch latency)")
        #expect(e["sparsegrid_attempts_total{outcome=\"failed\"}"] == 1)
        #expect(e["sparsegrid_attempts_total{outcome=\"succeeded\"}"] == 1)
        #expect(e["sparsegrid_task_duration_seconds_count{stage=\"train\"}"] == 1)
        #expect(e["sparsegrid_task_duration_seconds_sum{stage=\"train\"}"] == 4, "assigned at 16, result at 20")
        #expect(e["sparsegrid_tasks{state=\"succeeded\"}"] == 1)
        #expect(e["sparsegrid_tasks{state=\"ready\"}"] == 0)
        #expect(e["sparsegrid_queue_depth"] == 0)
    }

    @Test("the queue depth leaves out tasks waiting out a retry backoff, and counts them once it ends")
    func queueDepthAndBackoff() {
        var loop = Loop()
        loop.scheduler.addSweep(
            name: "sw", engine: "null", device: "any", retries: 1, cancelled: false,
            tasks: ["t1", "t2"].map {
                TaskSeed(id: $0, sweep: "sw", stage: "train", priority: 1, state: .pending, attemptsUsed: 0, inputs: [])
            }, now: 0)
        loop.hello("w1", now: 0)
        loop.scheduler.workerReady(id: "w1", credits: 1, now: 0)
        loop.turn(now: 0)
        var e = Exposition(loop.tap.metrics.exposition())
        #expect(e["sparsegrid_tasks{state=\"running\"}"] == 1)
        #expect(e["sparsegrid_tasks{state=\"ready\"}"] == 1)
        #expect(e["sparsegrid_queue_depth"] == 1)
        _ = loop.scheduler.failureArrived(
            attemptId: "a-1", from: "w1", FailureReport(error: "boom", retryable: true), now: 2)
        loop.turn(now: 2)  // no credit back: nothing is dispatched
        e = Exposition(loop.tap.metrics.exposition())
        #expect(e["sparsegrid_tasks{state=\"ready\"}"] == 2)
        #expect(e["sparsegrid_queue_depth"] == 1, "the failed task waits out its backoff until 12")
        loop.scheduler.workerSeen(id: "w1", now: 13)
        loop.turn(now: 13)  // no effect this turn: the census runs again because a backoff was pending
        e = Exposition(loop.tap.metrics.exposition())
        #expect(e["sparsegrid_queue_depth"] == 2)
    }

    @Test("a worker that says bye has left; one that goes silent is dead")
    func workerStates() {
        var loop = Loop()
        loop.hello("w1", now: 0)
        loop.hello("w2", now: 0)
        loop.turn(now: 0)
        var e = Exposition(loop.tap.metrics.exposition())
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 2)
        loop.departing.insert("w1")
        loop.scheduler.workerGone(id: "w1", reason: "said bye", now: 5)
        loop.scheduler.workerSeen(id: "w2", now: 5)
        loop.turn(now: 5)
        loop.scheduler.tick(now: 40)
        // A worker restored from the database that never said hello here is not counted.
        loop.tap.observe(.workerDead(workerId: "ghost"), scheduler: loop.scheduler, departing: [], now: 40)
        loop.turn(now: 40)
        e = Exposition(loop.tap.metrics.exposition())
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 0)
        #expect(e["sparsegrid_workers{state=\"left\"}"] == 1)
        #expect(e["sparsegrid_workers{state=\"dead\"}"] == 1)
        loop.hello("w2", now: 41)  // back
        loop.turn(now: 41)
        e = Exposition(loop.tap.metrics.exposition())
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 1)
        #expect(e["sparsegrid_workers{state=\"dead\"}"] == 0)
    }
}
