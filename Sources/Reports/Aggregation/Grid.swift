import SweepKit

/// The tasks of a sweep arranged by two dimensions (rows × columns), with how many tasks each
/// cell should hold: one per seed the sweep ran, so a seed absent from one cell counts as
/// missing there instead of silently shrinking its mean.
struct Grid: Sendable {
    struct Key: Hashable, Sendable { var row: String; var column: String }

    let rowDimension: Dimension
    let columnDimension: Dimension
    let rowValues: [String]
    let columnValues: [String]
    let tasks: [Key: [ResultRow]]
    /// The seeds a full cell holds (every seed the sweep ran); nil when seeds are not tracked.
    let expectedSeeds: Set<Int>?

    init(rows: [ResultRow], rowsBy: String, columnsBy: String) {
        rowDimension = Dimension(name: rowsBy)
        columnDimension = Dimension(name: columnsBy)
        var tasks: [Key: [ResultRow]] = [:]
        var rowSet = Set<String>(), columnSet = Set<String>()
        for r in rows {
            let key = Key(row: rowDimension.value(of: r), column: columnDimension.value(of: r))
            tasks[key, default: []].append(r)
            rowSet.insert(key.row)
            columnSet.insert(key.column)
        }
        self.tasks = tasks
        rowValues = rowDimension.ordered(rowSet)
        columnValues = columnDimension.ordered(columnSet)
        let seeds = Set(rows.compactMap(\.seed))
        expectedSeeds = rowsBy == "seed" || columnsBy == "seed" || seeds.isEmpty ? nil : seeds
    }

    func stats(_ metric: String, row: String, column: String) -> CellStats {
        let cell = tasks[Key(row: row, column: column)] ?? []
        let missing: Int
        if let expectedSeeds {
            missing = expectedSeeds.subtracting(cell.compactMap(\.seed)).count
        } else {
            missing = cell.isEmpty ? 1 : 0
        }
        return CellStats(metric: metric, tasks: cell, missing: missing)
    }

    /// How many seeds a full cell holds.
    var seedsPerCell: Int { expectedSeeds?.count ?? 1 }

    /// Every task of the grid, in a stable order.
    var allRows: [ResultRow] { tasks.keys.sorted { ($0.row, $0.column) < ($1.row, $1.column) }.flatMap { tasks[$0]! } }
}
