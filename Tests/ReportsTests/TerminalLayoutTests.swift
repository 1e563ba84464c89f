import Foundation
import Reports
import SweepKit
import Testing

@Suite("Terminal tables stay readable at 100 columns")
struct TerminalLayoutTests {
    @Test("the default report has no line over 100 characters")
    func defaultReport() throws {
        let reference = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: Fixture.rows, specs: Reports.defaultSpecs, format: .table,
            reference: reference)
        for line in text.components(separatedBy: "\n") { #expect(line.count <= 100, "too wide: \(line)") }
    }

    @Test("a pivot wider than the screen is split into panels that repeat the row labels")
    func wideSpec() {
        let spec = ReportSpec(
            title: "Wide", rows: "model", columns: "seed",
            values: ["accuracy", "latency_ms", "peak_mib", "gmacs_effective", "weight_compressed_mib", "sparsity"])
        let text = Reports.renderReport(sweep: Fixture.sweep, rows: Fixture.rows, specs: [spec], format: .table)
        let lines = text.components(separatedBy: "\n")
        for line in lines { #expect(line.count <= 100, "too wide: \(line)") }
        #expect(lines.filter { $0.hasPrefix("resnet18") }.count >= 3)
        #expect(lines.filter { $0.hasPrefix("model") }.count >= 3)
    }
}
