import Foundation
import SweepKit

/// One table per reference metric: for each model (rows) and method (column groups) the
/// claimed value, the measured cell, and Δ = measured − claimed; then the paper's text claims
/// (`TextClaims`). Where a claim states conditions (dataset, device, epochs) that the measured
/// tasks do not share, the table opens with a warning naming each difference, its title says
/// so, and every Δ across different conditions is marked ‡.
enum ClaimedVersusMeasured {
    static let mark = "‡"

    static func build(reference: ReferenceTable, rows: [ResultRow]) -> [ReportTable] {
        let grid = Grid(rows: rows, rowsBy: "model", columnsBy: "method")
        var metricOrder: [String] = []
        for e in reference.entries where !TextClaims.isTextClaim(e) && !metricOrder.contains(e.metric) {
            metricOrder.append(e.metric)
        }
        return metricOrder.map { table(for: $0, reference: reference, grid: grid) }
            + [TextClaims.build(reference: reference, grid: grid)].compactMap { $0 }
    }

    private static func table(for metric: String, reference: ReferenceTable, grid: Grid) -> ReportTable {
        let entries = reference.entries.filter { $0.metric == metric && !TextClaims.isTextClaim($0) }
        let models = Dimension(name: "model").ordered(Set(entries.map(\.model)))
        let methods = Dimension(name: "method").ordered(Set(entries.map(\.method)))
        var measuredMetrics: [String] = []
        for e in entries where !measuredMetrics.contains(e.measuredMetric) { measuredMetrics.append(e.measuredMetric) }
        let claimedUnit = entries.first(where: { !$0.unit.isEmpty })?.unit ?? ""
        let measuredUnits = MetricUnits(metric: measuredMetrics[0], rows: grid.allRows)
        let info = MetricCatalog.info(measuredMetrics[0])
        let baseTitle = "Claimed versus measured: \(metric)" + (claimedUnit.isEmpty ? "" : " (\(claimedUnit))")
        var differences = ConditionDifferences()
        // One column, one precision: the claims as finely as the finest of them was written.
        let shownDecimals = entries.map(\.decimals).max() ?? 0
        var footnotes = Footnotes()
        var records: [CellRecord] = []
        var partialUsed = false
        let tableRows = models.map { model in
            var cells: [String] = []
            for method in methods {
                guard let entry = entries.first(where: { $0.model == model && $0.method == method }) else {
                    cells += ["", "", ""]
                    continue
                }
                let stats = grid.stats(entry.measuredMetric, row: model, column: method)
                let differs = differences.compare(
                    claimed: entry.conditions, with: grid.tasks[Grid.Key(row: model, column: method)] ?? [])
                let measured = CellText.measured(stats, decimals: info.decimals, usualN: grid.seedsPerCell) {
                    footnotes.number(for: "\(entry.measuredMetric) is null: \($0)")
                }
                var deltaText = "n/a"
                var delta: Double?
                if let mean = stats.mean {
                    delta = mean - entry.value
                    partialUsed = partialUsed || !stats.isComplete
                    deltaText =
                        NumberText.signed(delta!, max(info.decimals, entry.decimals)) + (stats.isComplete ? "" : "*")
                        + (differs ? mark : "")
                }
                cells += [NumberText.fixed(entry.value, shownDecimals), measured, deltaText]
                var record = CellRecord(
                    table: baseTitle, row: model, column: method, metric: entry.measuredMetric,
                    unit: measuredUnits.unit, stats: stats, text: measured)
                record.claimed = entry.value
                record.claimedUnit = entry.unit
                record.delta = delta
                records.append(record)
            }
            return ReportTable.Row(label: model, cells: cells)
        }
        let differ = !differences.isEmpty
        // The title says it too, so every CSV line and JSON cell of the table carries it.
        let title = baseTitle + (differ ? " [conditions differ]" : "")
        for i in records.indices { records[i].table = title }
        let groups = methods.map {
            ReportTable.Group(title: $0, columns: ["claimed", "measured", differ ? "Δ" + mark : "Δ"])
        }

        let file = URL(fileURLWithPath: reference.origin).lastPathComponent
        var notes = [
            "claimed: \(sources(entries)) (\(file)), in \(claimedUnit.isEmpty ? "the reference's units" : claimedUnit).",
            "measured: \(measuredMetrics.joined(separator: ", ")) in \(measuredUnits.unit.isEmpty ? "the engine's units" : measuredUnits.unit); Δ = measured - claimed.",
        ]
        if grid.seedsPerCell > 1 {
            notes.append(
                "measured cells: mean ± sample std over \(grid.seedsPerCell) seeds unless a cell says otherwise (n=…).")
        }
        if differ {
            notes.append(
                "\(mark) Δ across different conditions (see the warning above the table): it compares different experiments."
            )
        }
        if partialUsed { notes.append("* from an incomplete cell: its mean covers only the tasks that succeeded.") }
        for m in measuredMetrics {
            for line in MetricUnits(metric: m, rows: grid.allRows).descriptions { notes.append("\(m): \(line)") }
        }
        var seen = Set<String>()
        for e in entries {
            if let fresh = TextClaims.freshSentences(e.note, seen: &seen) { notes.append("Note: \(fresh)") }
        }
        notes += footnotes.lines
        return ReportTable(
            title: title, stubHeader: "model", columnsBy: "method", groups: groups, rows: tableRows,
            notes: notes, records: records, warnings: differ ? [differences.warning(subject: "Δ")] : [])
    }

    private static func sources(_ entries: [ReferenceTable.Entry]) -> String {
        var list: [String] = []
        for e in entries where !e.source.isEmpty && !list.contains(e.source) { list.append(e.source) }
        return list.isEmpty ? "the reference table" : list.joined(separator: "; ")
    }
}
