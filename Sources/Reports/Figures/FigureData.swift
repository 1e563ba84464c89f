import SweepKit

/// The sweep's results by model × method, as the figures read them.
struct FigureData {
    let sweep: String
    let grid: Grid
    var models: [String] { grid.rowValues }
    var methods: [String] { grid.columnValues }
    var sparseMethods: [String] { methods.filter { $0 != "dense" } }
    let colors: [String: String]
    /// How speedups are written as percentages in labels and captions.
    let speedupPercent: ReportSpec.SpeedupPercent

    init(sweep: String, rows: [ResultRow], speedupPercent: ReportSpec.SpeedupPercent = .gain) {
        self.sweep = sweep
        self.speedupPercent = speedupPercent
        grid = Grid(rows: rows, rowsBy: "model", columnsBy: "method")
        colors = Palette.methodColors(grid.columnValues)
    }

    func stats(_ metric: String, _ model: String, _ method: String) -> CellStats {
        grid.stats(metric, row: model, column: method)
    }

    /// The first metric of `candidates` that any finished task reported.
    func firstReported(_ candidates: [String]) -> String {
        candidates.first { m in grid.allRows.contains { $0.state == .succeeded && ($0.metrics[m] ?? nil) != nil } }
            ?? candidates[0]
    }

    func unit(_ metric: String) -> String { MetricUnits(metric: metric, rows: grid.allRows).unit }

    /// A bar for a cell: mean, ±std when n > 1, or the reason there is no bar.
    func bar(_ metric: String, _ model: String, _ method: String, decimals: Int) -> BarChart.Bar {
        let s = stats(metric, model, method)
        guard let mean = s.mean else {
            return BarChart.Bar(value: nil, error: nil, gap: gapWord(s), tooltip: "\(model), \(method): \(gapWord(s))")
        }
        // usualN 0: the tooltip always states n.
        let text = CellText.measured(s, decimals: decimals, usualN: 0) { _ in 0 }
        return BarChart.Bar(
            value: mean, error: s.std, gap: nil, tooltip: "\(model), \(method): \(text)", partial: !s.isComplete)
    }

    func gapWord(_ s: CellStats) -> String {
        switch s.status {
        case "null": return "n/a"
        case "complete", "partial": return ""
        default: return s.status
        }
    }

    /// "error bars: ±1 sample std over 3 seeds" or "one seed per bar".
    var spreadNote: String {
        grid.seedsPerCell > 1
            ? "bars: mean over \(grid.seedsPerCell) seeds, error bars ±1 sample std" : "one task per bar"
    }
}
