import SweepKit

/// Sorting for `sparsegrid results`: by a listing column or a metric name, "-" in front for
/// descending. Tasks without a value for a metric go last either way.
enum ResultsOrder {
    static let columnKeys = ["sweep", "stage", "model", "method", "seed", "state", "attempts", "task_id"]

    /// The default: sweep, then model and method in study order, then seed and stage.
    static func natural(_ rows: [ResultRow]) -> [ResultRow] {
        let ranks = ["sweep", "model", "method", "stage"].map { rank($0, rows) }
        return rows.sorted { a, b in
            for r in ranks[0...2] where r(a) != r(b) { return r(a) < r(b) }
            if (a.seed ?? Int.min) != (b.seed ?? Int.min) { return (a.seed ?? Int.min) < (b.seed ?? Int.min) }
            if ranks[3](a) != ranks[3](b) { return ranks[3](a) < ranks[3](b) }
            return a.taskId < b.taskId
        }
    }

    static func sorted(_ rows: [ResultRow], by key: String) throws -> [ResultRow] {
        let descending = key.hasPrefix("-")
        let name = descending ? String(key.dropFirst()) : key
        let base = natural(rows)
        let metricNames = Set(rows.flatMap(\.metrics.keys)).union(ResultsListing.mainMetrics)
        if columnKeys.contains(name) {
            let value: (ResultRow) -> Int
            switch name {
            case "seed": value = { $0.seed ?? Int.min }
            case "attempts": value = { $0.attempts }
            default: value = rank(name, rows)
            }
            return stableSort(base) { descending ? value($0) > value($1) : value($0) < value($1) }
        }
        guard metricNames.contains(name) else {
            let valid = columnKeys + metricNames.sorted().map(ResultsFilters.plain)
            let hint = Suggestions.closest(to: name, in: valid).map { " Did you mean '\(descending ? "-" : "")\($0)'?" }
            throw ReportsError(
                .unknownSortKey,
                "Cannot sort results by '\(ResultsFilters.plain(key))': it is neither a column nor a metric of these results."
                    + (hint ?? "")
                    + " Sort by one of: \(Suggestions.sample(valid, limit: 40)) (prefix '-' for descending)."
            )
        }
        let present = base.filter { ($0.metrics[name] ?? nil) != nil }
        let absent = base.filter { ($0.metrics[name] ?? nil) == nil }
        let ordered = stableSort(present) { a, b in
            let x = a.metrics[name]!!, y = b.metrics[name]!!
            return descending ? x > y : x < y
        }
        return ordered + absent
    }

    /// Rank of each row's value of a column, in study order (dense first, models as published).
    private static func rank(_ name: String, _ rows: [ResultRow]) -> (ResultRow) -> Int {
        let dimension = Dimension(name: name)
        let value: (ResultRow) -> String = name == "task_id" ? { $0.taskId } : { dimension.value(of: $0) }
        let order = dimension.ordered(Set(rows.map(value)))
        let index = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        return { index[value($0)] ?? Int.max }
    }

    private static func stableSort(_ rows: [ResultRow], by less: (ResultRow, ResultRow) -> Bool) -> [ResultRow] {
        rows.enumerated().sorted { a, b in
            if less(a.element, b.element) { return true }
            if less(b.element, a.element) { return false }
            return a.offset < b.offset
        }.map(\.element)
    }
}
