import Store
import SweepKit

/// The scheduler as the database describes it: what a starting coordinator runs, and what
/// offline `cancel`/`retry` act on. One way to rebuild state, so a live and an offline
/// command go through the same scheduler events.
struct RestoredState {
    var scheduler: Scheduler
    /// Each sweep's plan (an assign carries its context: data, methods, measure).
    var plans: [String: SweepPlan]
    var taskCount: Int
    var runningAttemptCount: Int

    init(store: SweepStore, config: SchedulerConfig, now: Double) throws {
        let snapshot = try store.loadSnapshot()
        var seedsBySweep: [String: [TaskSeed]] = [:]
        for task in snapshot.tasks { seedsBySweep[task.sweep, default: []].append(Self.seed(task)) }
        var artifacts: [String: [ArtifactDigest]] = [:]
        var plans: [String: SweepPlan] = [:]
        for plan in snapshot.sweeps {
            plans[plan.name] = plan
            artifacts.merge(try store.artifactDigests(sweep: plan.name)) { _, new in new }
        }
        let sweeps = snapshot.sweeps.map {
            RestoredSweep(
                name: $0.name, engine: $0.engine, device: $0.device, retries: $0.retries,
                cancelled: snapshot.cancelledSweeps.contains($0.name), tasks: seedsBySweep[$0.name] ?? [],
                deadAfter: $0.deadAfter, exclusiveStages: Set($0.exclusiveStages ?? []))
        }
        let attempts = snapshot.runningAttempts.map {
            RestoredAttempt(id: $0.id, taskId: $0.taskId, workerId: $0.workerId, startedAt: $0.startedAt)
        }
        var keys: [String: String] = [:]
        for worker in try store.workers() {
            if let key = worker.info["curveKey"]?.stringValue { keys[worker.id] = key }
        }
        var scheduler = Scheduler(config: config)
        scheduler.restore(sweeps: sweeps, attempts: attempts, artifacts: artifacts, workerKeys: keys, now: now)
        self.scheduler = scheduler
        self.plans = plans
        taskCount = snapshot.tasks.count
        runningAttemptCount = snapshot.runningAttempts.count
    }

    /// A stored task as the scheduler tracks it.
    static func seed(_ task: TaskRecord) -> TaskSeed {
        TaskSeed(
            id: task.id, sweep: task.sweep, stage: task.stage, priority: task.priority, state: task.state,
            attemptsUsed: task.attemptsUsed, inputs: Array(task.inputs.values), params: task.params,
            inputsByStage: task.inputs)
    }
}

/// What a scheduler effect changes in the database (the messages it implies are the event
/// loop's business). `departing`: workers that said bye, recorded as `left` rather than `dead`.
/// Appends to `out` (no array per effect: this runs several times per task on the hot path).
func appendStoreMutations(
    for effect: SchedulerEffect, scheduler: Scheduler, departing: inout Set<String>,
    now: Double, into out: inout [StoreMutation]
) {
    switch effect {
    case .assign, .cancel:
        return
    case .taskState(let taskId, let state, let error):
        out.append(.taskState(taskId: taskId, state: state, error: error, at: now))
    case .attemptsUsed(let taskId, let count):
        out.append(.taskAttemptsUsed(taskId: taskId, attemptsUsed: count))
    case .attemptStarted(let attemptId, let taskId, let workerId, let attemptsUsed):
        out.append(.taskStarted(taskId: taskId, attemptsUsed: attemptsUsed, at: now))
        out.append(.attemptStarted(attemptId: attemptId, taskId: taskId, workerId: workerId, at: now))
    case .attemptEnded(let attemptId, _, let outcome, let error, let failure):
        out.append(
            .attemptEnded(
                attemptId: attemptId, outcome: outcome, at: now, exitCode: failure?.exitCode,
                error: failure?.error ?? error, stderrTail: failure?.stderrTail))
    case .workerDead(let workerId):
        let state = departing.remove(workerId) != nil ? "left" : "dead"
        guard let known = scheduler.registration(ofWorker: workerId) else {
            // Restored from the database and never said hello here: keep its stored host and
            // info (its CURVE key among them), change only its state.
            out.append(.workerState(id: workerId, state: state, at: now))
            return
        }
        out.append(.worker(id: workerId, host: known.host, info: known.info, seenAt: now, state: state))
    case .log(let entry):
        out.append(
            .event(
                at: now, kind: entry.kind, sweep: entry.sweep, taskId: entry.taskId, workerId: entry.workerId,
                message: entry.message))
    }
}
