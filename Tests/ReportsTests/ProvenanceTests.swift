import Foundation
import Reports
import SweepKit
import Testing

@Suite("Every report opens with what was measured and on what")
struct ProvenanceTests {
    func render(_ rows: [ResultRow], _ format: OutputFormat, reference: ReferenceTable? = nil) -> String {
        Reports.renderReport(
            sweep: Fixture.sweep, rows: rows, specs: Reports.defaultSpecs, format: format, reference: reference)
    }

    @Test(
        "each format names the synthetic data, the device, the versions and the commit",
        arguments: OutputFormat.allCases)
    func everyFormat(format: OutputFormat) throws {
        let text = render(ProvenanceFixture.rows(), format)
        for needle in [
            "synthetic", "SYNTHETIC DATA", ProvenanceFixture.cpuName, ProvenanceFixture.torch, "0.19.1+cpu",
            "3.11.9", "sparsegrid-torch 0.4.0", ProvenanceFixture.commit, "2026-05-01 12:00:00 UTC", "0, 1, 2",
        ] {
            #expect(text.contains(needle), "\(format.rawValue) report lacks '\(needle)'")
        }
    }

    @Test("the terminal report says SYNTHETIC DATA in its first lines, before any table")
    func terminalFirstLines() throws {
        let lines = render(ProvenanceFixture.rows(), .table).components(separatedBy: "\n")
        #expect(lines[1].hasPrefix("!! SYNTHETIC DATA — accuracies do not reflect CIFAR-10"))
        let provenance = try #require(lines.firstIndex(of: "Provenance"))
        let firstTable = try #require(lines.firstIndex { $0.hasPrefix("Table I") })
        #expect(provenance < firstTable)
        #expect(lines[provenance + 1].contains("data: synthetic [fingerprint 5eed5eed5eed5eed] ×19"))
        #expect(lines.contains { $0.contains("devices: cpu (\(ProvenanceFixture.cpuName)) ×19") })
        #expect(lines.contains { $0.contains("19 succeeded of 24 tasks back this report; 0–3 per cell over 8 cells") })
    }

    @Test("the JSON report carries a provenance object; the CSV stays one rectangular table")
    func machineReadable() throws {
        let json =
            try JSONSerialization.jsonObject(with: Data(render(ProvenanceFixture.rows(), .json).utf8))
            as! [String: Any]
        let provenance = try #require(json["provenance"] as? [String: Any])
        let devices = try #require(provenance["devices"] as? [[String: Any]])
        #expect(devices.count == 1 && devices[0]["tasks"] as? Int == 19)
        #expect(provenance["synthetic_tasks"] as? Int == 19)
        #expect((provenance["seeds"] as? [Int]) == [0, 1, 2])
        #expect(provenance["started_at"] as? String == "2026-05-01 12:00:00 UTC")
        #expect((json["warnings"] as? [String])?.first?.hasPrefix("SYNTHETIC DATA") == true)

        let records = Read.csv(render(ProvenanceFixture.rows(), .csv))
        let header = try #require(records.first)
        for record in records { #expect(record.count == header.count) }
        let text = try #require(header.firstIndex(of: "text")), table = try #require(header.firstIndex(of: "table"))
        #expect(records[1][table] == "provenance" && records[1][text].hasPrefix("SYNTHETIC DATA"))
        #expect(records.contains { $0[table] == "provenance" && $0[text].contains(ProvenanceFixture.torch) })
    }

    @Test("mixed devices and commits are listed with their counts; what was not recorded says so")
    func mixedAndUnknown() throws {
        let cpu = ProvenanceFixture.rows(code: nil)
        let gpu = ProvenanceFixture.rows(
            dataset: ["dataset": "cifar10", "verified": true, "fingerprint": "c1fa"], device: "cuda:0",
            deviceName: "NVIDIA H200", cuda: "12.4")
        // resnet18's tasks from the GPU run, the others from the CPU run.
        let rows = cpu.map { row in row.model == "resnet18" ? gpu.first { $0.taskId == row.taskId }! : row }
        let text = render(rows, .table)
        #expect(text.contains("devices: cpu (\(ProvenanceFixture.cpuName)) ×10, cuda:0 (NVIDIA H200) ×9"))
        #expect(
            text.contains("synthetic [fingerprint 5eed5eed5eed5eed] ×10, CIFAR-10 (verified) [fingerprint c1fa] ×9"))
        #expect(text.contains("code: unknown ×10, \(ProvenanceFixture.commit) (clean) ×9"))
        #expect(text.contains("CUDA: none (CPU-only torch build) ×10, 12.4 ×9"))
        #expect(text.contains("10 of 19 tasks ran on synthetic data"))

        let bare = render(Fixture.rows, .table)
        #expect(bare.contains("data: not recorded ×19"))
        #expect(bare.contains("code: unknown ×19"))
        #expect(bare.contains("dates: not recorded"))
        #expect(!bare.contains("SYNTHETIC DATA"))
    }

    @Test("a line break in an engine-reported value cannot forge a line of the summary")
    func hostileValues() throws {
        let rows = ProvenanceFixture.rows(deviceName: "evil\ncode: forged")
        let text = render(rows, .table)
        #expect(!text.components(separatedBy: "\n").contains { $0.hasPrefix("code: forged") })
        #expect(text.contains("evil code: forged"))
    }
}
