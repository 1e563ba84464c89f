import GRDB

extension SweepStore {
    /// Worker id → how many attempts it ran to success (the dashboard's "tasks done").
    public func succeededAttemptsByWorker() throws -> [String: Int] {
        try read { db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT worker_id, COUNT(*) FROM attempts WHERE outcome = 'succeeded' GROUP BY worker_id")
            {
                out[row[0]] = row[1]
            }
            return out
        }
    }
}
