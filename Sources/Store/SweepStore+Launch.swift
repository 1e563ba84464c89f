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

    /// A session's staging tables: `launch_<session>` (the tasks, keyed by their plan index, each
    /// id at most once) and `launch_<session>_inputs`, temporary tables of the writer connection.
    /// One pair per session, so that ending it is a DROP (freeing pages) rather than a DELETE of
    /// every row and index entry. `session` is the coordinator's hex id (or "direct"): letters
    /// and digits only, checked here because it becomes part of a table name.
    private static func tables(_ session: String) throws -> (tasks: String, inputs: String) {
        guard !session.isEmpty, session.utf8.count <= 64,
            session.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) })
        else { throw StoreError(.invalidPlan, "a launch session id must be letters and digits, not '\(session)'.") }
        return ("temp.\"launch_\(session)\"", "temp.\"launch_\(session)_inputs\"")
    }

    private static func clearStaging(_ db: Database, session: String) throws {
        let (tasks, inputs) = try tables(session)
        try db.execute(sql: "DROP TABLE IF EXISTS \(tasks); DROP TABLE IF EXISTS \(inputs)")
    }

    private static func stage(
        _ db: Database, session: String, sweep: String, first: Int, tasks: [PlannedTask]
    ) throws {
        let (staged, stagedInputs) = try tables(session)
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS \(staged) (
                    ordinal INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stage TEXT NOT NULL,
                    params_json TEXT NOT NULL, priority INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS \(stagedInputs) (
                    task_id TEXT NOT NULL, input_stage TEXT NOT NULL, input_task_id TEXT NOT NULL,
                    PRIMARY KEY (task_id, input_stage)
                ) WITHOUT ROWID;
                """)
        guard !tasks.isEmpty else { return }
        let insert = try db.makeStatement(
            sql: "INSERT INTO \(staged) (ordinal, id, stage, params_json, priority) VALUES (?, ?, ?, ?, ?)")
        let insertInput = try db.makeStatement(
            sql: "INSERT INTO \(stagedInputs) (task_id, input_stage, input_task_id) VALUES (?, ?, ?)")
        for (offset, task) in tasks.enumerated() {
            do {
                try insert.execute(arguments: [
                    first + offset, task.id, task.stage, JSONColumns.text(task.params), task.priority,
                ])
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StoreError(
                    .invalidPlan,
                    "the plan of sweep \(sweep) lists task \(task.id) twice (again at index \(first + offset)); "
                        + "nothing was launched.")
            }
            for (stage, input) in task.inputs {
                try insertInput.execute(arguments: [task.id, stage, input])
            }
        }
    }

    // MARK: - Merge

    /// The state a new or rerun task starts in: `ready` when it consumes nothing (the scheduler
    /// would promote it at once, one more write per task), else `pending` until its inputs
    /// succeed. `inputs` is the staged inputs table, `id` the expression of the task's id.
    private static func firstState(_ inputs: String, _ id: String) -> String {
        "CASE WHEN EXISTS (SELECT 1 FROM \(inputs) i WHERE i.task_id = \(id)) THEN 'pending' ELSE 'ready' END"
    }

    private static func merge(_ db: Database, session: String, plan: SweepPlan, now: Double) throws -> LaunchSummary {
        let (staged, stagedInputs) = try tables(session)
        // A session whose parts brought nothing (an empty plan) still has its tables.
        try stage(db, session: session, sweep: plan.name, first: 0, tasks: [])
        // A staged id that is a task of another sweep (ids are content hashes that include the
        // sweep's name, so only a forged plan can do this) would overwrite that sweep's task.
        if let row = try Row.fetchOne(
            db,
            sql: "SELECT s.id, t.sweep FROM \(staged) s JOIN tasks t ON t.id = s.id WHERE t.sweep <> ? LIMIT 1",
            arguments: [plan.name])
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
        let counts = try Row.fetchOne(
            db,
            sql: """
                SELECT count(*), count(t.id), coalesce(sum(t.state IN ('failed', 'cancelled')), 0)
                FROM \(staged) s LEFT JOIN tasks t ON t.id = s.id
                """)!
        let total: Int = counts[0]
        let existing: Int = counts[1]
        let rerun: Int = counts[2]
        var summary = LaunchSummary(
            sweep: plan.name, new: total - existing, reused: existing - rerun, rerun: rerun, total: total)

        // Dropped: active tasks of the sweep that the plan no longer has. Their running attempts
        // and unfinished states are cancelled first (while the states still say which).
        let reason = "dropped from the sweep's plan by a relaunch"
        try db.execute(
            sql: """
                CREATE TEMP TABLE IF NOT EXISTS launch_dropped (id TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID;
                DELETE FROM launch_dropped;
                """)
        try db.execute(
            sql: """
                INSERT INTO launch_dropped (id)
                SELECT id FROM tasks WHERE sweep = ? AND active = 1 AND id NOT IN (SELECT id FROM \(staged))
                """, arguments: [plan.name])
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

        if existing > 0 {
            // Kept tasks take the plan's priority and order; failed and cancelled ones run again.
            // (Correlated subqueries rather than UPDATE … FROM, which needs SQLite 3.33.)
            let fromStaging = """
                priority = (SELECT s.priority FROM \(staged) s WHERE s.id = tasks.id),
                ordinal = (SELECT s.ordinal FROM \(staged) s WHERE s.id = tasks.id), active = 1
                """
            let isStaged = "id IN (SELECT id FROM \(staged))"
            try db.execute(
                sql: "UPDATE tasks SET \(fromStaging) WHERE \(isStaged) AND state NOT IN ('failed', 'cancelled')")
            try db.execute(
                sql: """
                    UPDATE tasks SET state = \(firstState(stagedInputs, "tasks.id")), attempts_used = 0, error = NULL,
                        updated_at = ?, \(fromStaging)
                    WHERE \(isStaged) AND state IN ('failed', 'cancelled')
                    """, arguments: [now])
        }

        // New tasks, in id order (the id index then grows at its end instead of at random
        // places: 4 s rather than 7 s for a million; plan order is the ordinal column), then each
        // staged input not there yet: a kept task has the same inputs already (its id is a hash
        // of them). An input must be a task by the commit.
        try db.execute(
            sql: """
                INSERT INTO tasks (id, sweep, stage, params_json, priority, state, attempts_used, error,
                                   ordinal, active, created_at, updated_at)
                SELECT id, ?1, stage, params_json, priority, \(firstState(stagedInputs, "s.id")), 0, NULL, ordinal,
                    1, ?2, ?2
                FROM \(staged) s WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = s.id) ORDER BY id
                """, arguments: [plan.name, now])
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO task_inputs (task_id, input_task_id, input_stage)
                SELECT task_id, input_task_id, input_stage FROM \(stagedInputs)
                """)

        try clearStaging(db, session: session)
        try insertEvent(
            db, at: now, kind: "launch", sweep: plan.name,
            message:
                "launched sweep \(plan.name): \(summary.new) new, \(summary.reused) reused, "
                + "\(summary.rerun) rerun, \(summary.dropped) dropped, \(summary.total) in the plan")
        return summary
    }
}
