import GRDB
import SweepKit

extension SweepStore {
    /// Everything the coordinator needs to rebuild its scheduler after a restart, read in one
    /// consistent snapshot; with `sweep`, only that sweep (what a launch needs).
    public func loadSnapshot(sweep only: String? = nil) throws -> StoreSnapshot {
        try read { db in
            let filter: StatementArguments = [only]
            var sweeps: [SweepPlan] = []
            var cancelled = Set<String>()
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT name, plan_json, cancelled FROM sweeps WHERE ?1 IS NULL OR name = ?1 ORDER BY created_at, name
                    """, arguments: filter)
            {
                let name: String = row[0]
                // Without tasks: the rows below are the tasks (a database written before the plan
                // was stored without them still has them in plan_json; they are dropped here).
                var plan = try JSONColumns.plan(row[1], sweep: name)
                plan.tasks = []
                sweeps.append(plan)
                if row[2] as Bool { cancelled.insert(name) }
            }

            var inputs: [String: [String: String]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT i.task_id, i.input_stage, i.input_task_id FROM task_inputs i
                    JOIN tasks t ON t.id = i.task_id WHERE t.active = 1 AND (?1 IS NULL OR t.sweep = ?1)
                    """, arguments: filter)
            {
                inputs[row[0], default: [:]][row[1]] = row[2] as String
            }

            var tasks: [TaskRecord] = []
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT t.id, t.sweep, t.stage, t.params_json, t.priority, t.state, t.attempts_used, t.error
                    FROM tasks t JOIN sweeps s ON s.name = t.sweep
                    WHERE t.active = 1 AND (?1 IS NULL OR t.sweep = ?1) ORDER BY s.created_at, s.name, t.ordinal
                    """, arguments: filter)
            {
                let id: String = row[0]
                tasks.append(
                    TaskRecord(
                        id: id, sweep: row[1], stage: row[2],
                        params: try JSONColumns.object(row[3], what: "parameters of task \(id)"),
                        inputs: inputs[id] ?? [:], priority: row[4],
                        state: try TaskState.stored(row[5], task: id), attemptsUsed: row[6], error: row[7]))
            }

            let running = try Self.fetchAttempts(
                db, where: "outcome = 'running' AND (?1 IS NULL OR task_id IN (SELECT id FROM tasks WHERE sweep = ?1))",
                arguments: filter)
            return StoreSnapshot(sweeps: sweeps, cancelledSweeps: cancelled, tasks: tasks, runningAttempts: running)
        }
    }

    /// The active tasks of `sweep` in plan order, as its plan lists them.
    static func plannedTasks(_ db: Database, sweep: String) throws -> [PlannedTask] {
        var inputs: [String: [String: String]] = [:]
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT i.task_id, i.input_stage, i.input_task_id FROM task_inputs i
                JOIN tasks t ON t.id = i.task_id WHERE t.active = 1 AND t.sweep = ?
                """, arguments: [sweep])
        {
            inputs[row[0], default: [:]][row[1]] = row[2] as String
        }
        return try Row.fetchAll(
            db,
            sql: "SELECT id, stage, params_json, priority FROM tasks WHERE sweep = ? AND active = 1 ORDER BY ordinal",
            arguments: [sweep]
        ).map { row in
            let id: String = row[0]
            return PlannedTask(
                id: id, stage: row[1], params: try JSONColumns.object(row[2], what: "parameters of task \(id)"),
                inputs: inputs[id] ?? [:], priority: row[3])
        }
    }

    static func fetchAttempts(_ db: Database, where condition: String, arguments: StatementArguments) throws
        -> [AttemptRow]
    {
        try Row.fetchAll(
            db,
            sql: """
                SELECT id, task_id, worker_id, started_at, ended_at, outcome, exit_code, error, stderr_tail
                FROM attempts WHERE \(condition) ORDER BY rowid
                """, arguments: arguments
        ).map { row in
            let id: String = row[0]
            return AttemptRow(
                id: id, taskId: row[1], workerId: row[2], startedAt: row[3], endedAt: row[4],
                outcome: try AttemptOutcome.stored(row[5], attempt: id), exitCode: row[6],
                error: row[7], stderrTail: row[8])
        }
    }
}
