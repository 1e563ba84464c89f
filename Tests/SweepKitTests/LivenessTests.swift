import Foundation
import Testing

@testable import SweepKit

// Time limits and liveness: a timed-out attempt has its own outcome and is retried; a sweep's
// own `dead_after` keeps a silent worker's attempts until it has passed; a live worker saying
// hello again does not lose an attempt that may still be on its way to it.

private let cpu = WorkerCapabilities(engines: ["null"], hasGPU: false, hasCPU: true, slots: 2)

private func registration(_ identity: UInt8) -> WorkerRegistration {
    WorkerRegistration(
        identity: [identity], key: nil, host: "node\(identity)",
        info: ["slots": ["cpu", "cpu"], "pid": 1])
}

private func seed(_ id: String, sweep: String) -> TaskSeed {
    TaskSeed(
        id: id, sweep: sweep, stage: "run", priority: 1, state: .pending, attemptsUsed: 0, inputs: [],
        params: ["model": "m"])
}

private func assigned(_ effects: [SchedulerEffect]) -> [String: String] {
    var byTask: [String: String] = [:]
    for case .assign(_, let attempt, let task) in effects { byTask[task] = attempt }
    return byTask
}

private func logs(_ effects: [SchedulerEffect]) -> [SchedulerLog] {
    effects.compactMap {
        if case .log(let entry) = $0 { return entry }
        return nil
    }
}

private func ended(_ effects: [SchedulerEffect]) -> [(attempt: String, outcome: AttemptOutcome, error: String?)] {
    effects.compactMap {
        if case .attemptEnded(let a, _, let outcome, let error, _) = $0 { return (a, outcome, error) }
        return nil
    }
}

/// Sweep "patient" (dead_after 60 s, task p) and sweep "quick" (no dead_after, task q), both
/// running on w1; the coordinator's dead interval is 5 s.
private func twoSweepsRunning() -> (Scheduler, p: String, q: String) {
    var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
    s.addSweep(
        name: "patient", engine: "null", device: "any", retries: 2, cancelled: false, deadAfter: 60,
        tasks: [seed("p", sweep: "patient")])
    s.addSweep(
        name: "quick", engine: "null", device: "any", retries: 2, cancelled: false,
        tasks: [seed("q", sweep: "quick")])
    #expect(s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0) == .accepted)
    s.workerReady(id: "w1", credits: 2, now: 0)
    s.dispatch(now: 0)
    let byTask = assigned(s.drainEffects())
    return (s, byTask["p"]!, byTask["q"]!)
}

@Suite("Scheduler: timeouts")
struct SchedulerTimeoutTests {
    private func oneRunning(retries: Int) -> (Scheduler, String) {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        s.addSweep(
            name: "sw", engine: "null", device: "any", retries: retries, cancelled: false,
            tasks: [seed("t", sweep: "sw")])
        _ = s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        return (s, assigned(s.drainEffects())["t"]!)
    }

    @Test(
        "a failure the worker reports as timed out ends the attempt as `timeout` and the task runs again, even when marked not retryable"
    )
    func timeoutIsRetried() {
        var (s, attempt) = oneRunning(retries: 1)
        let report = FailureReport(
            error: "it ran longer than the stage's timeout of 3600 s", retryable: false,
            timedOut: true)
        #expect(s.failureArrived(attemptId: attempt, from: "w1", report, now: 10) == .recorded(.ready))
        let effects = s.drainEffects()
        #expect(ended(effects).map(\.outcome) == [.timeout])
        #expect(ended(effects).first?.error == "it ran longer than the stage's timeout of 3600 s")
        let retry = logs(effects).first { $0.kind == "retry" }
        #expect(retry?.message.contains("timed out: it ran longer than the stage's timeout of 3600 s") == true)
        #expect(retry?.attemptId == attempt)
        #expect(retry?.workerId == "w1")

        // The second attempt times out too: retries used up, the task fails with the reason.
        s.workerReady(id: "w1", credits: 1, now: 11)
        s.dispatch(now: 11)
        let second = assigned(s.drainEffects())["t"]!
        #expect(
            s.failureArrived(
                attemptId: second, from: "w1",
                FailureReport(
                    error: "no event from the engine for 1800 s", retryable: true,
                    timedOut: true), now: 20) == .recorded(.failed))
        let last = s.drainEffects()
        #expect(ended(last).map(\.outcome) == [.timeout])
        #expect(
            last.contains(
                .taskState(
                    taskId: "t", state: .failed,
                    error: "timed out: no event from the engine for 1800 s (after 2 attempt(s))")))
        #expect(logs(last).contains { $0.kind == "failed" && $0.level == .warn })
    }

    @Test("ordinary failures keep their outcomes: `failed` when retryable, `invalid` when not")
    func otherFailures() {
        var (s, attempt) = oneRunning(retries: 3)
        _ = s.failureArrived(attemptId: attempt, from: "w1", FailureReport(error: "exit 1", retryable: true), now: 1)
        #expect(ended(s.drainEffects()).map(\.outcome) == [.failed])
        s.workerReady(id: "w1", credits: 1, now: 2)
        s.dispatch(now: 2)
        let second = assigned(s.drainEffects())["t"]!
        _ = s.failureArrived(attemptId: second, from: "w1", FailureReport(error: "exit 2", retryable: false), now: 3)
        #expect(ended(s.drainEffects()).map(\.outcome) == [.invalid])
        #expect(s.state(of: "t") == .failed)
    }
}

@Suite("Scheduler: dead workers and a sweep's own dead_after")
struct SchedulerDeadAfterTests {
    @Test("the default dead interval is 30 s")
    func defaultDeadAfter() {
        #expect(SchedulerConfig().deadAfter == 30)
        #expect(SchedulerConfig().restartGraceSeconds == 60)
    }

    @Test(
        "a worker silent past the coordinator's interval is dead at once, but keeps its attempts of a sweep with a longer dead_after until that has passed too"
    )
    func sweepDeadAfter() {
        var (s, p, q) = twoSweepsRunning()
        s.tick(now: 5.5)
        #expect(!s.isKnownAlive("w1"), "no more work for a silent worker")
        let first = s.drainEffects()
        #expect(ended(first).map(\.attempt) == [q], "the quick sweep's attempt is lost at the coordinator's interval")
        #expect(first.contains(.workerDead(workerId: "w1")))
        let dead = logs(first).first { $0.kind == "dead" }
        #expect(dead?.level == .warn)
        #expect(
            dead?.message == "worker w1 went silent for 5.5 s: declared dead; 1 attempt(s) lost and requeued; "
                + "1 attempt(s) kept until their sweep's dead_after has passed")
        #expect(s.state(of: "p") == .running)
        #expect(s.runningAttempts(ofWorker: "w1") == [p])

        s.tick(now: 59)
        #expect(ended(s.drainEffects()).isEmpty)
        s.tick(now: 60.5)
        let later = s.drainEffects()
        #expect(ended(later).map(\.attempt) == [p])
        #expect(ended(later).first?.outcome == .lost)
        #expect(ended(later).first?.error == "worker w1 went silent for 60.5 s (the sweep's dead_after)")
        #expect(s.state(of: "p") == .ready)
        #expect(s.runningAttempts(ofWorker: "w1").isEmpty)
    }

    @Test("a worker that comes back within its sweep's dead_after says hello listing the held attempt and keeps it")
    func heldAttemptAdopted() {
        var (s, p, q) = twoSweepsRunning()
        s.tick(now: 5.5)
        _ = s.drainEffects()
        #expect(
            s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [p, q], now: 20)
                == .accepted)
        let effects = s.drainEffects()
        #expect(ended(effects).isEmpty)
        #expect(
            effects.contains(
                .cancel(
                    workerId: "w1", attemptId: q,
                    reason: "the coordinator no longer tracks this attempt")))
        #expect(s.state(of: "p") == .running)
        #expect(s.runningAttempts(ofWorker: "w1") == [p])
        s.tick(now: 70)
        #expect(s.state(of: "p") == .running, "alive again: the held deadline no longer applies")
        #expect(s.resultArrived(attemptId: p, from: "w1", now: 71) == .accept(taskId: "p"))
    }

    @Test("bye ends every attempt at once, whatever the sweep's dead_after")
    func byeIgnoresDeadAfter() {
        var (s, p, q) = twoSweepsRunning()
        s.workerGone(id: "w1", reason: "said bye", now: 1)
        #expect(Set(ended(s.drainEffects()).map(\.attempt)) == [p, q])
    }
}

@Suite("Scheduler: a live worker says hello again")
struct SchedulerRehelloTests {
    @Test(
        "a hello on the same live connection keeps an attempt assigned within the dead interval (it may be on its way) and loses an older unlisted one"
    )
    func inFlightKept() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        s.addSweep(
            name: "sw", engine: "null", device: "any", retries: 2, cancelled: false,
            tasks: [seed("old", sweep: "sw"), seed("new", sweep: "sw")])
        _ = s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let old = assigned(s.drainEffects()).values.first!
        s.workerReady(id: "w1", credits: 1, now: 8)
        s.dispatch(now: 8)
        let new = assigned(s.drainEffects()).values.first!
        // The worker describes an engine and says hello again at 9, before the second assign reached it.
        #expect(
            s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 9)
                == .accepted)
        let effects = s.drainEffects()
        #expect(ended(effects).map(\.attempt) == [old])
        #expect(s.runningAttempts(ofWorker: "w1") == [new])
        #expect(logs(effects).contains { $0.kind == "hello" })
        // Its heartbeats then settle it like any other attempt.
        s.workerRunning(id: "w1", running: [new], now: 15)
        #expect(s.runningAttempts(ofWorker: "w1") == [new])
    }

    @Test(
        "a ready after a repeated hello cannot give credit for slots whose assigns are still on their way (seen: a slow handshake, two welcomes, a task refused for want of a slot)"
    )
    func readyAfterRepeatedHello() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        s.addSweep(
            name: "sw", engine: "null", device: "any", retries: 2, cancelled: false,
            tasks: ["a", "b", "c", "d"].map { seed($0, sweep: "sw") })
        _ = s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0)
        s.workerReady(id: "w1", credits: 2, now: 0)
        s.dispatch(now: 0)
        #expect(assigned(s.drainEffects()).count == 2)
        // The worker's hello was retried before the first welcome reached it: the second hello
        // arrives on the same connection before the assigns reached the worker, and the
        // second welcome's ready counts both slots free.
        #expect(
            s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0.5)
                == .accepted)
        s.workerReady(id: "w1", credits: 2, now: 0.5)
        s.dispatch(now: 0.5)
        #expect(assigned(s.drainEffects()).isEmpty, "both slots are taken by attempts on their way")
        #expect(s.credits(ofWorker: "w1") == 0)
        #expect(s.runningAttempts(ofWorker: "w1").count == 2)
        // A result frees its slot: the worker's ready after it is a credit again.
        let first = s.runningAttempts(ofWorker: "w1").sorted()[0]
        s.workerRunning(id: "w1", running: s.runningAttempts(ofWorker: "w1").sorted(), now: 1)
        _ = s.resultArrived(attemptId: first, from: "w1", now: 2)
        s.workerReady(id: "w1", credits: 1, now: 2)
        s.dispatch(now: 2)
        #expect(assigned(s.drainEffects()).count == 1)
    }

    @Test("joining is logged with the host, the slots' devices and the engines")
    func joinedLog() {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5))
        _ = s.workerHello(id: "w1", registration: registration(1), capabilities: cpu, running: [], now: 0)
        let joined = logs(s.drainEffects()).first { $0.kind == "joined" }
        #expect(joined?.message == "worker w1 joined from node1 with 2 slot(s) [cpu, cpu], engines: null")
        #expect(joined?.workerId == "w1")
    }
}

@Suite("Spec: a stage's timeout and a sweep's dead_after")
struct SpecTimeoutTests {
    private func edit(_ from: String, _ to: String) -> String {
        let text = Fixtures.twoStage.replacingOccurrences(of: from, with: to)
        precondition(text != Fixtures.twoStage, "edit did not apply: \(from)")
        return text
    }

    @Test("`timeout` under a stage and `dead_after` at the top travel in the plan, and change no task id")
    func carriedInPlan() throws {
        let spec =
            edit(
                "  train:\n    params: {epochs: 1, max_steps: 2}",
                "  train:\n    timeout: 3600\n    params: {epochs: 1, max_steps: 2}") + "\ndead_after: 300\n"
        let plan = try Fixtures.plan(spec)
        #expect(plan.stageTimeouts == ["train": 3600])
        #expect(plan.timeout(ofStage: "train") == 3600)
        #expect(plan.timeout(ofStage: "finetune") == nil)
        #expect(plan.deadAfter == 300)
        let plain = try Fixtures.plan(Fixtures.twoStage)
        #expect(plain.stageTimeouts == nil)
        #expect(plain.deadAfter == nil)
        #expect(Fixtures.ids(plan) == Fixtures.ids(plain), "time limits are not part of what a task computes")
    }

    @Test("a plan stored before these keys existed decodes without them")
    func oldPlanDecodes() throws {
        let plan = try Fixtures.plan(Fixtures.twoStage)
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(plan)) as! [String: Any]
        json["stageTimeouts"] = nil
        json["deadAfter"] = nil
        let old = try JSONDecoder().decode(SweepPlan.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old.stageTimeouts == nil && old.deadAfter == nil)
    }

    @Test("a timeout that is not a number of seconds in (0, 30 days] is reported with its file, line and column")
    func badTimeouts() {
        let at = { (value: String) in
            Fixtures.problems(
                self.edit(
                    "  train:\n    params: {epochs: 1, max_steps: 2}",
                    "  train:\n    timeout: \(value)\n    params: {epochs: 1, max_steps: 2}"),
                file: "sweeps/x.yaml")
        }
        #expect(
            at("0") == [
                "sweeps/x.yaml:8:14: `stages.train.timeout`: must be a number of seconds greater than 0 and at most 2592000 (30 days), found 0.0; e.g. `timeout: 3600` (an hour)."
            ])
        #expect(
            at("-5") == [
                "sweeps/x.yaml:8:14: `stages.train.timeout`: must be a number of seconds greater than 0 and at most 2592000 (30 days), found -5.0; e.g. `timeout: 3600` (an hour)."
            ])
        #expect(
            at("2592001") == [
                "sweeps/x.yaml:8:14: `stages.train.timeout`: must be a number of seconds greater than 0 and at most 2592000 (30 days), found 2592001.0; e.g. `timeout: 3600` (an hour)."
            ])
        #expect(
            at("1h") == [
                "sweeps/x.yaml:8:14: `stages.train.timeout`: expected a number of seconds greater than 0 and at most 2592000 (30 days), found the string \"1h\"; e.g. `timeout: 3600` (an hour)."
            ])
        #expect(
            at("\"90\"") == [
                "sweeps/x.yaml:8:14: `stages.train.timeout`: expected a number, found the string \"90\"; write 90 without quotes so that YAML reads it as a number."
            ])
        #expect(at("2592000") == ["(no error)"], "30 days is allowed")
    }

    @Test("a mistyped stage key suggests `timeout`; a bad dead_after is reported with its place")
    func badKeys() {
        let typo = Fixtures.problems(
            edit(
                "  train:\n    params: {epochs: 1, max_steps: 2}",
                "  train:\n    timeuot: 60\n    params: {epochs: 1, max_steps: 2}"))
        #expect(
            typo == [
                "spec.yaml:8:5: `stages.train.timeuot`: `timeuot` is not a key of a stage; did you mean `timeout`? Valid keys: after, grid, params, timeout."
            ])
        #expect(
            Fixtures.problems(Fixtures.twoStage + "\ndead_after: 0\n") == [
                "spec.yaml:19:13: `dead_after`: must be a number greater than 0 and at most 86400 (a day), found 0.0; e.g. `dead_after: 300` (seconds)."
            ])
    }
}
