import GRDB
import SweepKit

extension SweepStore {
    /// Inserts or refreshes a sweep from its plan in one transaction and un-cancels it.
    ///
    /// Tasks that already exist and succeeded, or are pending/ready/running, are kept
    /// ("reused"); tasks that failed or were cancelled go back to pending with attempts_used
    /// reset ("rerun"); ids never seen are inserted as pending ("new"). Tasks of an earlier
    /// launch that the plan no longer contains are "dropped": kept for history, hidden from
    /// the scheduler and results, and cancelled if unfinished; the summary counts those this launch
    /// drops (a task dropped earlier is left as it is). `plan_json` holds the plan
    /// without its tasks (the rows are the tasks).
    public func launch(_ plan: SweepPlan, now: Double) throws -> LaunchSummary {
        var seen = Set<String>()
        for task in plan.tasks where !seen.insert(task.id).inserted {
            throw StoreError(
                .invalidPlan,
                "the plan of sweep \(plan.name) lists task \(task.id) twice; this is a bug in plan expansion, please report it."
            )
        }
        // The plan without its tasks: they are the task rows (and task_inputs), written below and
        // read back by `plan(sweep:)` and `loadSnapshot`; stored once, not also as one JSON blob.
        var outline = plan
        outline.tasks = []
        let planJSON = try JSONColumns.plan(outline)
        return try write("launch sweep \(plan.name)") { db in
            try db.execute(
                sql: """
                    INSERT INTO sweeps (name, engine, spec_text, plan_json, retries, device, created_at, updated_at, cancelled)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
                    ON CONFLICT (name) DO UPDATE SET engine = excluded.engine, spec_text = excluded.spec_text,
                        plan_json = excluded.plan_json, retries = excluded.retries, device = excluded.device,
                        updated_at = excluded.updated_at, cancelled = 0
                    """,
                arguments: [plan.name, plan.engine, plan.specText, planJSON, plan.retries, plan.device, now, now])

            var existing: [String: TaskState] = [:]
            // Tasks an earlier launch already dropped stay as they are unless this plan has them again.
            var inactive: Set<String> = []
            for row in try Row.fetchAll(
                db, sql: "SELECT id, state, active FROM tasks WHERE sweep = ?", arguments: [plan.name])
            {
                let id: String = row[0]
                existing[id] = try TaskState.stored(row[1], task: id)
                if (row[2] as Int) == 0 { inactive.insert(id) }
            }

            var summary = LaunchSummary(sweep: plan.name, new: 0, reused: 0, rerun: 0, total: plan.tasks.count)
            for (ordinal, task) in plan.tasks.enumerated() {
                switch existing.removeValue(forKey: task.id) {
                case nil:
                    try db.cachedStatement(
                        sql: """
                            INSERT INTO tasks (id, sweep, stage, params_json, priority, state, attempts_used, error,
                                               ordinal, active, created_at, updated_at)
                            VALUES (?, ?, ?, ?, ?, 'pending', 0, NULL, ?, 1, ?, ?)
                            """
                    ).execute(arguments: [
                        task.id, plan.name, task.stage, JSONColumns.text(task.params),
                        task.priority, ordinal, now, now,
                    ])
                    for (stage, input) in task.inputs {
                        try db.cachedStatement(
                            sql: """
                                INSERT INTO task_inputs (task_id, input_task_id, input_stage) VALUES (?, ?, ?)
                                """
                        ).execute(arguments: [task.id, input, stage])
                    }
                    summary.new += 1
                case .failed?, .cancelled?:
                    try db.cachedStatement(
                        sql: """
                            UPDATE tasks SET state = 'pending', attempts_used = 0, error = NULL, priority = ?,
                                ordinal = ?, active = 1, updated_at = ? WHERE id = ?
                            """
                    ).execute(arguments: [task.priority, ordinal, now, task.id])
                    summary.rerun += 1
                case .succeeded?, .pending?, .ready?, .running?:
                    try db.cachedStatement(sql: "UPDATE tasks SET priority = ?, ordinal = ?, active = 1 WHERE id = ?")
                        .execute(arguments: [task.priority, ordinal, task.id])
                    summary.reused += 1
                }
            }

            for (id, state) in existing where !inactive.contains(id) {
                try db.cachedStatement(sql: "UPDATE tasks SET active = 0 WHERE id = ?").execute(arguments: [id])
                if !state.isFinal {
                    try Self.cancelTask(db, id: id, reason: "dropped from the sweep's plan by a relaunch", now: now)
                }
                summary.dropped += 1
            }

            try Self.insertEvent(
                db, at: now, kind: "launch", sweep: plan.name,
                message:
                    "launched sweep \(plan.name): \(summary.new) new, \(summary.reused) reused, "
                    + "\(summary.rerun) rerun, \(summary.dropped) dropped, \(summary.total) in the plan")
            return summary
        }
    }

    private static func cancelTask(_ db: Database, id: String, reason: String, now: Double) throws {
        try db.cachedStatement(sql: "UPDATE tasks SET state = 'cancelled', error = ?, updated_at = ? WHERE id = ?")
            .execute(arguments: [reason, now, id])
        try db.cachedStatement(
            sql: """
                UPDATE attempts SET outcome = 'cancelled', ended_at = ?, error = ? WHERE task_id = ? AND outcome = 'running'
                """
        ).execute(arguments: [now, reason, id])
    }
}
