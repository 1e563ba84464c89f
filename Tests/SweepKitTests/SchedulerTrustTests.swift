import Testing

@testable import SweepKit

// Faults injected here: forged results/failures/progress, a stolen worker id, and a
// coordinator restart while attempts run. Each test fails on the scheduler before the
// "one owner of task state" change (it had no binding and dropped restored attempts).

private let cpu = WorkerCapabilities(engines: ["null"], hasGPU: false, hasCPU: true, slots: 1)

private func registration(_ identity: UInt8, key: String? = nil) -> WorkerRegistration {
    WorkerRegistration(identity: [identity], key: key, host: "h", info: .null)
}

private func seeds(_ n: Int) -> [TaskSeed] {
    (0..<n).map {
        TaskSeed(
            id: "t\($0)", sweep: "sw", stage: "run", priority: 1, state: .pending, attemptsUsed: 0,
            inputs: [])
    }
}

private func oneRunning() -> (Scheduler, attempt: String) {
    var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
    s.addSweep(name: "sw", engine: "null", device: "any", retries: 2, cancelled: false, tasks: seeds(1))
    #expect(s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0) == .accepted)
    s.workerReady(id: "w1", credits: 1, now: 0)
    s.dispatch(now: 0)
    let attempt = s.drainEffects().compactMap { effect -> String? in
        if case .assign(_, let a, _) = effect { return a }
        return nil
    }[0]
    return (s, attempt)
}

@Suite("Scheduler: who may report what")
struct SchedulerBindingTests {
    @Test("a result for another worker's attempt is refused and the task keeps running")
    func forgedResult() {
        var (s, attempt) = oneRunning()
        #expect(
            s.workerHello(id: "w2", registration: registration(2), capabilities: cpu, running: [], now: 1) == .accepted)
        #expect(s.resultArrived(attemptId: attempt, from: "w2", now: 1) == .notYours)
        #expect(s.state(of: "t0") == .running)
        #expect(s.resultArrived(attemptId: attempt, from: "w1", now: 2) == .accept(taskId: "t0"))
    }

    @Test("a non-retryable failure from another worker cannot fail the task for good")
    func forgedFailure() {
        var (s, attempt) = oneRunning()
        _ = s.workerHello(id: "w2", registration: registration(2), capabilities: cpu, running: [], now: 1)
        let forged = FailureReport(error: "forged", retryable: false)
        #expect(s.failureArrived(attemptId: attempt, from: "w2", forged, now: 1) == .notYours)
        #expect(s.state(of: "t0") == .running)
        let forgedProgress = s.progressArrived(attemptId: attempt, from: "w2", event: ["epoch": 1])
        let ownProgress = s.progressArrived(attemptId: attempt, from: "w1", event: ["epoch": 1])
        #expect(!forgedProgress)
        #expect(ownProgress)
    }

    @Test("a hello with a live worker's id from another connection or key is refused; its attempt stays")
    func stolenId() {
        var (s, attempt) = oneRunning()
        if case .accepted = s.workerHello(
            id: "w1", registration: registration(9), capabilities: cpu, running: [], now: 1)
        {
            Issue.record("a stolen id was accepted")
        }
        if case .accepted = s.workerHello(
            id: "w1", registration: registration(1, key: "other"), capabilities: cpu,
            running: [], now: 1)
        {
            Issue.record("the same routing id under another CURVE key was accepted")
        }
        #expect(s.workerOf(attempt: attempt) == "w1")
        #expect(s.workerId(forIdentity: [9]) == nil)
        #expect(s.workerId(forIdentity: [1]) == "w1")
        // The worker itself reconnecting on its own connection keeps its attempt.
        #expect(
            s.workerHello(
                id: "w1", registration: registration(1), capabilities: cpu, running: [attempt],
                now: 2) == .accepted)
        #expect(s.runningAttempts(ofWorker: "w1") == [attempt])
    }

    @Test("after a worker is dead, its id may be taken by a new connection")
    func deadIdReusable() {
        var (s, _) = oneRunning()
        s.tick(now: 10)
        #expect(s.workerId(forIdentity: [1]) == nil)
        #expect(
            s.workerHello(id: "w1", registration: registration(7), capabilities: cpu, running: [], now: 10) == .accepted
        )
    }

    @Test("attempt ids carry 128 random bits and nothing of the task, time or order")
    func unguessableIds() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        s.addSweep(name: "sw", engine: "null", device: "any", retries: 0, cancelled: false, tasks: seeds(50))
        _ = s.workerHello(
            id: "w1", registration: registration(1),
            capabilities: WorkerCapabilities(
                engines: ["null"], hasGPU: false, hasCPU: true, slots: 50), running: [], now: 0)
        s.workerReady(id: "w1", credits: 50, now: 0)
        s.dispatch(now: 0)
        let ids = s.drainEffects().compactMap { effect -> String? in
            if case .assign(_, let a, _) = effect { return a }
            return nil
        }
        #expect(ids.count == 50)
        #expect(Set(ids).count == 50)
        for id in ids {
            #expect(id.count == 32 && id.allSatisfy(\.isHexDigit))
            #expect(!id.hasPrefix("t"))
        }
        // No shared prefix beyond chance: 50 random ids share at most a few leading hex digits.
        let prefixes = Set(ids.map { $0.prefix(4) })
        #expect(prefixes.count > 40)
    }
}

@Suite("Scheduler: restart")
struct SchedulerRestoreTests {
    @Test("a restart keeps an attempt running and its worker adopts it on reconnect: no rerun")
    func restoreAdopts() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        var tasks = seeds(2)
        tasks[0].state = .running
        tasks[0].attemptsUsed = 1
        tasks[1].state = .ready
        s.restore(
            sweeps: [
                RestoredSweep(
                    name: "sw", engine: "null", device: "any", retries: 2, cancelled: false,
                    tasks: tasks)
            ],
            attempts: [RestoredAttempt(id: "a-old", taskId: "t0", workerId: "w1", startedAt: 90)],
            artifacts: [:], now: 100)
        #expect(s.state(of: "t0") == .running)
        #expect(s.readyCount == 1)  // only t1 is queued
        _ = s.drainEffects()
        // The worker comes back 8 s later (past the dead interval, within the grace) still running
        // it, with a second slot free (a ready never counts a slot an attempt holds).
        s.tick(now: 108)
        #expect(s.state(of: "t0") == .running)
        let twoSlots = WorkerCapabilities(engines: ["null"], hasGPU: false, hasCPU: true, slots: 2)
        #expect(
            s.workerHello(
                id: "w1", registration: registration(1), capabilities: twoSlots, running: ["a-old"],
                now: 108) == .accepted)
        s.workerReady(id: "w1", credits: 1, now: 108)
        s.dispatch(now: 108)
        let assigned = s.drainEffects().compactMap { effect -> String? in
            if case .assign(_, _, let t) = effect { return t }
            return nil
        }
        #expect(assigned == ["t1"])  // t0 is not run again
        #expect(s.resultArrived(attemptId: "a-old", from: "w1", now: 110) == .accept(taskId: "t0"))
        #expect(s.attemptsUsed(of: "t0") == 1)
    }

    @Test("a restored attempt of a task that is already final ends as lost instead of staying running")
    func restoreFinal() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5))
        var tasks = seeds(1)
        tasks[0].state = .succeeded
        s.restore(
            sweeps: [
                RestoredSweep(
                    name: "sw", engine: "null", device: "any", retries: 0, cancelled: false,
                    tasks: tasks)
            ],
            attempts: [RestoredAttempt(id: "stale", taskId: "t0", workerId: "w1", startedAt: 1)],
            artifacts: [:], now: 100)
        let ended = s.drainEffects().contains {
            if case .attemptEnded("stale", _, .lost, _, _) = $0 { return true }
            return false
        }
        #expect(ended)
        #expect(s.state(of: "t0") == .succeeded)
    }

    @Test("consumers of a restored task get its stored artifact as their input")
    func restoreArtifacts() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5))
        let producer = TaskSeed(
            id: "p", sweep: "sw", stage: "train", priority: 2, state: .succeeded, attemptsUsed: 1,
            inputs: [])
        let consumer = TaskSeed(
            id: "c", sweep: "sw", stage: "tune", priority: 1, state: .pending, attemptsUsed: 0,
            inputs: ["p"], params: ["model": "m"], inputsByStage: ["train": "p"])
        let digest = ArtifactDigest(name: "checkpoint", sha256: String(repeating: "a", count: 64), bytes: 10)
        s.restore(
            sweeps: [
                RestoredSweep(
                    name: "sw", engine: "null", device: "any", retries: 0, cancelled: false,
                    tasks: [producer, consumer])
            ],
            attempts: [], artifacts: ["p": [digest]], now: 0)
        #expect(s.state(of: "c") == .ready)
        let assignment = s.assignment(of: "c")
        #expect(assignment?.inputs["train"]?.artifact == digest)
        #expect(assignment?.label == "tune m")
    }
}

@Suite("Scheduler: relaunch and late results")
struct SchedulerRelaunchTests {
    @Test("a relaunch whose plan drops a running task stops its attempt and never dispatches it again")
    func relaunchDrops() {
        var (s, attempt) = oneRunning()
        _ = s.drainEffects()
        s.addSweep(name: "sw", engine: "null", device: "any", retries: 2, cancelled: false, tasks: [], now: 5)
        let effects = s.drainEffects()
        #expect(
            effects.contains(
                .cancel(
                    workerId: "w1", attemptId: attempt,
                    reason: "the relaunched plan no longer has this task")))
        #expect(s.state(of: "t0") == nil)
        #expect(s.counts(sweep: "sw").isEmpty)
        #expect(s.resultArrived(attemptId: attempt, from: "w1", now: 6) == .unknown)
    }

    @Test("a late result for a task that failed for good is dropped: no succeeded task with failed consumers")
    func lateAfterFailure() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        let tasks = [
            TaskSeed(
                id: "p", sweep: "sw", stage: "train", priority: 2, state: .pending, attemptsUsed: 0,
                inputs: []),
            TaskSeed(
                id: "c", sweep: "sw", stage: "tune", priority: 1, state: .pending, attemptsUsed: 0,
                inputs: ["p"]),
        ]
        s.addSweep(name: "sw", engine: "null", device: "any", retries: 0, cancelled: false, tasks: tasks)
        _ = s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let attempt = s.runningAttempts(ofWorker: "w1")[0]
        s.tick(now: 10)  // w1 goes silent: its attempt is lost; no retries left, so p and c fail
        #expect(s.state(of: "p") == .failed)
        #expect(s.state(of: "c") == .failed)
        _ = s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 11)
        #expect(s.resultArrived(attemptId: attempt, from: "w1", now: 11) == .unknown)
        #expect(s.state(of: "p") == .failed)
    }
}

@Suite("Scheduler: restored workers keep their key")
struct SchedulerRestoredKeyTests {
    @Test("after a restart, a hello for a restored worker under another CURVE key cannot adopt its attempts")
    func restoredKey() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5))
        var tasks = seeds(1)
        tasks[0].state = .running
        s.restore(
            sweeps: [
                RestoredSweep(
                    name: "sw", engine: "null", device: "any", retries: 1, cancelled: false,
                    tasks: tasks)
            ],
            attempts: [RestoredAttempt(id: "a", taskId: "t0", workerId: "w1", startedAt: 0)],
            artifacts: [:], workerKeys: ["w1": "KEY-1"], now: 10)
        if case .accepted = s.workerHello(
            id: "w1", registration: registration(5, key: "KEY-2"), capabilities: cpu,
            running: ["a"], now: 11)
        {
            Issue.record("another key adopted the restored worker")
        }
        #expect(
            s.workerHello(
                id: "w1", registration: registration(6, key: "KEY-1"), capabilities: cpu,
                running: ["a"], now: 12) == .accepted)
        #expect(s.runningAttempts(ofWorker: "w1") == ["a"])
    }
}
