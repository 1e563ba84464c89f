import GRDB
import SweepKit

/// Read-only queries for the CLI. They work on a store opened with `openReadOnly` while the
/// coordinator writes.
extension SweepStore {
    /// Every sweep with its task counts per state, oldest first.
    public func sweepSummaries() throws -> [SweepSummary] {
        try read { db in
            var counts: [String: [TaskState: Int]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT sweep, state, COUNT(*) FROM tasks WHERE active = 1 GROUP BY sweep, state
                    """)
            {
                let sweep: String = row[0]
                counts[sweep, default: [:]][try TaskState.stored(row[1], task: "of sweep \(sweep)")] = row[2]
            }
            return try Row.fetchAll(
                db, sql: "SELECT name, engine, created_at, cancelled FROM sweeps ORDER BY created_at, name"
            )
            .map { row in
                let name: String = row[0]
                let byState = counts[name] ?? [:]
                return SweepSummary(
                    name: name, engine: row[1], createdAt: row[2], cancelled: row[3],
                    counts: byState, total: byState.values.reduce(0, +))
            }
        }
    }

    /// The sweep's latest plan, or nil if no sweep has that name; its tasks are the sweep's
    /// active task rows (`plan_json` holds the rest).
    public func plan(sweep: String) throws -> SweepPlan? {
        try read { db in
            guard
                let text = try String.fetchOne(
                    db, sql: "SELECT plan_json FROM sweeps WHERE name = ?", arguments: [sweep])
            else { return nil }
            var plan = try JSONColumns.plan(text, sweep: sweep)
            plan.tasks = try Self.plannedTasks(db, sweep: sweep)
            return plan
        }
    }

    public func workers() throws -> [WorkerRow] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, host, info_json, first_seen, last_seen, state FROM workers ORDER BY id"
            )
            .map { row in
                let id: String = row[0]
                return WorkerRow(
                    id: id, host: row[1], info: try JSONColumns.value(row[2], what: "info of worker \(id)"),
                    firstSeen: row[3], lastSeen: row[4], state: row[5])
            }
        }
    }

    /// A task's attempts in the order they started.
    public func attempts(task: String) throws -> [AttemptRow] {
        try read { db in try Self.fetchAttempts(db, where: "task_id = ?", arguments: [task]) }
    }

    /// The last `limit` events, oldest first (reads like a log tail).
    public func recentEvents(limit: Int) throws -> [EventRow] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT at, kind, sweep, task_id, worker_id, message FROM events ORDER BY id DESC LIMIT ?
                    """, arguments: [max(0, limit)]
            )
            .reversed()
            .map { EventRow(at: $0[0], kind: $0[1], sweep: $0[2], taskId: $0[3], workerId: $0[4], message: $0[5]) }
        }
    }

    public func artifactPath(sha256: String) throws -> String? {
        try read { db in
            try String.fetchOne(db, sql: "SELECT path FROM artifacts WHERE sha256 = ?", arguments: [sha256])
        }
    }

    /// How many tasks of the sweep's latest plan have a stored result.
    public func countResults(sweep: String) throws -> Int {
        try read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM results r JOIN tasks t ON t.id = r.task_id WHERE t.sweep = ? AND t.active = 1
                    """, arguments: [sweep]) ?? 0
        }
    }
}
