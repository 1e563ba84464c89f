import GRDB
import SweepKit

/// A task of a sweep's latest plan as the ETA sees it: stage, model, state, and when its
/// succeeded attempt ran.
public struct TaskTiming: Sendable, Equatable {
    public var stage: String
    public var model: String?
    public var state: TaskState
    /// The succeeded attempt's start and end; nil for a task without a result.
    public var startedAt: Double?
    public var endedAt: Double?

    public init(stage: String, model: String?, state: TaskState, startedAt: Double?, endedAt: Double?) {
        self.stage = stage
        self.model = model
        self.state = state
        self.startedAt = startedAt
        self.endedAt = endedAt
    }
}

extension SweepStore {
    /// Every task of the sweep's latest plan with the times of the attempt that produced its
    /// result, and the start of each attempt still running (stage, model, started_at).
    public func progressTimings(sweep: String) throws -> (
        tasks: [TaskTiming], running: [(stage: String, model: String?, startedAt: Double)]
    ) {
        try read { db in
            let tasks = try Row.fetchAll(
                db,
                sql: """
                    SELECT t.id, t.stage, CAST(json_extract(t.params_json, '$.model') AS TEXT), t.state,
                           a.started_at, a.ended_at
                    FROM tasks t
                    LEFT JOIN results r ON r.task_id = t.id
                    LEFT JOIN attempts a ON a.id = r.attempt_id
                    WHERE t.sweep = ? AND t.active = 1
                    """, arguments: [sweep]
            )
            .map { row in
                let id: String = row[0]
                return TaskTiming(
                    stage: row[1], model: row[2], state: try TaskState.stored(row[3], task: id),
                    startedAt: row[4], endedAt: row[5])
            }
            let running = try Row.fetchAll(
                db,
                sql: """
                    SELECT t.stage, CAST(json_extract(t.params_json, '$.model') AS TEXT), a.started_at
                    FROM attempts a JOIN tasks t ON t.id = a.task_id
                    WHERE t.sweep = ? AND t.active = 1 AND a.outcome = 'running'
                    """, arguments: [sweep]
            )
            .map { row -> (stage: String, model: String?, startedAt: Double) in (row[0], row[1], row[2]) }
            return (tasks, running)
        }
    }
}
