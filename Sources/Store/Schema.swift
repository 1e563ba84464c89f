import GRDB

/// The database schema as named migrations.
///
/// Migrations are append-only: once one has landed on `main` it is never edited, because
/// state directories created by earlier builds have already recorded it as applied. A schema
/// change is a new `registerMigration` call at the end.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: sweeps, tasks, attempts, workers, metrics, results, artifacts, events") { db in
            try db.execute(sql: v1)
        }
        migrator.registerMigration("v2: curve_points, curve_drops") { db in
            try db.execute(sql: v2)
        }
        migrator.registerMigration("v3: attempts.device, attempts.cotenants_at_once, attempts.cotenants_json") { db in
            try db.execute(sql: v3)
        }
        return migrator
    }

    // Times are REAL seconds since 1970: GRDB writes `Date` as text through ICU, which is
    // slow on Linux and in the coordinator's hot path.
    //
    // tasks.ordinal is the task's index in its sweep's latest plan (topological order), and
    // tasks.active says whether the latest plan still contains the task: a relaunch with an
    // edited spec keeps the history of dropped tasks but hides them from the scheduler and
    // from results.
    private static let v1 = """
        CREATE TABLE sweeps (
            name TEXT NOT NULL PRIMARY KEY,
            engine TEXT NOT NULL,
            spec_text TEXT NOT NULL,
            plan_json TEXT NOT NULL,
            retries INTEGER NOT NULL,
            device TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            cancelled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE tasks (
            id TEXT NOT NULL PRIMARY KEY,
            sweep TEXT NOT NULL REFERENCES sweeps(name),
            stage TEXT NOT NULL,
            params_json TEXT NOT NULL,
            priority INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts_used INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            ordinal INTEGER NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX tasks_on_sweep_state ON tasks(sweep, state);
        CREATE TABLE task_inputs (
            task_id TEXT NOT NULL REFERENCES tasks(id),
            input_task_id TEXT NOT NULL REFERENCES tasks(id) DEFERRABLE INITIALLY DEFERRED,
            input_stage TEXT NOT NULL,
            PRIMARY KEY (task_id, input_stage)
        ) WITHOUT ROWID;
        CREATE TABLE attempts (
            id TEXT NOT NULL PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks(id),
            worker_id TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            outcome TEXT NOT NULL,
            exit_code INTEGER,
            error TEXT,
            stderr_tail TEXT
        );
        CREATE INDEX attempts_on_task ON attempts(task_id);
        CREATE INDEX attempts_running ON attempts(task_id) WHERE outcome = 'running';
        CREATE TABLE workers (
            id TEXT NOT NULL PRIMARY KEY,
            host TEXT NOT NULL,
            info_json TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            state TEXT NOT NULL
        );
        -- value is nullable because SQLite stores a NaN (a diverged loss) as NULL.
        CREATE TABLE metrics (
            attempt_id TEXT NOT NULL REFERENCES attempts(id),
            step INTEGER NOT NULL,
            name TEXT NOT NULL,
            value REAL,
            PRIMARY KEY (attempt_id, name, step)
        ) WITHOUT ROWID;
        CREATE TABLE results (
            task_id TEXT NOT NULL PRIMARY KEY REFERENCES tasks(id),
            attempt_id TEXT NOT NULL REFERENCES attempts(id),
            metrics_json TEXT NOT NULL,
            units_json TEXT NOT NULL,
            details_json TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE artifacts (
            sha256 TEXT NOT NULL PRIMARY KEY,
            bytes INTEGER NOT NULL,
            path TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE task_artifacts (
            task_id TEXT NOT NULL REFERENCES tasks(id),
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL REFERENCES artifacts(sha256),
            PRIMARY KEY (task_id, name)
        ) WITHOUT ROWID;
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            sweep TEXT,
            task_id TEXT,
            worker_id TEXT,
            message TEXT NOT NULL
        );
        """

    /// Learning curves: the checked fields of each `progress` event an attempt's own worker
    /// sent (`AttemptProgress.curvePoint`), at most `SweepStore.maxCurvePoints` per attempt.
    /// `seq` is the arrival order within the attempt (0, 1, …); a NULL field was absent or out
    /// of range. `curve_drops` counts the points that came after the cap and were not stored.
    private static let v2 = """
        CREATE TABLE curve_points (
            attempt_id TEXT NOT NULL REFERENCES attempts(id),
            seq INTEGER NOT NULL,
            epoch INTEGER,
            epochs INTEGER,
            step INTEGER,
            loss REAL,
            train_acc REAL,
            test_acc REAL,
            val_acc REAL,
            lr REAL,
            at REAL NOT NULL,
            PRIMARY KEY (attempt_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE curve_drops (
            attempt_id TEXT NOT NULL PRIMARY KEY REFERENCES attempts(id),
            dropped INTEGER NOT NULL
        ) WITHOUT ROWID;
        """

    /// Where an attempt ran and who shared its device, as its worker reported with its result:
    /// `device` the slot's device ("cuda:0", "cpu"), `cotenants_at_once` the most attempts that
    /// ran on it at once while this one ran (itself included), `cotenants_json` a JSON array of
    /// the other attempts' task ids (at most `SweepStore.maxCoTenants`). NULL: not recorded (a
    /// row from before v3, an older worker, an attempt without a result).
    private static let v3 = """
        ALTER TABLE attempts ADD COLUMN device TEXT;
        ALTER TABLE attempts ADD COLUMN cotenants_at_once INTEGER;
        ALTER TABLE attempts ADD COLUMN cotenants_json TEXT;
        """
}
