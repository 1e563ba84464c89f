/// States of a task (a cell of the sweep at one stage). Persisted as the raw value.
///
/// pending → ready (its inputs succeeded) → running → succeeded | failed, and back to
/// ready when an attempt is lost or fails with retries left. `cancelled` is set by the user.
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case pending  // waiting for the tasks it consumes
    case ready  // runnable, in the queue
    case running  // an attempt is assigned
    case succeeded
    case failed  // retries exhausted, invalid task, or an input failed
    case cancelled

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// How one attempt (one run of a task on one worker) ended.
public enum AttemptOutcome: String, Codable, Sendable, CaseIterable {
    case running
    case succeeded
    case failed  // the engine reported failure or exited non-zero
    case invalid  // the engine said the task itself is invalid (exit 2): never retried
    case lost  // its worker went silent or disconnected
    case timeout  // the worker stopped it at a time limit (stage, worker or no-progress): retried
    case cancelled  // cancelled by the user or because another attempt won
    case duplicate  // a result arrived after another attempt's result was stored
}
