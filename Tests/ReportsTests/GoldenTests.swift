import Foundation
import Reports
import SweepKit
import Testing

@Suite("Every output format matches its reviewed golden file")
struct GoldenTests {
    let rows = ProvenanceFixture.rows()
    let reference: ReferenceTable

    init() throws { reference = try ReferenceTable.load(csvPath: Repository.referenceCSV) }

    @Test("the report renders the same in every format", arguments: OutputFormat.allCases)
    func report(format: OutputFormat) throws {
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: rows, specs: Reports.defaultSpecs, format: format,
            reference: reference)
        try Golden.check(text, against: "report.\(format.fileExtension)")
    }

    @Test(
        "the results listing renders the same in every format it offers",
        arguments: [OutputFormat.table, .markdown, .csv, .json])
    func results(format: OutputFormat) throws {
        let text = try Reports.renderResults(rows, format: format)
        try Golden.check(text, against: "results.\(format.fileExtension)")
    }

    @Test("each figure renders the same SVG")
    func figures() throws {
        for figure in Reports.figures(sweep: Fixture.sweep, rows: rows) {
            try Golden.check(figure.svg, against: "figure-\(figure.name).svg")
        }
    }
}
