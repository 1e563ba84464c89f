/// A report table before it is written in any format: a stub column of row labels, columns
/// gathered in titled groups (one group per metric), display text per cell, notes, and the
/// same content as long-form records for CSV and JSON.
struct ReportTable: Sendable, Equatable {
    struct Group: Sendable, Equatable {
        var title: String
        var columns: [String]
    }

    struct Row: Sendable, Equatable {
        var label: String
        /// One text per column, groups flattened in order.
        var cells: [String]
    }

    var title: String
    /// Header of the stub column, e.g. "model".
    var stubHeader: String
    /// Header of the grouped columns' dimension, e.g. "method".
    var columnsBy: String
    var groups: [Group]
    var rows: [Row]
    var notes: [String]
    var records: [CellRecord]
    /// Lines every format prints prominently before the table body, e.g. that a comparison
    /// crosses different experimental conditions.
    var warnings: [String] = []

    var columnCount: Int { groups.reduce(0) { $0 + $1.columns.count } }

    /// Cells of one group for a row.
    func cells(of row: Row, group index: Int) -> ArraySlice<String> {
        let start = groups[..<index].reduce(0) { $0 + $1.columns.count }
        return row.cells[start..<(start + groups[index].columns.count)]
    }
}

/// One cell in long form: what CSV rows and JSON objects hold. Derived values (Δ, speedup,
/// reduction) carry their value in `mean` and no `std`/`n`.
struct CellRecord: Sendable, Equatable {
    var table: String
    var row: String
    var column: String
    var metric: String
    var unit: String
    var mean: Double?
    var std: Double?
    var n: Int?
    var failed = 0
    var missing = 0
    var running = 0
    var pending = 0
    var cancelled = 0
    var nulls = 0
    var status: String
    var text: String
    var claimed: Double? = nil
    var claimedUnit: String? = nil
    var delta: Double? = nil
    /// Speedups: the 95% interval and its verdict (faster, slower, no detectable difference);
    /// nil where there is none (the text says why).
    var ciLow: Double? = nil
    var ciHigh: Double? = nil
    var verdict: String? = nil

    init(table: String, row: String, column: String, metric: String, unit: String, stats: CellStats, text: String) {
        self.table = table
        self.row = row
        self.column = column
        self.metric = metric
        self.unit = unit
        mean = stats.mean
        std = stats.std
        n = stats.n
        failed = stats.failed
        missing = stats.missing + stats.unreported
        running = stats.running
        pending = stats.pending
        cancelled = stats.cancelled
        nulls = stats.nulls
        status = stats.status
        self.text = text
    }

    init(
        table: String, row: String, column: String, metric: String, unit: String, derived: Double?,
        status: String, text: String
    ) {
        self.table = table
        self.row = row
        self.column = column
        self.metric = metric
        self.unit = unit
        mean = derived
        self.status = status
        self.text = text
    }
}
