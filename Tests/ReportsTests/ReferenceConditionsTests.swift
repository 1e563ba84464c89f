import Foundation
import Reports
import SweepKit
import Testing

@Suite("A claim set beside a measurement under other conditions says so")
struct ReferenceConditionsTests {
    static let claims = """
        model,method,metric,value,unit,dataset,device,epochs
        resnet18,dense,accuracy,94.2,%,CIFAR-10,GPU,10
        resnet18,nm_2_4,accuracy,92.8,%,cifar10,gpu,3
        """

    func terminal(_ rows: [ResultRow], _ csv: String = claims) throws -> String {
        let reference = try ReferenceTable.parse(csvText: csv, origin: "claims.csv")
        return Reports.renderReport(
            sweep: Fixture.sweep, rows: rows,
            specs: [ReportSpec(title: "t", rows: "model", columns: "method", values: ["accuracy"])],
            format: .table, reference: reference)
    }

    @Test("synthetic data on a CPU with fewer epochs: a warning naming each difference, Δ‡ and marked cells")
    func differentConditions() throws {
        let text = try terminal(ProvenanceFixture.rows())
        #expect(text.contains("Claimed versus measured: accuracy (%) [conditions differ]"))
        let flat = text.replacingOccurrences(of: "\n   ", with: " ")
        #expect(
            flat.contains(
                "!! CONDITIONS DIFFER — measured on synthetic data on CPU with 3 epochs; claimed on CIFAR-10 on GPU with 10 epochs: Δ compares different experiments."
            ))
        // The report's opening lines say it too.
        let opening = text.components(separatedBy: "\n").prefix(4).joined(separator: " ")
        #expect(opening.contains("CLAIMS COMPARED ACROSS DIFFERENT CONDITIONS"))
        #expect(text.contains("Δ‡"))
        let line = try #require(
            text.components(separatedBy: "\n").first { $0.hasPrefix("resnet18 ") && $0.contains("94.2") })
        #expect(line.contains("-0.7‡"))
        // Fine-tuned rows ran the claimed 3 epochs but on other data and device: still marked.
        #expect(line.contains("92.8") && line.filter { $0 == "‡" }.count == 2)
    }

    @Test("verified CIFAR-10 on a GPU with the claimed epochs: no warning and no marks")
    func matchingConditions() throws {
        let rows = ProvenanceFixture.rows(
            dataset: ["dataset": "cifar10", "verified": true, "fingerprint": "c1fa"], device: "cuda:0",
            deviceName: "NVIDIA H200", cuda: "12.4", epochs: (10, 3))
        let text = try terminal(rows)
        #expect(!text.contains("‡"))
        #expect(!text.contains("CONDITIONS DIFFER"))
        #expect(!text.contains("DIFFERENT CONDITIONS"))
        #expect(!text.contains("SYNTHETIC"))
        #expect(text.contains("Claimed versus measured: accuracy (%)\n"))
    }

    @Test("an unverified CIFAR-10 copy or unrecorded conditions do not pass as matching")
    func unverifiedOrUnknown() throws {
        let unverified = ProvenanceFixture.rows(
            dataset: ["dataset": "cifar10", "verified": false], device: "cuda:0", deviceName: "NVIDIA H200",
            epochs: (10, 3))
        let text = try terminal(unverified)
        #expect(
            text.replacingOccurrences(of: "\n   ", with: " ").contains(
                "measured on an unverified CIFAR-10 copy; claimed on CIFAR-10: Δ compares"))
        #expect(text.contains("UNVERIFIED DATA"))
        let bare = try terminal(Fixture.rows)
        #expect(bare.replacingOccurrences(of: "\n   ", with: " ").contains("measured on data not recorded"))
    }

    @Test("claims without conditions are compared as before, with no marks")
    func noConditionsStated() throws {
        let text = try terminal(ProvenanceFixture.rows(), "model,method,metric,value\nresnet18,dense,accuracy,94.2\n")
        #expect(!text.contains("‡"))
        #expect(!text.contains("CONDITIONS DIFFER"))
    }

    @Test("the JSON and CSV forms carry the warning with the table")
    func machineReadable() throws {
        let reference = try ReferenceTable.parse(csvText: Self.claims, origin: "claims.csv")
        let json = try Read.reportJSON(ProvenanceFixture.rows(), reference: reference)
        let table = try #require(
            Read.tables(json).first { ($0["title"] as! String).hasPrefix("Claimed versus measured") })
        #expect((table["warnings"] as? [String])?.first?.hasPrefix("CONDITIONS DIFFER") == true)
        #expect((table["title"] as! String).hasSuffix("[conditions differ]"))
        let csv = Reports.renderReport(
            sweep: Fixture.sweep, rows: ProvenanceFixture.rows(), specs: Reports.defaultSpecs, format: .csv,
            reference: reference)
        let records = Read.csv(csv)
        let text = try #require(records.first?.firstIndex(of: "text"))
        #expect(records.contains { $0[text].contains("CONDITIONS DIFFER") })
    }
}

@Suite("Reference CSV columns for conditions")
struct ReferenceColumnsTests {
    @Test("dataset, device and epochs are read and normalized; a CSV without them still loads")
    func columns() throws {
        let table = try ReferenceTable.parse(
            csvText:
                "model,method,metric,value,dataset,device,epochs\nr,dense,accuracy,1,CIFAR-10,cuda,10\nr,x,accuracy,2,,,\n",
            origin: "c.csv")
        #expect(table.entries[0].dataset == "cifar10")
        #expect(table.entries[0].device == "gpu")
        #expect(table.entries[0].epochs == 10)
        #expect(table.entries[1].dataset == nil && table.entries[1].device == nil && table.entries[1].epochs == nil)
        let old = try ReferenceTable.parse(csvText: "model,method,metric,value\nr,dense,accuracy,1\n", origin: "o.csv")
        #expect(old.entries[0].dataset == nil && old.entries[0].device == nil && old.entries[0].epochs == nil)
    }

    @Test("epochs that are not a whole number in range are an error naming the line")
    func badEpochs() {
        for bad in ["ten", "-1", "2.5", "100001"] {
            #expect {
                try ReferenceTable.parse(
                    csvText: "model,method,metric,value,epochs\nr,dense,accuracy,1,3\nr,dense,accuracy,1,\(bad)\n",
                    origin: "e.csv")
            } throws: { error in
                let e = error as? ReportsError
                return e?.code == .malformedReference && e!.description.contains("e.csv line 3")
                    && e!.description.contains("'\(bad)'")
            }
        }
    }

    @Test("the shipped study table states its conditions and fixes the MAC note")
    func shipped() throws {
        let table = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        let accuracy = table.entries.filter { $0.metric == "accuracy" }
        #expect(accuracy.allSatisfy { $0.dataset == "cifar10" && $0.device == "gpu" })
        #expect(accuracy.filter { $0.method == "dense" }.allSatisfy { $0.epochs == 10 })
        #expect(accuracy.filter { $0.method != "dense" }.allSatisfy { $0.epochs == 3 })
        let macs = table.entries.filter { $0.metric == "gmacs" }
        #expect(!macs.contains { $0.note.contains("match common") })
        #expect(macs.first { $0.model == "mobilenet_v2" }!.note.contains("ImageNet-224"))
        #expect(macs.first { $0.model == "efficientnet_b0" }!.note.contains("ImageNet-224"))
        #expect(!macs.first { $0.model == "resnet18" }!.note.contains("ImageNet-224 count"))
        let text = table.entries.filter { $0.source.hasSuffix("text") }
        #expect(
            Set(text.map { "\($0.model) \($0.method) \($0.metric) \(NumberText_plain($0.value))" }) == [
                "all nm_2_4 flops_reduction_pct 30", "all nm_2_4 memory_reduction_pct 25",
                "all block_4x4 flops_reduction_pct 20", "all block_4x4 memory_reduction_pct 15",
                "resnet50 nm_2_4 latency_reduction_pct 27.9",
            ])
        let notes = text.map(\.note).joined(separator: " ")
        #expect(notes.contains("four models") && notes.contains("not encoded") && notes.contains("halves"))
    }
}

private func NumberText_plain(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
