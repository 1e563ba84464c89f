import Foundation
import Reports
import SweepKit
import Testing

@Suite("The HTML report is one self-contained file")
struct HTMLReportTests {
    let html: String

    init() throws {
        let reference = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        html = Reports.renderReport(
            sweep: Fixture.sweep, rows: Fixture.rows, specs: Reports.defaultSpecs, format: .html,
            reference: reference)
    }

    @Test("it requests nothing from anywhere: no URLs, no external sources, no scripts or web fonts")
    func selfContained() {
        for forbidden in ["http://", "https://", "src=", "<script", "<link", "@import", "url(", "@font-face", "//"] {
            #expect(!html.contains(forbidden), "the HTML report contains \(forbidden)")
        }
    }

    @Test("it holds both tables, the four figures and the claimed-versus-measured view")
    func content() {
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<style>"))
        for spec in Reports.defaultSpecs { #expect(html.contains("<h2>\(spec.title)</h2>")) }
        // Two pivots, four claimed-versus-measured tables and the paper's text claims.
        #expect(html.components(separatedBy: "<table>").count - 1 == 2 + 4 + 1)
        #expect(html.contains("Claims in the text"))
        #expect(html.contains("<section id=\"provenance\" class=\"provenance\"><h2>Provenance</h2>"))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 4)
        #expect(html.components(separatedBy: "</svg>").count - 1 == 4)
        for title in Reports.figures(sweep: Fixture.sweep, rows: Fixture.rows).map(\.title) {
            #expect(html.contains("<figcaption>Figure") && html.contains(title))
        }
        #expect(html.contains("Claimed versus measured"))
        #expect(html.contains("93.2 ± 0.2 (n=2, 1 failed)"))
    }

    @Test("user text is escaped")
    func escaped() {
        let spec = ReportSpec(title: "<b>bold</b> & co", rows: "model", columns: "method", values: ["accuracy"])
        let html = Reports.renderReport(
            sweep: "s<1>",
            rows: Fixture.rows.map {
                var r = $0; r.sweep = "s<1>"; return r
            },
            specs: [spec], format: .html)
        #expect(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; co"))
        #expect(!html.contains("<b>bold</b>"))
        #expect(html.contains("sparsegrid report: s&lt;1&gt;"))
    }
}
