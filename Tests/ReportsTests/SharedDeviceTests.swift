import Foundation
import Reports
import SweepKit
import Testing

/// Latencies measured on a shared device (`sparsegrid worker --per-gpu K`): the report says
/// how many results, on which kind of device, up to how many tasks at once, and marks the
/// latency cells they feed.
@Suite("Reports: latencies measured on a shared device")
struct SharedDeviceTests {
    /// The provenance fixture on a GPU; the 2:4 fine-tunes of resnet18 ran three to a GPU,
    /// every other task had its GPU to itself (recorded), and the dense ones recorded nothing.
    static func rows() -> [ResultRow] {
        ProvenanceFixture.rows(device: "cuda:0", deviceName: "NVIDIA H200", cuda: "12.4").map { row in
            var row = row
            guard row.state == .succeeded, row.stage != "train" else { return row }
            row.device = "cuda:0"
            if row.model == "resnet18" && row.method == "nm_2_4" {
                row.tasksAtOnce = 3
                row.coTenants = ["other-1", "other-2"]
            } else {
                row.tasksAtOnce = 1
                row.coTenants = []
            }
            return row
        }
    }

    @Test("the shared case renders as reviewed", arguments: [OutputFormat.table, .markdown, .html, .json])
    func golden(format: OutputFormat) throws {
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: Self.rows(), specs: Reports.defaultSpecs, format: format, reference: nil)
        try Golden.check(text, against: "report-shared.\(format.fileExtension)")
    }

    @Test("the provenance line counts the shared results and the most at once; latency cells carry §")
    func lines() throws {
        let rows = Self.rows()
        let shared = rows.filter(\.measuredShared)
        #expect(!shared.isEmpty)
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: rows, specs: Reports.defaultSpecs, format: .markdown, reference: nil)
        let backing = rows.filter { $0.state == .succeeded }.count
        #expect(
            text.contains(
                "shared devices: \(shared.count) of \(backing) tasks ran on a GPU shared with other tasks (up to 3 tasks at once)"
            ), "\(text)")
        #expect(text.contains("§ some of this latency's tasks ran on a device shared"))
        // Only the cells fed by a shared task are marked: nm_2_4 in resnet18's row, in its latency_ms and
        // latency_sparse_ms tables.
        let marked = text.split(separator: "\n").filter { $0.contains(" §") && $0.hasPrefix("|") }
        #expect(marked.count == 2 && marked.allSatisfy { $0.contains("resnet18") }, "\(marked)")
    }

    @Test("results with nothing shared, or nothing recorded, say nothing new")
    func quiet() throws {
        for rows in [
            ProvenanceFixture.rows(),
            Self.rows().map { row -> ResultRow in
                var row = row
                if row.tasksAtOnce != nil { row.tasksAtOnce = 1; row.coTenants = [] }
                return row
            },
        ] {
            let text = Reports.renderReport(
                sweep: Fixture.sweep, rows: rows, specs: Reports.defaultSpecs, format: .markdown, reference: nil)
            #expect(!text.contains("shared devices"))
            #expect(!text.contains("§"))
        }
    }
}
