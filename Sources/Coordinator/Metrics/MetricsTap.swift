import SweepKit

/// What the event loop notes for `CoordinatorMetrics` as it translates scheduler effects. Owned
/// by the loop's thread. Per task it costs a few dictionary operations and an atomic add or an
/// uncontended lock; the O(tasks) census of states runs at most once per `recountInterval`, and
/// only after something changed.
struct MetricsTap {
    let metrics: CoordinatorMetrics
    /// Ready tasks: when each became dispatchable (after any retry backoff).
    private var readySince: [String: Double] = [:]
    /// Attempts assigned by this coordinator: their stage and when the assign was made.
    private var running: [String: (stage: String, since: Double)] = [:]
    /// When each task assigned this turn became ready; observed once the assigns are sent.
    private var unsent: [Double] = []
    private var workers: [String: WorkerMetricState] = [:]
    private var tasksChanged = true
    private var workersChanged = true
    private var lastRecount = -Double.infinity

    static let recountInterval = 1.0

    init(metrics: CoordinatorMetrics) {
        self.metrics = metrics
    }

    /// An effect about to be translated. Call before the effect is applied to the store (a
    /// worker that said bye is still in `departing` then).
    mutating func observe(
        _ effect: SchedulerEffect, scheduler: borrowing Scheduler, departing: Set<String>, now: Double
    ) {
        switch effect {
        case .taskState(let taskId, let state, _):
            tasksChanged = true
            if state == .ready {
                readySince[taskId] = scheduler.runnableFrom(taskId, now: now) ?? now
            } else {
                readySince[taskId] = nil
            }
        case .attemptStarted:
            tasksChanged = true
        case .attemptEnded(let attemptId, _, let outcome, _, _):
            let started = running.removeValue(forKey: attemptId)
            metrics.attemptEnded(outcome: outcome, stage: started?.stage, duration: started.map { now - $0.since })
        case .workerDead(let workerId) where workers[workerId] != nil:
            // Only workers that said hello here: one restored from the database that never came
            // back shows in the attempts it lost, not here.
            workers[workerId] = departing.contains(workerId) ? .left : .dead
            workersChanged = true
        default:
            break
        }
    }

    /// After a launch: forgets tasks that are no longer ready (a relaunch can drop tasks
    /// without an effect), and notes `ready`, the launch's tasks that the store holds as ready
    /// (those that consume nothing: they are ready from the launch on, without an effect).
    mutating func launched(ready: [String], scheduler: borrowing Scheduler, now: Double) {
        readySince = readySince.filter { scheduler.state(of: $0.key) == .ready }
        for taskId in ready where readySince[taskId] == nil && scheduler.state(of: taskId) == .ready {
            readySince[taskId] = scheduler.runnableFrom(taskId, now: now) ?? now
        }
        tasksChanged = true
    }

    /// An assign is queued for sending (after this turn's commit).
    mutating func assigned(taskId: String, attemptId: String, stage: String, now: Double) {
        running[attemptId] = (stage, now)
        if let since = readySince.removeValue(forKey: taskId) { unsent.append(since) }
    }

    mutating func workerJoined(_ id: String) {
        workers[id] = .alive
        workersChanged = true
    }

    /// This turn's messages went out at `sentAt`: the assigns' dispatch latencies are known.
    /// Then, at most once per `recountInterval`, the gauges that need a census.
    mutating func turnSent(at sentAt: Double, scheduler: borrowing Scheduler) {
        if !unsent.isEmpty {
            for since in unsent { metrics.dispatched(latency: sentAt - since) }
            unsent.removeAll(keepingCapacity: true)
        }
        guard tasksChanged || workersChanged, sentAt - lastRecount >= Self.recountInterval else { return }
        lastRecount = sentAt
        if tasksChanged {
            let census = scheduler.taskCensus(now: sentAt)
            metrics.taskStatesChanged(census.byState)
            metrics.queueDepthChanged(census.runnable)
            // Tasks waiting out a retry backoff join the queue without an effect: count again.
            tasksChanged = census.runnable != census.byState[.ready, default: 0]
        }
        if workersChanged {
            var counts: [WorkerMetricState: Int] = [:]
            for state in workers.values { counts[state, default: 0] += 1 }
            metrics.workersChanged(counts)
            workersChanged = false
        }
    }
}
