/// Read-only counts for the coordinator's metrics (`/metrics`), kept apart from the scheduling
/// code: nothing here changes state or emits effects.
extension Scheduler {
    /// Tasks by state across every sweep, and how many of the ready ones could run now (not
    /// waiting out a retry backoff): the queue a free slot would draw from. O(tasks): the
    /// coordinator calls it at most about once a second, and only after something changed.
    public func taskCensus(now: Double) -> (byState: [TaskState: Int], runnable: Int) {
        var byState: [TaskState: Int] = [:]
        var runnable = 0
        for (slot, task) in tasks.enumerated() where task.isPresent {
            byState[task.state, default: 0] += 1
            if task.state == .ready, notBefore.isEmpty || notBefore[Slot(slot)] ?? 0 <= now { runnable += 1 }
        }
        return (byState, runnable)
    }

    /// When a ready task may first be dispatched: `now`, or the end of its retry backoff.
    /// nil for a task the scheduler does not know.
    public func runnableFrom(_ taskId: String, now: Double) -> Double? {
        guard let slot = slot(of: taskId) else { return nil }
        return max(now, notBefore[slot] ?? 0)
    }
}
