import GRDB
import SweepKit

/// An attempt's stored learning curve: its points in arrival order and how many points came
/// after the cap and were dropped.
public struct AttemptCurve: Sendable, Hashable {
    public var attemptId: String
    public var workerId: String
    public var dropped: Int
    public var points: [CurvePoint]

    public init(attemptId: String, workerId: String, dropped: Int, points: [CurvePoint]) {
        self.attemptId = attemptId
        self.workerId = workerId
        self.dropped = dropped
        self.points = points
    }
}

extension SweepStore {
    /// The most points stored per attempt; later ones are counted in `curve_drops` instead.
    public static let maxCurvePoints = 1000

    /// The learning curves of a task: one entry per attempt that has points, attempts in the
    /// order they started, points in the order they arrived. Empty for an unknown task.
    public func curves(task: String) throws -> [AttemptCurve] {
        try read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT a.id, a.worker_id, COALESCE(d.dropped, 0),
                           p.epoch, p.epochs, p.step, p.loss, p.train_acc, p.test_acc, p.val_acc, p.lr, p.at
                    FROM attempts a
                    JOIN curve_points p ON p.attempt_id = a.id
                    LEFT JOIN curve_drops d ON d.attempt_id = a.id
                    WHERE a.task_id = ?
                    ORDER BY a.rowid, p.seq
                    """, arguments: [task])
            var curves: [AttemptCurve] = []
            for row in rows {
                let id: String = row[0]
                let point = CurvePoint(
                    epoch: row[3], epochs: row[4], step: row[5], loss: row[6], trainAcc: row[7], testAcc: row[8],
                    valAcc: row[9], lr: row[10], at: row[11])
                if curves.last?.attemptId == id {
                    curves[curves.count - 1].points.append(point)
                } else {
                    curves.append(AttemptCurve(attemptId: id, workerId: row[1], dropped: row[2], points: [point]))
                }
            }
            return curves
        }
    }
}
