import SweepKit

/// Everything a report shows, built once and written in any format.
struct ReportContent {
    let pivots: [ReportTable]
    let references: [ReportTable]
    let summary: String
    let heading: String
    /// What was measured and on what; every format opens with it.
    let provenance: Provenance
    /// The lines every format puts first: synthetic or unverified data, and claimed-versus-
    /// measured tables that compare different conditions.
    let warnings: [String]

    init(sweep: String, rows: [ResultRow], specs: [ReportSpec], reference: ReferenceTable?) {
        let mine = ReportContent.rows(of: sweep, in: rows)
        pivots = (specs.isEmpty ? Reports.defaultSpecs : specs).map { PivotBuilder.build(spec: $0, rows: mine) }
        references = reference.map { ClaimedVersusMeasured.build(reference: $0, rows: mine) } ?? []
        summary = mine.isEmpty ? "No tasks of this sweep are in the results." : ResultsTerminal.summary(mine)
        heading = "sparsegrid report: \(sweep) (\(summary))"
        provenance = Provenance(rows: mine)
        let differing = references.filter { !$0.warnings.isEmpty }
        warnings =
            provenance.warnings
            + (differing.isEmpty
                ? []
                : [
                    "CLAIMS COMPARED ACROSS DIFFERENT CONDITIONS — \(differing.count) of \(references.count) claimed-versus-measured tables set the reference's numbers beside measurements made under other conditions (each says which); their Δ are marked \(ClaimedVersusMeasured.mark)."
                ])
    }

    /// The provenance block as plain lines: warnings first, then "label: text".
    var provenanceLines: [String] {
        warnings + ["Provenance:"] + provenance.items.map { "  \($0.label): \($0.text)" }
    }

    static func rows(of sweep: String, in rows: [ResultRow]) -> [ResultRow] {
        rows.filter { $0.sweep == sweep }
    }
}
