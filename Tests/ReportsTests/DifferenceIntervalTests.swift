import SweepKit
import Testing

@testable import Reports

/// Accuracy changes (Δ pts) carry a 95% interval: paired over seeds when there are several,
/// from the evaluation split's size when there is one.
@Suite("Accuracy changes carry a 95% interval and a verdict")
struct DifferenceIntervalTests {
    static func row(_ method: String?, seed: Int, accuracy: Double, testImages: Double = 512) -> ResultRow {
        var params: [String: JSONValue] = ["model": "resnet18", "seed": .number(Double(seed))]
        if let method { params["method"] = .string(method) }
        return ResultRow(
            sweep: "s", stage: method == nil ? "train" : "finetune", taskId: "\(method ?? "dense")-\(seed)",
            params: params, state: .succeeded, metrics: ["accuracy": accuracy],
            details: ["dataset": ["dataset": "synthetic", "test": .number(testImages)]])
    }

    static func interval(_ rows: [ResultRow]) -> DifferenceInterval? {
        let grid = Grid(rows: rows, rowsBy: "model", columnsBy: "method")
        return DifferenceInterval.of("accuracy", grid: grid, row: "resnet18", column: "nm_2_4", dense: "dense")
    }

    @Test("three seeds: a consistent drop is detected, paired by seed")
    func seedsDetectDrop() throws {
        let rows = [
            Self.row(nil, seed: 0, accuracy: 90), Self.row(nil, seed: 1, accuracy: 80),
            Self.row(nil, seed: 2, accuracy: 85),
            Self.row("nm_2_4", seed: 0, accuracy: 88), Self.row("nm_2_4", seed: 1, accuracy: 78.2),
            Self.row("nm_2_4", seed: 2, accuracy: 82.9),
        ]
        let found = try #require(Self.interval(rows))
        #expect(found.basis == .seeds)
        #expect(found.verdict == .lower)
        // Changes -2, -1.8, -2.1: mean -1.967, s 0.153, t(2) 4.303 → ±0.379.
        #expect(abs(found.low - -2.346) < 0.01 && abs(found.high - -1.588) < 0.01)
    }

    @Test("three seeds whose changes disagree in sign: no detectable difference")
    func seedsNoDifference() throws {
        let rows = [
            Self.row(nil, seed: 0, accuracy: 50), Self.row(nil, seed: 1, accuracy: 50),
            Self.row(nil, seed: 2, accuracy: 50),
            Self.row("nm_2_4", seed: 0, accuracy: 53), Self.row("nm_2_4", seed: 1, accuracy: 47),
            Self.row("nm_2_4", seed: 2, accuracy: 51),
        ]
        let found = try #require(Self.interval(rows))
        #expect(found.verdict == .noDifference)
        #expect(found.low < 0 && found.high > 0)
    }

    @Test("one seed: the interval comes from the evaluation split's size and narrows as it grows")
    func oneSeed() throws {
        let small = try #require(
            Self.interval([Self.row(nil, seed: 0, accuracy: 50), Self.row("nm_2_4", seed: 0, accuracy: 44)]))
        #expect(small.basis == .evaluationSampling)
        // ±1.96·√(0.25/512 + 0.2464/512)·100 = ±6.11: a 6-point drop on 512 images is not detectable.
        #expect(abs((small.high - small.low) / 2 - 6.11) < 0.02)
        #expect(small.verdict == .noDifference)
        let large = try #require(
            Self.interval([
                Self.row(nil, seed: 0, accuracy: 50, testImages: 10_000),
                Self.row("nm_2_4", seed: 0, accuracy: 44, testImages: 10_000),
            ]))
        #expect(large.verdict == .lower)
    }

    @Test("no recorded evaluation size (or a hostile one): no interval rather than a made-up one")
    func unknownSize() {
        #expect(
            Self.interval([
                Self.row(nil, seed: 0, accuracy: 50, testImages: 0), Self.row("nm_2_4", seed: 0, accuracy: 44),
            ]) == nil)
        #expect(
            Self.interval([
                Self.row(nil, seed: 0, accuracy: 50, testImages: .infinity), Self.row("nm_2_4", seed: 0, accuracy: 44),
            ]) == nil)
    }

    @Test("the pivot prints the interval and the ≈ mark, and the note says how it was computed")
    func inThePivot() {
        let rows = [Self.row(nil, seed: 0, accuracy: 50), Self.row("nm_2_4", seed: 0, accuracy: 48)]
        let table = PivotBuilder.build(
            spec: ReportSpec(title: "t", rows: "model", columns: "method", values: ["accuracy"]), rows: rows)
        let cells = table.rows[0].cells
        #expect(cells.contains { $0.hasPrefix("-2.0 [-8.1, +4.1] ≈") })
        #expect(table.notes.contains { $0.contains("sampling of the evaluation images only") })
        let record = table.records.first { $0.metric == "accuracy_change" }
        #expect(record?.verdict == "no detectable difference")
        #expect(record?.ciLow != nil)
    }
}
