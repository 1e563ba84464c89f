import Foundation
import Reports
import SweepKit
import Testing

@Suite("The paper's text claims sit beside the measured range")
struct TextClaimsTests {
    /// resnet18 keeps 52% of its MACs under 2:4, resnet50 40%, mobilenet_v2 60%.
    func rows() -> [ResultRow] {
        let keep = ["resnet18": 0.52, "resnet50": 0.40, "mobilenet_v2": 0.60]
        return ProvenanceFixture.rows().map { row in
            var row = row
            guard row.method == "nm_2_4", row.state == .succeeded, let gmacs = row.metrics["gmacs"] ?? nil else {
                return row
            }
            row.metrics["gmacs_effective"] = gmacs * keep[row.model!]!
            return row
        }
    }

    @Test("a claim over all models shows the measured minimum to maximum and which models they are")
    func range() throws {
        let reference = try ReferenceTable.parse(
            csvText: """
                model,method,metric,value,unit,source,note
                all,nm_2_4,flops_reduction_pct,30,%,"Paper, text","2:4 halves the MACs. Four models in the text."
                resnet50,nm_2_4,latency_reduction_pct,27.9,%,"Paper, text",
                resnet18,dense,accuracy,94.2,%,"Paper, Table I",
                """, origin: "t.csv")
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: rows(), specs: Reports.defaultSpecs, format: .table, reference: reference)
        #expect(text.contains("Claims in the text\n"))
        let flops = try #require(
            text.components(separatedBy: "\n").first { $0.hasPrefix("nm_2_4 flops_reduction_pct (all)") })
        #expect(flops.contains("30 %"))
        #expect(flops.contains("40.0 to 60.0 %"))
        #expect(flops.contains("mobilenet_v2 / resnet50"))
        let latency = try #require(
            text.components(separatedBy: "\n").first { $0.hasPrefix("nm_2_4 latency_reduction_pct (resnet50)") })
        // latency_ms = 1.02 × latency_dense_ms (about): a 2% increase, not a reduction.
        #expect(latency.contains("27.9 %") && latency.contains("-2.0 %"))
        #expect(text.contains("Note (nm_2_4 flops_reduction_pct): 2:4 halves the MACs. Four models in the text."))
        // Text claims do not become rows of a per-model table.
        #expect(!text.contains("Claimed versus measured: flops_reduction_pct"))
        #expect(text.contains("Claimed versus measured: accuracy"))
    }

    @Test("the shipped table's text claims render with their notes and the memory claim's device warning")
    func shipped() throws {
        let reference = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: rows(), specs: Reports.defaultSpecs, format: .markdown, reference: reference)
        #expect(text.contains("### Claims in the text [conditions differ]"))
        #expect(text.contains("| nm_2_4 memory_reduction_pct (all) | 25 % |"))
        #expect(text.contains("not encoded"))
    }
}
