import GRDB
import SweepKit

extension SweepStore {
    /// The artifacts of the sweep's active tasks (what their consumers download), by task, each
    /// task's in name order: what a restarting coordinator needs of the results, read without
    /// building (and sorting) every result row.
    public func artifactDigests(sweep: String) throws -> [String: [ArtifactDigest]] {
        try read { db in
            var out: [String: [ArtifactDigest]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT ta.task_id, ta.name, a.sha256, a.bytes
                    FROM task_artifacts ta JOIN artifacts a ON a.sha256 = ta.sha256 JOIN tasks t ON t.id = ta.task_id
                    WHERE t.active = 1 AND t.sweep = ? ORDER BY ta.task_id, ta.name
                    """, arguments: [sweep])
            {
                out[row[0], default: []].append(ArtifactDigest(name: row[1], sha256: row[2], bytes: row[3]))
            }
            return out
        }
    }

    /// Tasks of the sweeps' latest plans with their outcome, for `sparsegrid results` and
    /// reports.
    ///
    /// - Parameters:
    ///   - sweep: one sweep, or all when nil.
    ///   - stage: one stage, or all when nil.
    ///   - states: keep only tasks in these states; all when nil.
    ///   - filters: every pair must match: the parameter's `displayText` equals the value.
    ///     A task without a `method` parameter has method "dense".
    ///   - artifactRoot: a directory that relative artifact paths are resolved against.
    ///   - task: one task by id (the dashboard's task page), or all when nil.
    ///
    /// `error` is, for a failed task, its last attempt's error (or the task's own when it
    /// never ran); `attempts` counts every attempt the task has had, reruns included.
    /// `startedAt` / `finishedAt` are those of the attempt whose result the row carries.
    /// - Returns: rows ordered by sweep, stage (plan order), model, method, seed.
    public func resultRows(
        sweep: String?, stage: String? = nil, states: [TaskState]? = nil,
        where filters: [(key: String, value: String)] = [],
        artifactRoot: String? = nil, task: String? = nil
    ) throws -> [ResultRow] {
        try read { db in
            var conditions = ["t.active = 1"]
            var arguments: StatementArguments = []
            if let task {
                conditions.append("t.id = ?")
                arguments += [task]
            }
            if let sweep {
                conditions.append("t.sweep = ?")
                arguments += [sweep]
            }
            if let stage {
                conditions.append("t.stage = ?")
                arguments += [stage]
            }
            if let states {
                guard !states.isEmpty else { return [] }
                conditions.append("t.state IN (\(states.map { _ in "?" }.joined(separator: ", ")))")
                arguments += StatementArguments(states.map(\.rawValue))
            }
            let selected = conditions.joined(separator: " AND ")

            var rows: [ResultRow] = []
            var ordinals: [String: Int] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT t.id, t.sweep, t.stage, t.params_json, t.state, t.error, t.ordinal,
                           r.metrics_json, r.units_json, r.details_json, w.started_at, w.ended_at,
                           w.device, w.cotenants_at_once, w.cotenants_json
                    FROM tasks t LEFT JOIN results r ON r.task_id = t.id
                    LEFT JOIN attempts w ON w.id = r.attempt_id WHERE \(selected)
                    """, arguments: arguments)
            {
                let id: String = row[0]
                let params = try JSONColumns.object(row[3], what: "parameters of task \(id)")
                guard ResultFilter.matches(params, filters) else { continue }
                var result = ResultRow(
                    sweep: row[1], stage: row[2], taskId: id, params: params,
                    state: try TaskState.stored(row[4], task: id), error: row[5])
                if let metrics = row[7] as String? {
                    result.metrics = try JSONColumns.metrics(metrics, what: "metrics of task \(id)")
                    result.units = try JSONColumns.units(row[8], what: "units of task \(id)")
                    result.details = try JSONColumns.value(row[9], what: "details of task \(id)")
                    // The winning attempt's times; a non-finite value reads as unknown.
                    result.startedAt = (row[10] as Double?).flatMap { $0.isFinite ? $0 : nil }
                    result.finishedAt = (row[11] as Double?).flatMap { $0.isFinite ? $0 : nil }
                    // Co-tenancy as the worker reported it (NULL: not recorded).
                    result.device = row[12]
                    result.tasksAtOnce = row[13]
                    if let text = row[14] as String? {
                        result.coTenants =
                            try JSONColumns.value(text, what: "co-tenants of task \(id)").arrayValue?
                            .compactMap(\.stringValue) ?? []
                    }
                }
                ordinals[id] = row[6]
                rows.append(result)
            }
            guard !rows.isEmpty else { return [] }

            // SQLite takes the bare `error` column from the row that holds MAX(rowid), so this
            // is the last attempt's error next to the number of attempts.
            var lastAttempts: [String: (count: Int, error: String?)] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT a.task_id, COUNT(*), a.error, MAX(a.rowid) FROM attempts a JOIN tasks t ON t.id = a.task_id
                    WHERE \(selected) GROUP BY a.task_id
                    """, arguments: arguments)
            {
                lastAttempts[row[0]] = (row[1], row[2])
            }

            var artifacts: [String: [ArtifactRef]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT ta.task_id, ta.name, a.sha256, a.bytes, a.path
                    FROM task_artifacts ta JOIN artifacts a ON a.sha256 = ta.sha256 JOIN tasks t ON t.id = ta.task_id
                    WHERE \(selected) ORDER BY ta.task_id, ta.name
                    """, arguments: arguments)
            {
                artifacts[row[0], default: []].append(
                    ArtifactRef(
                        name: row[1], sha256: row[2], bytes: row[3], path: Self.resolve(row[4], under: artifactRoot)))
            }

            var stageOrder: [String: [String: Int]] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT sweep, stage, MIN(ordinal) FROM tasks WHERE active = 1 GROUP BY sweep, stage
                    """)
            {
                stageOrder[row[0], default: [:]][row[1]] = row[2]
            }

            for i in rows.indices {
                let last = lastAttempts[rows[i].taskId]
                rows[i].attempts = last?.count ?? 0
                switch rows[i].state {
                // What went wrong in the end is the last attempt's error; a task that failed
                // without running (its input failed) has only its own.
                case .failed: rows[i].error = last?.error ?? rows[i].error
                // A succeeded task's earlier failures are not its error.
                case .succeeded: rows[i].error = nil
                default: break
                }
                rows[i].artifacts = artifacts[rows[i].taskId] ?? []
            }
            return ResultFilter.ordered(rows, stageOrder: stageOrder, ordinals: ordinals)
        }
    }

    static func resolve(_ path: String, under root: String?) -> String {
        guard let root, !path.hasPrefix("/") else { return path }
        return root.hasSuffix("/") ? root + path : root + "/" + path
    }
}

/// The pure parts of `resultRows`: matching `--where` filters and ordering rows.
enum ResultFilter {
    static func matches(_ params: [String: JSONValue], _ filters: [(key: String, value: String)]) -> Bool {
        filters.allSatisfy { filter in
            if let value = params[filter.key] { return value.displayText == filter.value }
            return filter.key == "method" && filter.value == "dense"
        }
    }

    /// Orders by sweep name, stage (first appearance in the plan), model, method, seed; ties
    /// (other grid axes) by plan order, so the output is stable.
    static func ordered(_ rows: [ResultRow], stageOrder: [String: [String: Int]], ordinals: [String: Int])
        -> [ResultRow]
    {
        rows.sorted { a, b in
            if a.sweep != b.sweep { return a.sweep < b.sweep }
            let sa = stageOrder[a.sweep]?[a.stage] ?? Int.max, sb = stageOrder[b.sweep]?[b.stage] ?? Int.max
            if sa != sb { return sa < sb }
            if a.stage != b.stage { return a.stage < b.stage }
            if a.model != b.model { return (a.model ?? "") < (b.model ?? "") }
            if a.method != b.method { return a.method < b.method }
            if a.seed != b.seed { return (a.seed ?? Int.min) < (b.seed ?? Int.min) }
            return (ordinals[a.taskId] ?? 0) < (ordinals[b.taskId] ?? 0)
        }
    }
}
