import GRDB
import SweepKit

extension SweepStore {
    /// The most co-tenants (task ids) stored per attempt (the wire's cap too).
    public static let maxCoTenants = 64

    /// Applies a batch of mutations in ONE write transaction: all of them or, if any is
    /// rejected, none.
    ///
    /// Returns, for each `.result` mutation in order, whether it was stored (true) or dropped
    /// because the task already had a result (false).
    @discardableResult
    public func apply(_ batch: [StoreMutation]) throws -> [Bool] {
        guard !batch.isEmpty else { return [] }
        return try write("apply \(batch.count) changes") { db in
            var stored: [Bool] = []
            for mutation in batch {
                do {
                    if let wasStored = try Self.apply(mutation, db) { stored.append(wasStored) }
                } catch let error as StoreError {
                    throw StoreError(
                        error.code,
                        "cannot \(mutation.summary) in \(path): \(error.description) "
                            + "The batch of \(batch.count) changes was rolled back; nothing in it was saved.")
                } catch {
                    throw StoreError(
                        .batchRejected,
                        "cannot \(mutation.summary) in \(path): \(Self.reason(error)). "
                            + "The batch of \(batch.count) changes was rolled back; nothing in it was saved.")
                }
            }
            return stored
        }
    }

    /// Applies one mutation with cached statements (the coordinator's hot path: about five
    /// per task at thousands of tasks per second). Returns whether a `.result` was stored.
    private static func apply(_ mutation: StoreMutation, _ db: Database) throws -> Bool? {
        switch mutation {
        case .taskState(let taskId, let state, let error, let at):
            try db.cachedStatement(sql: "UPDATE tasks SET state = ?, error = ?, updated_at = ? WHERE id = ?")
                .execute(arguments: [state.rawValue, error, at, taskId])
            try requireChange(db, "task \(taskId) is not in the store.")

        case .taskAttemptsUsed(let taskId, let attemptsUsed):
            try db.cachedStatement(sql: "UPDATE tasks SET attempts_used = ? WHERE id = ?")
                .execute(arguments: [attemptsUsed, taskId])
            try requireChange(db, "task \(taskId) is not in the store.")

        case .taskStarted(let taskId, let attemptsUsed, let at):
            try db.cachedStatement(
                sql: """
                    UPDATE tasks SET state = 'running', attempts_used = ?, error = NULL, updated_at = ? WHERE id = ?
                    """
            ).execute(arguments: [attemptsUsed, at, taskId])
            try requireChange(db, "task \(taskId) is not in the store.")

        case .attemptStarted(let attemptId, let taskId, let workerId, let at):
            try db.cachedStatement(
                sql: """
                    INSERT INTO attempts (id, task_id, worker_id, started_at, outcome) VALUES (?, ?, ?, ?, 'running')
                    """
            ).execute(arguments: [attemptId, taskId, workerId, at])

        case .attemptEnded(let attemptId, let outcome, let at, let exitCode, let error, let stderrTail):
            try db.cachedStatement(
                sql: """
                    UPDATE attempts SET outcome = ?, ended_at = ?, exit_code = ?, error = ?, stderr_tail = ? WHERE id = ?
                    """
            ).execute(arguments: [outcome.rawValue, at, exitCode, error, stderrTail, attemptId])
            try requireChange(db, "attempt \(attemptId) was never started.")

        case .result(let taskId, let attemptId, let metrics, let units, let details, let at):
            // The first valid result wins: a later one (a duplicate attempt) changes nothing.
            try db.cachedStatement(
                sql: """
                    INSERT INTO results (task_id, attempt_id, metrics_json, units_json, details_json, created_at)
                    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING
                    """
            ).execute(arguments: [
                taskId, attemptId, JSONColumns.text(metrics), JSONColumns.text(units),
                details.canonicalText, at,
            ])
            return db.changesCount > 0

        case .attemptDevice(let attemptId, let device, let atOnce, let coTenants):
            try db.cachedStatement(
                sql: """
                    UPDATE attempts SET device = ?, cotenants_at_once = ?, cotenants_json = ? WHERE id = ?
                    """
            ).execute(arguments: [
                device, atOnce,
                JSONValue.array(coTenants.prefix(maxCoTenants).map { .string($0) }).canonicalText, attemptId,
            ])
            try requireChange(db, "attempt \(attemptId) was never started.")

        case .metric(let attemptId, let step, let name, let value):
            try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO metrics (attempt_id, step, name, value) VALUES (?, ?, ?, ?)
                    """
            ).execute(arguments: [attemptId, step, name, value])

        case .curvePoint(let attemptId, let p):
            // One statement: the next seq when the attempt has fewer than the cap, else no row.
            try db.cachedStatement(
                sql: """
                    INSERT INTO curve_points
                        (attempt_id, seq, epoch, epochs, step, loss, train_acc, test_acc, val_acc, lr, at)
                    SELECT ?1, n, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                    FROM (SELECT COALESCE(MAX(seq) + 1, 0) AS n FROM curve_points WHERE attempt_id = ?1)
                    WHERE n < ?11
                    """
            ).execute(arguments: [
                attemptId, p.epoch, p.epochs, p.step, p.loss, p.trainAcc, p.testAcc, p.valAcc, p.lr, p.at,
                maxCurvePoints,
            ])
            if db.changesCount == 0 {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO curve_drops (attempt_id, dropped) VALUES (?, 1)
                        ON CONFLICT (attempt_id) DO UPDATE SET dropped = dropped + 1
                        """
                ).execute(arguments: [attemptId])
            }

        case .worker(let id, let host, let info, let seenAt, let state):
            try db.cachedStatement(
                sql: """
                    INSERT INTO workers (id, host, info_json, first_seen, last_seen, state) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET host = excluded.host, info_json = excluded.info_json,
                        last_seen = excluded.last_seen, state = excluded.state
                    """
            ).execute(arguments: [id, host, info.canonicalText, seenAt, seenAt, state])

        case .workerSeen(let id, let at):
            try db.cachedStatement(sql: "UPDATE workers SET last_seen = ? WHERE id = ?")
                .execute(arguments: [at, id])

        case .workerState(let id, let state, let at):
            try db.cachedStatement(sql: "UPDATE workers SET state = ?, last_seen = ? WHERE id = ?")
                .execute(arguments: [state, at, id])

        case .artifact(let sha256, let bytes, let path, let at):
            // Content-addressed: the same bytes produced twice are one artifact.
            try db.cachedStatement(
                sql: """
                    INSERT INTO artifacts (sha256, bytes, path, created_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (sha256) DO NOTHING
                    """
            ).execute(arguments: [sha256, bytes, path, at])

        case .taskArtifact(let taskId, let name, let sha256):
            try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO task_artifacts (task_id, name, sha256) VALUES (?, ?, ?)
                    """
            ).execute(arguments: [taskId, name, sha256])

        case .sweepCancelled(let sweep, let cancelled, let at):
            try db.cachedStatement(sql: "UPDATE sweeps SET cancelled = ?, updated_at = ? WHERE name = ?")
                .execute(arguments: [cancelled, at, sweep])
            try requireChange(db, "sweep \(sweep) is not in the store.")

        case .event(let at, let kind, let sweep, let taskId, let workerId, let message):
            try insertEvent(db, at: at, kind: kind, sweep: sweep, taskId: taskId, workerId: workerId, message: message)
        }
        return nil
    }

    static func insertEvent(
        _ db: Database, at: Double, kind: String, sweep: String?, taskId: String? = nil,
        workerId: String? = nil, message: String
    ) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO events (at, kind, sweep, task_id, worker_id, message) VALUES (?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [at, kind, sweep, taskId, workerId, message])
    }

    /// An UPDATE that matched no row is a coordinator bug worth stopping for: it would
    /// otherwise lose a state change silently.
    private static func requireChange(_ db: Database, _ message: @autoclosure () -> String) throws {
        if db.changesCount == 0 { throw StoreError(.notFound, message()) }
    }
}
