import SweepKit

/// One change the coordinator commits. Batches of these are applied in one transaction by
/// `SweepStore.apply`, before the coordinator acts on them.
public enum StoreMutation: Sendable {
    case taskState(taskId: String, state: TaskState, error: String?, at: Double)
    case taskAttemptsUsed(taskId: String, attemptsUsed: Int)
    /// An attempt of the task starts: state `running` and its attempt count, in one statement.
    case taskStarted(taskId: String, attemptsUsed: Int, at: Double)
    /// Inserts the attempt with outcome `running`.
    case attemptStarted(attemptId: String, taskId: String, workerId: String, at: Double)
    case attemptEnded(
        attemptId: String, outcome: AttemptOutcome, at: Double, exitCode: Int32?,
        error: String?, stderrTail: String?)
    /// Stored only if the task has no result yet (the first valid result wins).
    case result(
        taskId: String, attemptId: String, metrics: [String: Double?], units: [String: String],
        details: JSONValue, at: Double)
    /// Where an attempt ran and who shared its device (from its result): `coTenants` are task
    /// ids (stored capped at `SweepStore.maxCoTenants`), `atOnce` the most attempts at once.
    case attemptDevice(attemptId: String, device: String, atOnce: Int, coTenants: [String])
    /// A point of a progress curve; a repeat of (attempt, step, name) replaces the value.
    case metric(attemptId: String, step: Int, name: String, value: Double)
    /// Appends a point to the attempt's learning curve (`curve_points`); past
    /// `SweepStore.maxCurvePoints` points the attempt's `curve_drops` count grows instead.
    case curvePoint(attemptId: String, point: CurvePoint)
    /// Registers a worker or refreshes its host, info and state (first_seen is kept).
    case worker(id: String, host: String, info: JSONValue, seenAt: Double, state: String)
    /// Refreshes last_seen; ignored for a worker that never registered, since a heartbeat
    /// carries no state worth failing a batch over.
    case workerSeen(id: String, at: Double)
    /// A known worker's state changes; its host and info stay as stored.
    case workerState(id: String, state: String, at: Double)
    /// Records a content-addressed file; a repeat of the same sha256 is a no-op.
    case artifact(sha256: String, bytes: Int64, path: String, at: Double)
    case taskArtifact(taskId: String, name: String, sha256: String)
    case sweepCancelled(sweep: String, cancelled: Bool, at: Double)
    case event(at: Double, kind: String, sweep: String?, taskId: String?, workerId: String?, message: String)

    /// A short description for error messages.
    var summary: String {
        switch self {
        case .taskState(let id, let state, _, _): "set task \(id) to \(state.rawValue)"
        case .taskAttemptsUsed(let id, let n): "set attempts used of task \(id) to \(n)"
        case .taskStarted(let id, let n, _): "start attempt \(n) of task \(id)"
        case .attemptStarted(let a, let t, let w, _): "start attempt \(a) of task \(t) on worker \(w)"
        case .attemptEnded(let a, let outcome, _, _, _, _): "end attempt \(a) as \(outcome.rawValue)"
        case .result(let t, let a, _, _, _, _): "store the result of task \(t) from attempt \(a)"
        case .attemptDevice(let a, let device, _, _): "record device \(device) of attempt \(a)"
        case .metric(let a, let step, let name, _): "record metric \(name) at step \(step) of attempt \(a)"
        case .curvePoint(let a, _): "record a learning-curve point of attempt \(a)"
        case .worker(let id, _, _, _, _): "register worker \(id)"
        case .workerSeen(let id, _): "mark worker \(id) as seen"
        case .workerState(let id, let state, _): "set worker \(id) to \(state)"
        case .artifact(let sha, _, _, _): "record artifact \(sha)"
        case .taskArtifact(let t, let name, let sha): "link artifact \(name) (\(sha)) to task \(t)"
        case .sweepCancelled(let s, let c, _): c ? "cancel sweep \(s)" : "un-cancel sweep \(s)"
        case .event(_, let kind, _, _, _, _): "log a \(kind) event"
        }
    }
}
