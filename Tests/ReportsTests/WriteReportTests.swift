import Foundation
import Reports
import SweepKit
import Testing

@Suite("writeReport leaves a complete report directory")
struct WriteReportTests {
    @Test("it writes the HTML report, tables in every format, the listing and four SVG figures")
    func writes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sparsegrid-report-\(UUID().uuidString)/out")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let reference = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        let paths = try Reports.writeReport(
            sweep: Fixture.sweep, rows: Fixture.rows, specs: [], reference: reference,
            to: directory.path)
        let names = paths.map { String($0.dropFirst(directory.path.count + 1)) }
        #expect(
            names == [
                "report.html", "report.txt", "report.md", "report.csv", "report.json", "report.tex",
                "results.csv", "results.json", "figures/accuracy.svg", "figures/latency_vs_accuracy.svg",
                "figures/macs_memory.svg", "figures/speedup.svg",
            ])
        for path in paths {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            #expect(size > 100, "\(path) is empty")
        }
        let html = try String(contentsOfFile: paths[0], encoding: .utf8)
        #expect(
            html
                == Reports.renderReport(
                    sweep: Fixture.sweep, rows: Fixture.rows, specs: Reports.defaultSpecs,
                    format: .html, reference: reference))
    }

    @Test("an unwritable place is an error that names the file and says what to do")
    func unwritable() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sparsegrid-not-a-dir-\(UUID().uuidString)")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect {
            try Reports.writeReport(sweep: Fixture.sweep, rows: Fixture.rows, specs: [], reference: nil, to: file.path)
        } throws: { error in
            let e = error as? ReportsError
            return e?.code == .cannotWrite && e!.description.contains(file.path) && e!.description.contains("writable")
        }
    }
}
