import SweepKit

/// Everything a report shows, built once and written in any format.
struct ReportContent {
    let pivots: [ReportTable]
    let references: [ReportTable]
    let summary: String
    let heading: String

    init(sweep: String, rows: [ResultRow], specs: [ReportSpec], reference: ReferenceTable?) {
        let mine = ReportContent.rows(of: sweep, in: rows)
        pivots = (specs.isEmpty ? Reports.defaultSpecs : specs).map { PivotBuilder.build(spec: $0, rows: mine) }
        references = reference.map { ClaimedVersusMeasured.build(reference: $0, rows: mine) } ?? []
        summary = mine.isEmpty ? "No tasks of this sweep are in the results." : ResultsTerminal.summary(mine)
        heading = "sparsegrid report: \(sweep) (\(summary))"
    }

    static func rows(of sweep: String, in rows: [ResultRow]) -> [ResultRow] {
        rows.filter { $0.sweep == sweep }
    }
}
