import Foundation
import Reports
import SweepKit
import Testing

@Suite("The reference table puts a paper's numbers beside the measured ones")
struct ReferenceTests {
    @Test("the shipped table holds the published values under the engine's names")
    func shippedTable() throws {
        var table = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        // The text claims are checked in ReferenceColumnsTests; here, the two tables.
        table.entries = table.entries.filter { $0.source.contains("Table") }
        #expect(table.entries.count == 5 * 3 * 4)
        #expect(
            Set(table.entries.map(\.model)) == [
                "resnet18", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0",
            ])
        #expect(Set(table.entries.map(\.method)) == ["dense", "nm_2_4", "block_4x4"])
        #expect(Set(table.entries.map(\.metric)) == ["accuracy", "latency_ms", "gmacs", "memory_mb"])
        func value(_ model: String, _ method: String, _ metric: String) -> Double? {
            table.entries.first { $0.model == model && $0.method == method && $0.metric == metric }?.value
        }
        #expect(value("resnet18", "nm_2_4", "accuracy") == 92.8)
        #expect(value("efficientnet_b0", "dense", "accuracy") == 96.0)
        #expect(value("densenet121", "block_4x4", "latency_ms") == 4.6)
        #expect(value("resnet50", "dense", "gmacs") == 1.31)
        #expect(value("mobilenet_v2", "nm_2_4", "memory_mb") == 180)
        let memory = try #require(table.entries.first { $0.metric == "memory_mb" })
        #expect(memory.measuredMetric == "peak_mib")
        #expect(memory.note.contains("MiB"))
        let latency = try #require(table.entries.first { $0.metric == "latency_ms" })
        #expect(latency.note.contains("median"))
    }

    @Test("the view shows claimed, measured and Δ side by side")
    func view() throws {
        let reference = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: Fixture.rows, specs: Reports.defaultSpecs, format: .table,
            reference: reference)
        let line = try #require(
            text.components(separatedBy: "\n").first { $0.hasPrefix("resnet18 ") && $0.contains("94.2") })
        // claimed 94.2 | measured 93.5 ± 0.2 | Δ -0.7, in that order on one line
        let claimed = try #require(line.range(of: "94.2")), measured = try #require(line.range(of: "93.5 ± 0.2"))
        let delta = try #require(line.range(of: "-0.7"))
        #expect(claimed.upperBound <= measured.lowerBound && measured.upperBound <= delta.lowerBound)

        let json = try Read.reportJSON(Fixture.rows, reference: reference)
        let cell = try #require(
            Read.cell(
                json, table: "Claimed versus measured: memory_mb", row: "resnet50",
                column: "dense", metric: "peak_mib"))
        #expect(cell["claimed"] as? Double == 850)
        #expect(abs((cell["delta"] as! Double) - (700 - 850)) < 1e-9)
        #expect(cell["claimed_unit"] as? String == "MB")
        let missing = try #require(
            Read.cell(
                json, table: "Claimed versus measured: accuracy", row: "densenet121",
                column: "dense", metric: "accuracy"))
        #expect(missing["delta"] is NSNull)
        #expect(missing["text"] as? String == "missing")
    }

    @Test("a measured_metric column overrides the built-in mapping")
    func override() throws {
        let table = try ReferenceTable.parse(
            csvText: "model,method,metric,value,unit,measured_metric\nresnet18,dense,gmacs,0.56,G,gmacs\n",
            origin: "inline.csv")
        #expect(table.entries[0].measuredMetric == "gmacs")
        let defaulted = try ReferenceTable.parse(
            csvText: "model,method,metric,value\nresnet18,dense,memory_mb,320\n", origin: "x.csv")
        #expect(defaulted.entries[0].measuredMetric == "peak_mib")
    }

    @Test("a missing file is an error that names the path")
    func missingFile() {
        #expect {
            try ReferenceTable.load(csvPath: "/nonexistent/paper.csv")
        } throws: { error in
            let e = error as? ReportsError
            return e?.code == .unreadableReference && e!.description.contains("/nonexistent/paper.csv")
        }
    }

    @Test("a value that is not a number is an error that names the line")
    func badNumber() {
        #expect {
            try ReferenceTable.parse(
                csvText: "model,method,metric,value\nresnet18,dense,accuracy,94.2\nresnet50,dense,accuracy,high\n",
                origin: "paper.csv")
        } throws: { error in
            let e = error as? ReportsError
            return e?.code == .malformedReference && e!.description.contains("paper.csv line 3")
                && e!.description.contains("'high'")
        }
    }

    @Test("a header without a required column is an error that says which")
    func missingColumn() {
        #expect {
            try ReferenceTable.parse(csvText: "model,method,value\nresnet18,dense,94.2\n", origin: "paper.csv")
        } throws: { error in
            (error as? ReportsError)?.description.contains("no 'metric' column") == true
        }
    }

    @Test("quoted fields with commas and quotes are read whole")
    func quoting() throws {
        let table = try ReferenceTable.parse(
            csvText:
                "model,method,metric,value,note\r\nresnet18,dense,accuracy,94.2,\"mean, not median; \"\"as published\"\"\"\r\n",
            origin: "q.csv")
        #expect(table.entries[0].note == "mean, not median; \"as published\"")
    }
}
