import Foundation
import Reports
import SweepKit
import Testing

@Suite("Cells aggregate seeds and never pass a partial mean off as complete")
struct AggregationTests {
    let json: [String: Any]

    init() throws { json = try Read.reportJSON(Fixture.rows) }

    @Test("three seeds give mean ± sample std with n = 3")
    func threeSeeds() throws {
        let cell = try #require(Read.cell(json, table: "Table I", row: "resnet18", column: "dense", metric: "accuracy"))
        // Seeds give 93.3, 93.5, 93.7: mean 93.5, sample std 0.2.
        #expect(abs((cell["mean"] as! Double) - 93.5) < 1e-9)
        #expect(abs((cell["std"] as! Double) - 0.2) < 1e-9)
        #expect(cell["n"] as? Int == 3)
        #expect(cell["status"] as? String == "complete")
        #expect(cell["text"] as? String == "93.5 ± 0.2")
        let notes = Read.tables(json)[0]["notes"] as! [String]
        #expect(notes.contains { $0.contains("mean ± sample std over 3 seeds") })
    }

    @Test("a cell with a failed seed shows its n and the failure")
    func failedSeed() throws {
        let cell = try #require(
            Read.cell(json, table: "Table I", row: "resnet50", column: "nm_2_4", metric: "accuracy"))
        #expect(cell["text"] as? String == "93.2 ± 0.2 (n=2, 1 failed)")
        #expect(cell["n"] as? Int == 2)
        #expect(cell["failed"] as? Int == 1)
        #expect(cell["status"] as? String == "partial")
    }

    @Test("a cell whose tasks all failed reads 'failed' and has no number")
    func allFailed() throws {
        let cell = try #require(
            Read.cell(json, table: "Table I", row: "resnet50", column: "block_4x4", metric: "accuracy"))
        #expect(cell["text"] as? String == "failed")
        #expect(cell["mean"] is NSNull)
        #expect(cell["failed"] as? Int == 3)
    }

    @Test("a cell with no task at all reads 'missing'")
    func missingCell() throws {
        let cell = try #require(
            Read.cell(json, table: "Table I", row: "mobilenet_v2", column: "block_4x4", metric: "latency_ms"))
        #expect(cell["text"] as? String == "missing")
        #expect(cell["missing"] as? Int == 3)
    }

    @Test("a cell with a task still running says so")
    func runningCell() throws {
        let cell = try #require(
            Read.cell(json, table: "Table I", row: "mobilenet_v2", column: "nm_2_4", metric: "accuracy"))
        #expect(cell["text"] as? String == "91.6 ± 0.2 (n=2, 1 running)")
        #expect(cell["running"] as? Int == 1)
    }

    @Test("a seed absent from one cell counts as missing there")
    func absentSeed() throws {
        let rows = Fixture.rows.filter { !($0.model == "resnet18" && $0.method == "block_4x4" && $0.seed == 1) }
        let json = try Read.reportJSON(rows)
        let cell = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "block_4x4", metric: "accuracy"))
        #expect(cell["text"] as? String == "92.6 ± 0.4 (n=2, 1 missing)")
        #expect(cell["missing"] as? Int == 1)
    }

    @Test("a null metric shows as a dash with the engine's reason as a footnote")
    func nullMetric() throws {
        let cell = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "dense", metric: "latency_sparse_ms"))
        #expect(cell["text"] as? String == "— [1]")
        #expect(cell["mean"] is NSNull)
        #expect(cell["status"] as? String == "null")
        let notes = Read.tables(json)[0]["notes"] as! [String]
        #expect(notes.contains("[1] latency_sparse_ms is null: dense model: no sparse kernel applies"))
    }

    @Test("derived columns compare each cell with the dense cell of its row")
    func derived() throws {
        let delta = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "nm_2_4", metric: "accuracy_change"))
        #expect(abs((delta["mean"] as! Double) - (92.3 - 93.5)) < 1e-9)
        #expect(delta["text"] as? String == "-1.2 [-1.4, -1.0]")
        // Masked speedup: per task, the interleaved dense baseline over the task's own latency.
        let pairs = Fixture.rows.filter { $0.model == "resnet18" && $0.method == "nm_2_4" && $0.state == .succeeded }
            .map { ($0.metrics["latency_dense_ms"]!! / $0.metrics["latency_ms"]!!) }
        let expectedMasked = pairs.reduce(0, +) / Double(pairs.count)
        let masked = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "nm_2_4", metric: "speedup_masked"))
        #expect(abs((masked["mean"] as! Double) - expectedMasked) < 1e-9)
        let percent = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "nm_2_4", metric: "speedup_masked_pct"))
        // Files carry 10 significant digits.
        #expect(abs((percent["mean"] as! Double) - (expectedMasked - 1) * 100) < 1e-6)
        let reduction = try #require(
            Read.cell(json, table: "Table II", row: "resnet18", column: "block_4x4", metric: "mac_reduction_pct"))
        #expect(abs((reduction["mean"] as! Double) - 45.0) < 1e-9)
        let groups = (Read.tables(json)[0]["groups"] as! [[String: Any]]).map { $0["title"] as! String }
        #expect(groups.contains("latency (ms) and speedup, masked dense kernels"))
        #expect(groups.contains("latency (ms) and speedup, sparse kernels"))
    }

    @Test("the sparse-kernel speedup pairs each task with its own fp16 dense-kernel timing")
    func pairedSparseSpeedup() throws {
        let sparse = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "nm_2_4", metric: "speedup_sparse"))
        // Seeds: 2.03/1.68, 2.04/1.70, 2.05/1.72, averaged.
        let expected = (2.03 / 1.68 + 2.04 / 1.70 + 2.05 / 1.72) / 3
        #expect(abs((sparse["mean"] as! Double) - expected) < 1e-6)
        #expect((sparse["text"] as? String)?.hasPrefix("1.20× (+20.0%) [") == true)
        #expect(sparse["verdict"] as? String == "faster")
        let notes = Read.tables(json)[0]["notes"] as! [String]
        #expect(!notes.contains { $0.hasPrefix("†") })
    }

    @Test("without that timing the sparse speedup falls back to the dense model and says so")
    func unpairedSparseSpeedup() throws {
        let rows = Fixture.rows.map { row -> ResultRow in
            var row = row
            if case .object(var details) = row.details { details["latency"] = nil; row.details = .object(details) }
            return row
        }
        let json = try Read.reportJSON(rows)
        let sparse = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "nm_2_4", metric: "speedup_sparse"))
        #expect(abs((sparse["mean"] as! Double) - 2.40 / 1.70) < 1e-6)
        #expect(sparse["text"] as? String == "1.41× (+41.2%)†")
        let notes = Read.tables(json)[0]["notes"] as! [String]
        #expect(notes.contains { $0.hasPrefix("† no baseline was timed beside this method in the same process") })
    }

    @Test("without an interleaved dense baseline the masked speedup falls back across tasks and says so")
    func unpairedMaskedSpeedup() throws {
        let rows = Fixture.rows.map { row -> ResultRow in
            var row = row
            row.metrics["latency_dense_ms"] = nil
            return row
        }
        let json = try Read.reportJSON(rows)
        let masked = try #require(
            Read.cell(json, table: "Table I", row: "resnet18", column: "nm_2_4", metric: "speedup_masked"))
        #expect(abs((masked["mean"] as! Double) - 2.40 / 2.448) < 1e-9)
        #expect((masked["text"] as? String)?.hasSuffix("†") == true)
        let notes = Read.tables(json)[0]["notes"] as! [String]
        #expect(notes.contains { $0.hasPrefix("† no baseline was timed beside this method in the same process") })
    }

    @Test("a value derived from an incomplete cell is marked, one without a source reads n/a")
    func derivedFromGaps() throws {
        let partial = try #require(
            Read.cell(json, table: "Table I", row: "resnet50", column: "nm_2_4", metric: "accuracy_change"))
        #expect(partial["text"] as? String == "-1.4 [-1.9, -0.6]*")
        #expect(partial["status"] as? String == "partial")
        let none = try #require(
            Read.cell(json, table: "Table I", row: "resnet50", column: "block_4x4", metric: "accuracy_change"))
        #expect(none["text"] as? String == "n/a")
        #expect(none["mean"] is NSNull)
    }

    @Test("a spec pivots on the dimensions it names, without derived columns off the method axis")
    func customSpec() throws {
        let spec = ReportSpec(title: "By method", rows: "method", columns: "model", values: ["accuracy"])
        let json = try Read.reportJSON(Fixture.rows, specs: [spec])
        let table = Read.tables(json)[0]
        let labels = (table["rows"] as! [[String: Any]]).map { $0["label"] as! String }
        #expect(labels == ["dense", "nm_2_4", "block_4x4"])
        let columns = (table["groups"] as! [[String: Any]])[0]["columns"] as! [String]
        #expect(columns == ["resnet18", "resnet50", "mobilenet_v2"])
    }

    @Test("a metric that no finished task reported gets a note instead of a column of gaps")
    func unreportedMetric() throws {
        let spec = ReportSpec(title: "T", rows: "model", columns: "method", values: ["accuracy", "val_accuracy"])
        let json = try Read.reportJSON(Fixture.rows, specs: [spec])
        let table = Read.tables(json)[0]
        #expect((table["groups"] as! [[String: Any]]).count == 1)
        #expect((table["notes"] as! [String]).contains { $0.hasPrefix("val_accuracy: no finished task reported") })
    }

    @Test("the engine's unit label wins over the built-in one")
    func engineUnits() throws {
        let rows = Fixture.rows.map { row -> ResultRow in
            var row = row
            if row.state == .succeeded { row.units["peak_mib"] = "GiB, max_memory_allocated on cuda:0" }
            return row
        }
        let json = try Read.reportJSON(rows)
        let cell = try #require(
            Read.cell(json, table: "Table II", row: "resnet18", column: "dense", metric: "peak_mib"))
        #expect(cell["unit"] as? String == "GiB")
        let notes = Read.tables(json)[1]["notes"] as! [String]
        #expect(notes.contains("peak_mib: GiB, max_memory_allocated on cuda:0"))
    }
}

@Suite("Headers take their unit from the engine's label")
struct UnitLabelTests {
    @Test(
        "the unit is read from the start of a long label",
        arguments: [
            ("ms per forward call, median of 200 calls", "ms"),
            ("% top-1 on the full test split", "%"),
            ("G-MAC per image (1 MAC = 2 FLOPs), forward pass", "G-MAC"),
            ("MiB, all parameters stored dense", "MiB"),
            ("fraction of exactly-zero weights", "fraction"),
        ])
    func unit(label: String, expected: String) throws {
        let row = ResultRow(
            sweep: "s", stage: "train", taskId: "t", params: ["model": "m"], state: .succeeded,
            metrics: ["x": 1.5], units: ["x": label])
        let json =
            try JSONSerialization.jsonObject(
                with: Data(
                    Reports.renderReport(
                        sweep: "s", rows: [row],
                        specs: [ReportSpec(title: "T", rows: "model", columns: "method", values: ["x"])],
                        format: .json
                    ).utf8)) as! [String: Any]
        let cell = (json["tables"] as! [[String: Any]])[0]["cells"] as! [[String: Any]]
        #expect(cell[0]["unit"] as? String == expected)
    }

    @Test("a label that starts with words, not a unit, leaves the built-in unit")
    func fallback() throws {
        let row = ResultRow(
            sweep: "s", stage: "train", taskId: "t", params: ["model": "m"], state: .succeeded,
            metrics: ["params_m": 11.2], units: ["params_m": "millions of parameters (all, dense count)"])
        let text = Reports.renderReport(
            sweep: "s", rows: [row],
            specs: [
                ReportSpec(
                    title: "T", rows: "model", columns: "method",
                    values: ["params_m"])
            ], format: .table)
        #expect(text.contains("parameters (M)"))
        #expect(text.contains("params_m: millions of parameters (all, dense count)"))
    }
}
