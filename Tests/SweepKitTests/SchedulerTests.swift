import Testing

@testable import SweepKit

/// A two-stage sweep: `train` tasks t0…, each consumed by `finetune` tasks f0a, f0b ….
private func makeScheduler(
    models: Int = 1, retries: Int = 1, engine: String = "sparsity", device: String = "any",
    config: SchedulerConfig = SchedulerConfig(deadAfter: 5, retryBackoff: 1)
) -> Scheduler {
    var s = Scheduler(config: config, runId: "r1")
    var seeds: [TaskSeed] = []
    for i in 0..<models {
        seeds.append(
            TaskSeed(
                id: "t\(i)", sweep: "sw", stage: "train", priority: 2, state: .pending, attemptsUsed: 0,
                inputs: []))
        for m in ["a", "b"] {
            seeds.append(
                TaskSeed(
                    id: "f\(i)\(m)", sweep: "sw", stage: "finetune", priority: 1, state: .pending,
                    attemptsUsed: 0, inputs: ["t\(i)"]))
        }
    }
    s.addSweep(name: "sw", engine: engine, device: device, retries: retries, cancelled: false, tasks: seeds)
    return s
}

private let cpu = WorkerCapabilities(engines: ["sparsity"], hasGPU: false, hasCPU: true, slots: 1)

private func assigns(_ effects: [SchedulerEffect]) -> [(worker: String, attempt: String, task: String)] {
    effects.compactMap {
        if case .assign(let w, let a, let t) = $0 { return (w, a, t) }
        return nil
    }
}

@Suite("Scheduler: DAG order and dispatch")
struct SchedulerDispatchTests {
    @Test("consumers wait until the task they consume has succeeded")
    func dagOrder() {
        var s = makeScheduler()
        s.workerConnected(
            id: "w1",
            capabilities: WorkerCapabilities(
                engines: ["sparsity"], hasGPU: false,
                hasCPU: true, slots: 4),
            running: [], now: 0)
        s.workerReady(id: "w1", credits: 4, now: 0)
        s.dispatch(now: 0)
        let first = assigns(s.drainEffects())
        #expect(first.map(\.task) == ["t0"])
        #expect(s.state(of: "f0a") == .pending)
        #expect(s.resultArrived(attemptId: first[0].attempt, from: "w1", now: 1) == .accept(taskId: "t0"))
        s.dispatch(now: 1)
        #expect(Set(assigns(s.drainEffects()).map(\.task)) == ["f0a", "f0b"])
    }

    @Test("a worker gets no more tasks than it has credit for")
    func credit() {
        var s = makeScheduler(models: 3)
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        #expect(assigns(s.drainEffects()).count == 1)
        s.dispatch(now: 0)
        #expect(assigns(s.drainEffects()).isEmpty)
        #expect(s.readyCount == 2)
    }

    @Test("a worker without the sweep's engine or device gets nothing, and status says why")
    func capabilities() {
        var s = makeScheduler(device: "gpu")
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        #expect(assigns(s.drainEffects()).isEmpty)
        #expect(s.waitingReason(sweep: "sw")?.contains("device 'gpu'") == true)
        let gpu = WorkerCapabilities(engines: ["sparsity"], hasGPU: true, hasCPU: false, slots: 1)
        s.workerConnected(id: "g1", capabilities: gpu, running: [], now: 0)
        s.workerReady(id: "g1", credits: 1, now: 0)
        s.dispatch(now: 0)
        #expect(assigns(s.drainEffects()).map(\.worker) == ["g1"])
    }

    @Test("a consumer goes preferably to the worker that holds its input")
    func affinity() {
        var s = makeScheduler(models: 2)
        let one = WorkerCapabilities(engines: ["sparsity"], hasGPU: false, hasCPU: true, slots: 1)
        s.workerConnected(id: "w1", capabilities: one, running: [], now: 0)
        s.workerConnected(id: "w2", capabilities: one, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.workerReady(id: "w2", credits: 1, now: 0)
        s.dispatch(now: 0)
        let trains = assigns(s.drainEffects())
        #expect(trains.count == 2)
        let w2Train = trains.first { $0.worker == "w2" }!
        // Only w2's train task finishes; then w1 asks for work first. The queue holds only
        // consumers of w2's task, so w1 takes one; w2 then takes the other.
        _ = s.resultArrived(attemptId: w2Train.attempt, from: "w2", now: 1)
        s.workerReady(id: "w2", credits: 1, now: 1)
        s.dispatch(now: 1)
        let next = assigns(s.drainEffects())
        #expect(next.count == 1)
        #expect(next[0].worker == "w2")
        #expect(next[0].task.hasPrefix("f\(w2Train.task.dropFirst())"))
    }
}

@Suite("Scheduler: failures, lost workers and duplicates")
struct SchedulerFailureTests {
    @Test("a dead worker's attempt is lost and its task runs again on another worker")
    func deadWorker() {
        var s = makeScheduler()
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let a1 = assigns(s.drainEffects())[0]
        s.workerConnected(id: "w2", capabilities: cpu, running: [], now: 3)
        s.workerReady(id: "w2", credits: 1, now: 3)
        s.tick(now: 4)  // w1 silent 4 s < 5 s: alive
        #expect(s.isKnownAlive("w1"))
        s.tick(now: 5.5)
        #expect(!s.isKnownAlive("w1"))
        let effects = s.drainEffects()
        #expect(
            effects.contains(
                .attemptEnded(
                    attemptId: a1.attempt, taskId: "t0", outcome: .lost,
                    error: "worker w1 went silent for 5.5 s", failure: nil)))
        // Backoff of 1 s after the first attempt.
        s.dispatch(now: 5.5)
        #expect(assigns(s.drainEffects()).isEmpty)
        s.workerSeen(id: "w2", now: 6.6)
        s.tick(now: 6.6)
        s.dispatch(now: 6.6)
        let a2 = assigns(s.drainEffects())
        #expect(a2.map(\.worker) == ["w2"])
        #expect(a2.map(\.task) == ["t0"])
        #expect(s.attemptsUsed(of: "t0") == 2)
    }

    @Test("the first result wins; a late result of another attempt is a duplicate")
    func duplicates() {
        var s = makeScheduler()
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let a1 = assigns(s.drainEffects())[0]
        s.workerGone(id: "w1", reason: "said bye", now: 1)
        s.workerConnected(id: "w2", capabilities: cpu, running: [], now: 1)
        s.workerReady(id: "w2", credits: 1, now: 1)
        s.tick(now: 3)
        s.dispatch(now: 3)
        let a2 = assigns(s.drainEffects())[0]
        #expect(a2.task == "t0")
        // The lost attempt's result arrives first: accepted, the running retry is cancelled.
        #expect(s.resultArrived(attemptId: a1.attempt, from: "w1", now: 4) == .accept(taskId: "t0"))
        let effects = s.drainEffects()
        #expect(
            effects.contains(
                .cancel(
                    workerId: "w2", attemptId: a2.attempt,
                    reason: "another attempt's result was stored")))
        #expect(s.resultArrived(attemptId: a2.attempt, from: "w2", now: 5) == .duplicate(taskId: "t0"))
        #expect(s.resultArrived(attemptId: "never-assigned", from: "w1", now: 5) == .unknown)
        #expect(s.state(of: "t0") == .succeeded)
    }

    @Test("a result for a task that already succeeded is dropped as a duplicate")
    func duplicateAfterSuccess() {
        var s = makeScheduler()
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.restoreAttempt(attemptId: "old", taskId: "t0", workerId: "w1", startedAt: 0, now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        _ = s.drainEffects()
        // Two attempts of t0 are tracked (the restored one and, if dispatched, none since t0 is running).
        s.restoreAttempt(attemptId: "old2", taskId: "t0", workerId: "w1", startedAt: 0, now: 0)
        #expect(s.resultArrived(attemptId: "old", from: "w1", now: 1) == .accept(taskId: "t0"))
        s.restoreAttempt(attemptId: "old3", taskId: "t0", workerId: "w1", startedAt: 0, now: 1)
        #expect(s.resultArrived(attemptId: "old3", from: "w1", now: 2) == .duplicate(taskId: "t0"))
    }

    @Test("retries run out: the task fails and so do its consumers")
    func retriesExhausted() {
        var s = makeScheduler(retries: 1, config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        for attempt in 1...2 {
            s.workerReady(id: "w1", credits: 1, now: 0)
            s.dispatch(now: 0)
            let a = assigns(s.drainEffects())
            #expect(a.count == 1, "attempt \(attempt) should be dispatched")
            _ = s.failureArrived(
                attemptId: a[0].attempt, from: "w1",
                FailureReport(error: "engine exited with status 1", retryable: true), now: 0)
        }
        #expect(s.state(of: "t0") == .failed)
        #expect(s.state(of: "f0a") == .failed)
        #expect(s.state(of: "f0b") == .failed)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        #expect(assigns(s.drainEffects()).isEmpty)
    }

    @Test("an invalid task fails at once, without retries")
    func invalid() {
        var s = makeScheduler(retries: 3)
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let a = assigns(s.drainEffects())[0]
        let state = s.failureArrived(
            attemptId: a.attempt, from: "w1",
            FailureReport(error: "unknown model 'x'", retryable: false), now: 0)
        #expect(state == .recorded(.failed))
        #expect(s.drainEffects().contains(.taskState(taskId: "t0", state: .failed, error: "unknown model 'x'")))
    }

    @Test("a reconnecting worker keeps the attempts it still runs and loses the others")
    func reconnect() {
        var s = makeScheduler(models: 2)
        let two = WorkerCapabilities(engines: ["sparsity"], hasGPU: false, hasCPU: true, slots: 2)
        s.workerConnected(id: "w1", capabilities: two, running: [], now: 0)
        s.workerReady(id: "w1", credits: 2, now: 0)
        s.dispatch(now: 0)
        let a = assigns(s.drainEffects())
        #expect(a.count == 2)
        s.workerConnected(id: "w1", capabilities: two, running: [a[0].attempt, "stranger"], now: 1)
        let effects = s.drainEffects()
        #expect(
            effects.contains(
                .attemptEnded(
                    attemptId: a[1].attempt, taskId: a[1].task, outcome: .lost,
                    error: "worker w1 reconnected without it", failure: nil)))
        #expect(
            effects.contains(
                .cancel(
                    workerId: "w1", attemptId: "stranger",
                    reason: "the coordinator no longer tracks this attempt")))
        #expect(s.runningAttempts(ofWorker: "w1") == [a[0].attempt])
    }

    @Test("an attempt a live worker stops listing in its heartbeats is lost once it is older than the dead interval")
    func heartbeatReconciles() {
        var s = makeScheduler()
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let a = assigns(s.drainEffects())[0]
        // Just assigned: the assign may still be on its way, so an empty list changes nothing.
        s.workerRunning(id: "w1", running: [], now: 1)
        #expect(s.state(of: "t0") == .running)
        s.workerRunning(id: "w1", running: [a.attempt], now: 9)
        #expect(s.state(of: "t0") == .running)
        s.workerRunning(id: "w1", running: [], now: 10)
        #expect(
            s.drainEffects().contains(
                .attemptEnded(
                    attemptId: a.attempt, taskId: "t0", outcome: .lost,
                    error: "worker w1 no longer runs it", failure: nil)))
        #expect(s.state(of: "t0") == .ready)
    }

    @Test("after a restart, an attempt whose worker never comes back is lost after the restart grace")
    func restoredAttemptTimesOut() {
        var s = makeScheduler()  // dead after 5 s: the grace is max(2 × 5, 5 + 10) = 15 s
        s.restoreAttempt(attemptId: "t0-old-1", taskId: "t0", workerId: "gone", startedAt: 0, now: 100)
        s.tick(now: 114)
        #expect(s.state(of: "t0") == .running)
        s.tick(now: 116)
        #expect(s.state(of: "t0") == .ready)
    }
}

@Suite("Scheduler: cancel and retry")
struct SchedulerControlTests {
    @Test("cancel stops running attempts and retry brings failed and cancelled tasks back")
    func cancelRetry() {
        var s = makeScheduler()
        s.workerConnected(id: "w1", capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let a = assigns(s.drainEffects())[0]
        s.cancelSweep("sw", now: 1)
        let effects = s.drainEffects()
        #expect(effects.contains(.cancel(workerId: "w1", attemptId: a.attempt, reason: "sweep cancelled")))
        #expect(s.counts(sweep: "sw") == [.cancelled: 3])
        #expect(s.retrySweep("sw") == 3)
        #expect(s.state(of: "t0") == .ready)
        #expect(s.state(of: "f0a") == .pending)
        #expect(s.attemptsUsed(of: "t0") == 0)
    }
}
