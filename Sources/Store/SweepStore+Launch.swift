import GRDB
import SweepKit

/// Launching a sweep: its tasks are first staged (in temporary tables of the writer connection:
/// no WAL, no fsync, gone with the process), then merged into `tasks` and `task_inputs` by a
/// handful of set-based statements in one transaction. A launch in parts (the coordinator's
/// `launch_begin` / `launch_tasks` / `launch_end`) stages each part in a transaction of its own,
/// between which the coordinator serves its workers; `launch(_:now:)` stages and merges at once.
extension SweepStore {
    /// Inserts or refreshes a sweep from its plan in one transaction and un-cancels it.
    ///
    /// Tasks that already exist and succeeded, or are pending/ready/running, are kept
    /// ("reused"); tasks that failed or were cancelled go back to be run with attempts_used
    /// reset ("rerun"); ids never seen are inserted ("new"). New and rerun tasks start as ready
    /// when they consume no other task, else as pending. Tasks of an earlier
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
        let session = "direct"
        return try write("launch sweep \(plan.name)") { db in
            try Self.clearStaging(db, session: session)
            try Self.stage(db, session: session, sweep: plan.name, first: 0, tasks: plan.tasks)
            return try Self.merge(db, session: session, plan: plan, now: now)
        }
    }

    /// Stages part of a launch in parts: `tasks` are the plan's tasks from index `first` on.
    /// A task id staged twice in one session is refused (naming it); nothing of this part is
    /// kept then.
    public func stageLaunch(session: String, sweep: String, first: Int, tasks: [PlannedTask]) throws {
        try write("stage the tasks of sweep \(sweep)") { db in
            try Self.stage(db, session: session, sweep: sweep, first: first, tasks: tasks)
        }
    }

    /// Ends a launch in parts: merges what `stageLaunch` staged under `session` (the plan's
    /// tasks; `plan.tasks` itself is not read) as `launch` does, and clears the staging.
    public func finishLaunch(session: String, plan: SweepPlan, now: Double) throws -> LaunchSummary {
        try write("launch sweep \(plan.name)") { db in
            try Self.merge(db, session: session, plan: plan, now: now)
        }
    }

    /// Forgets what a launch in parts staged (it was abandoned or expired).
    public func discardLaunch(session: String) throws {
        try write("discard a staged launch") { db in try Self.clearStaging(db, session: session) }
    }

    // MARK: - Staging

    private static func createStaging(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TEMP TABLE IF NOT EXISTS launch_staging (
                    session TEXT NOT NULL, ordinal INTEGER NOT NULL, id TEXT NOT NULL, stage TEXT NOT NULL,
                    params_json TEXT NOT NULL, priority INTEGER NOT NULL, fresh INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (session, ordinal)
                ) WITHOUT ROWID;
                CREATE UNIQUE INDEX IF NOT EXISTS temp.launch_staging_on_id ON launch_staging (session, id);
                CREATE TEMP TABLE IF NOT EXISTS launch_staging_inputs (
                    session TEXT NOT NULL, task_id TEXT NOT NULL, input_stage TEXT NOT NULL,
                    input_task_id TEXT NOT NULL,
                    PRIMARY KEY (session, task_id, input_stage)
                ) WITHOUT ROWID;
                CREATE TEMP TABLE IF NOT EXISTS launch_dropped (id TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID;
                """)
    }

    private static func clearStaging(_ db: Database, session: String) throws {
        try createStaging(db)
        try db.execute(sql: "DELETE FROM launch_staging WHERE session = ?", arguments: [session])
        try db.execute(sql: "DELETE FROM launch_staging_inputs WHERE session = ?", arguments: [session])
    }

    private static func stage(
        _ db: Database, session: String, sweep: String, first: Int, tasks: [PlannedTask]
    ) throws {
        try createStaging(db)
        let insert = try db.cachedStatement(
            sql: """
                INSERT INTO launch_staging (session, ordinal, id, stage, params_json, priority)
                VALUES (?, ?, ?, ?, ?, ?)
                """)
        let insertInput = try db.cachedStatement(
            sql: """
                INSERT INTO launch_staging_inputs (session, task_id, input_stage, input_task_id) VALUES (?, ?, ?, ?)
                """)
        for (offset, task) in tasks.enumerated() {
            do {
                try insert.execute(arguments: [
                    session, first + offset, task.id, task.stage, JSONColumns.text(task.params), task.priority,
                ])
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StoreError(
                    .invalidPlan,
                    "the plan of sweep \(sweep) lists task \(task.id) twice (again at index \(first + offset)); "
                        + "nothing was launched.")
            }
            for (stage, input) in task.inputs {
                try insertInput.execute(arguments: [session, task.id, stage, input])
            }
        }
    }

    // MARK: - Merge

    /// The state a new or rerun task starts in: `ready` when it consumes nothing (the scheduler
    /// would promote it at once, one more write per task), else `pending` until its inputs
    /// succeed. `id` names the task's id column; `?1` is the session.
    private static func firstState(_ id: String) -> String {
        """
        CASE WHEN EXISTS (SELECT 1 FROM launch_staging_inputs i WHERE i.session = ?1 AND i.task_id = \(id))
        THEN 'pending' ELSE 'ready' END
        """
    }

    private static func merge(_ db: Database, session: String, plan: SweepPlan, now: Double) throws -> LaunchSummary {
        try createStaging(db)
        // A staged id that is a task of another sweep (ids are content hashes that include the
        // sweep's name, so only a forged plan can do this) would overwrite that sweep's task.
        if let row = try Row.fetchOne(
            db,
            sql: """
                SELECT s.id, t.sweep FROM launch_staging s JOIN tasks t ON t.id = s.id
                WHERE s.session = ? AND t.sweep <> ? LIMIT 1
                """, arguments: [session, plan.name])
        {
            let id: String = row[0]
            let other: String = row[1]
            throw StoreError(
                .invalidPlan,
                "the plan of sweep \(plan.name) lists task \(id), a task of sweep \(other); nothing was launched.")
        }

        var outline = plan
        outline.tasks = []
        try db.execute(
            sql: """
                INSERT INTO sweeps (name, engine, spec_text, plan_json, retries, device, created_at, updated_at, cancelled)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT (name) DO UPDATE SET engine = excluded.engine, spec_text = excluded.spec_text,
                    plan_json = excluded.plan_json, retries = excluded.retries, device = excluded.device,
                    updated_at = excluded.updated_at, cancelled = 0
                """,
            arguments: [
                plan.name, plan.engine, plan.specText, try JSONColumns.plan(outline), plan.retries, plan.device, now,
                now,
            ])

        // Which staged tasks are new, which come back to run again, which are kept.
        try db.execute(
            sql: """
                UPDATE launch_staging SET fresh = 1
                WHERE session = ? AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = launch_staging.id)
                """, arguments: [session])
        let counts = try Row.fetchOne(
            db,
            sql: """
                SELECT count(*), coalesce(sum(s.fresh), 0),
                       coalesce(sum(t.state IN ('failed', 'cancelled')), 0)
                FROM launch_staging s LEFT JOIN tasks t ON t.id = s.id WHERE s.session = ?
                """, arguments: [session])!
        let total: Int = counts[0]
        let new: Int = counts[1]
        let rerun: Int = counts[2]
        var summary = LaunchSummary(
            sweep: plan.name, new: new, reused: total - new - rerun, rerun: rerun, total: total)

        // Dropped: active tasks of the sweep that the plan no longer has. Their running attempts
        // and unfinished states are cancelled first (while the states still say which).
        let reason = "dropped from the sweep's plan by a relaunch"
        try db.execute(sql: "DELETE FROM launch_dropped")
        try db.execute(
            sql: """
                INSERT INTO launch_dropped (id)
                SELECT id FROM tasks WHERE sweep = ? AND active = 1
                    AND id NOT IN (SELECT id FROM launch_staging WHERE session = ?)
                """, arguments: [plan.name, session])
        summary.dropped = db.changesCount
        if summary.dropped > 0 {
            try db.execute(
                sql: """
                    UPDATE attempts SET outcome = 'cancelled', ended_at = ?, error = ?
                    WHERE outcome = 'running' AND task_id IN (
                        SELECT d.id FROM launch_dropped d JOIN tasks t ON t.id = d.id
                        WHERE t.state NOT IN ('succeeded', 'failed', 'cancelled'))
                    """, arguments: [now, reason])
            try db.execute(
                sql: """
                    UPDATE tasks SET state = 'cancelled', error = ?, updated_at = ?
                    WHERE id IN (SELECT id FROM launch_dropped) AND state NOT IN ('succeeded', 'failed', 'cancelled')
                    """, arguments: [reason, now])
            try db.execute(sql: "UPDATE tasks SET active = 0 WHERE id IN (SELECT id FROM launch_dropped)")
            try db.execute(sql: "DELETE FROM launch_dropped")
        }

        // Kept tasks take the plan's priority and order; failed and cancelled ones run again.
        // (Correlated subqueries rather than UPDATE … FROM, which needs SQLite 3.33.)
        let fromStaging = """
            priority = (SELECT s.priority FROM launch_staging s WHERE s.session = ?1 AND s.id = tasks.id),
            ordinal = (SELECT s.ordinal FROM launch_staging s WHERE s.session = ?1 AND s.id = tasks.id), active = 1
            """
        let staged = "id IN (SELECT id FROM launch_staging WHERE session = ?1 AND fresh = 0)"
        try db.execute(
            sql: "UPDATE tasks SET \(fromStaging) WHERE \(staged) AND state NOT IN ('failed', 'cancelled')",
            arguments: [session])
        try db.execute(
            sql: """
                UPDATE tasks SET state = \(Self.firstState("tasks.id")), attempts_used = 0, error = NULL,
                    updated_at = ?2, \(fromStaging)
                WHERE \(staged) AND state IN ('failed', 'cancelled')
                """, arguments: [session, now])

        // New tasks, in plan order, then their inputs (an input must be a task by the commit).
        try db.execute(
            sql: """
                INSERT INTO tasks (id, sweep, stage, params_json, priority, state, attempts_used, error,
                                   ordinal, active, created_at, updated_at)
                SELECT id, ?2, stage, params_json, priority, \(Self.firstState("launch_staging.id")), 0, NULL, ordinal,
                    1, ?3, ?3
                FROM launch_staging WHERE session = ?1 AND fresh = 1 ORDER BY ordinal
                """, arguments: [session, plan.name, now])
        try db.execute(
            sql: """
                INSERT INTO task_inputs (task_id, input_task_id, input_stage)
                SELECT i.task_id, i.input_task_id, i.input_stage FROM launch_staging_inputs i
                JOIN launch_staging s ON s.session = i.session AND s.id = i.task_id
                WHERE i.session = ? AND s.fresh = 1
                """, arguments: [session])

        try clearStaging(db, session: session)
        try insertEvent(
            db, at: now, kind: "launch", sweep: plan.name,
            message:
                "launched sweep \(plan.name): \(summary.new) new, \(summary.reused) reused, "
                + "\(summary.rerun) rerun, \(summary.dropped) dropped, \(summary.total) in the plan")
        return summary
    }
}
