import SweepKit

/// Turns a ReportSpec and a sweep's results into a ReportTable: one group of columns per
/// metric, one column per value of the column dimension, derived columns beside each
/// non-dense cell when the columns are methods, and notes that state units, methods of
/// measurement, sample sizes and every gap.
enum PivotBuilder {
    static func build(spec: ReportSpec, rows: [ResultRow]) -> ReportTable {
        let grid = Grid(rows: rows, rowsBy: spec.rows, columnsBy: spec.columns)
        let succeeded = rows.filter { $0.state == .succeeded }
        var notes: [String] = []
        var footnotes = Footnotes()

        // A metric no finished task reported gets no column (a row of "not reported" says
        // nothing); while nothing has finished, keep it so the states show.
        let metrics = spec.values.filter { m in succeeded.isEmpty || succeeded.contains { $0.metrics.keys.contains(m) }
        }
        for dropped in spec.values where !metrics.contains(dropped) {
            notes.append("\(dropped): no finished task reported this metric, so it has no column.")
        }

        let denseColumn = spec.columns == "method" && grid.columnValues.contains("dense") ? "dense" : nil
        let usualN = grid.seedsPerCell
        var groups: [ReportTable.Group] = []
        var cellsByRow: [[String]] = Array(repeating: [], count: grid.rowValues.count)
        var records: [CellRecord] = []
        var definitions: [String] = []
        var marksUsed = Set<String>()

        for metric in metrics {
            let units = MetricUnits(metric: metric, rows: grid.allRows)
            let info = MetricCatalog.info(metric)
            let derivation = denseColumn == nil ? nil : Derivation.forMetric(metric, unit: units.unit)
            if let derivation { definitions.append(derivation.definition) }
            let unitSuffix = units.unit.isEmpty ? "" : " (\(units.unit))"
            var group = ReportTable.Group(title: derivation?.groupTitle ?? info.label + unitSuffix, columns: [])
            for column in grid.columnValues {
                // The train stage's own latency comes from other processes than any speedup's
                // baseline; its header says so, and each speedup has its paired baseline beside it.
                let trainLatency = column == denseColumn && derivation?.pairedHeader != nil
                group.columns.append(trainLatency ? "\(column) (train)" : column)
                guard let derivation, column != denseColumn else { continue }
                if let paired = derivation.pairedHeader { group.columns.append(paired) }
                group.columns.append(derivation.header)
            }
            groups.append(group)

            for (i, row) in grid.rowValues.enumerated() {
                for column in grid.columnValues {
                    let stats = grid.stats(metric, row: row, column: column)
                    let text = CellText.measured(stats, decimals: info.decimals, usualN: usualN) {
                        footnotes.number(for: "\(metric) is null: \($0)")
                    }
                    var shownText = text
                    if stats.values.isEmpty && stats.nulls > 0 && stats.nullReasons.isEmpty {
                        shownText =
                            "— [\(footnotes.number(for: "\(metric) is null (not applicable); the engine gave no reason."))]"
                    }
                    if stats.sharedValues > 0, Self.isLatency(metric) {
                        shownText += " \(Self.sharedMark)"
                        marksUsed.insert(Self.sharedMark)
                    }
                    cellsByRow[i].append(shownText)
                    records.append(
                        CellRecord(
                            table: spec.title, row: row, column: column, metric: metric,
                            unit: units.unit, stats: stats, text: shownText))
                    guard let derivation, let denseColumn, column != denseColumn else { continue }
                    let derived = derive(
                        derivation, stats: stats, grid: grid, row: row, dense: denseColumn,
                        table: spec.title, column: column, percent: spec.speedupPercent,
                        decimals: info.decimals, usualN: usualN, footnotes: &footnotes)
                    marksUsed.formUnion(derived.marks)
                    cellsByRow[i] += derived.texts
                    records += derived.records
                }
            }
        }

        var allNotes: [String] = []
        if rows.isEmpty { allNotes.append("No tasks of this sweep are in the results yet.") }
        if usualN > 1 {
            allNotes.append(
                "Cells: mean ± sample std over \(usualN) seeds; a cell holding another number of values says so (n=…).")
        }
        if denseColumn != nil {
            allNotes.append("dense: the train stage's final evaluation (tasks without a method parameter).")
        }
        if let denseColumn, metrics.contains(where: { Derivation.forMetric($0, unit: "")?.pairedHeader != nil }) {
            allNotes.append(
                "\(denseColumn) (train): the train stage's own latency, timed in other processes (the train tasks) at other times; a speedup divides the paired baseline in the column before it, timed interleaved with the method in the same process, and divides this column only where marked †."
            )
        }
        allNotes += definitions
        if metrics.contains(where: { Derivation.forMetric($0, unit: "")?.kind == .speedup }) && denseColumn != nil {
            allNotes.append("speedup %: \(spec.speedupPercent.definition).")
            allNotes.append(
                "[lo–hi]: 95% interval of the speedup, percentile bootstrap (\(SpeedupInterval.resamples) resamples) over the interleaved block pairs of each task and, with several seeds, over seeds (seeds drawn with replacement, then blocks within each); where a single task recorded no blocks, the engine's own interval (details.latency comparisons ci95). Verdict: faster if the interval lies above 1.0, slower if below."
            )
        }
        if marksUsed.contains("≈") {
            allNotes.append("≈: the 95% interval contains 1.0 — no detectable difference.")
        }
        if marksUsed.contains("Δ " + DifferenceInterval.Basis.seeds.rawValue) {
            allNotes.append(
                "Δ pts [lo, hi]: 95% interval of the change, paired by seed (each fine-tune against the dense model of its own seed): mean ± t(0.975, n-1) · s/√n over the per-seed changes."
            )
        }
        if marksUsed.contains("Δ " + DifferenceInterval.Basis.evaluationSampling.rawValue) {
            allNotes.append(
                "Δ pts [lo, hi] with one seed: 95% interval from the sampling of the evaluation images only, ±1.96 · √(p₁(1-p₁)/N₁ + p₂(1-p₂)/N₂) with N the evaluation split's size; it says nothing about seed-to-seed variation, which more seeds would show."
            )
        }
        if marksUsed.contains("≈Δ") {
            allNotes.append("Δ pts ≈: the 95% interval contains 0 — no detectable difference in accuracy.")
        }
        for reason in SpeedupInterval.Missing.allCases where marksUsed.contains(reason.rawValue) {
            allNotes.append("?: \(reason.rawValue), so no verdict.")
        }
        if marksUsed.contains("n/a") {
            allNotes.append("n/a: this cell or the dense cell of its row has no value to compute from.")
        }
        if marksUsed.contains("*") {
            allNotes.append("* computed from an incomplete cell: its mean covers only the tasks that succeeded.")
        }
        if marksUsed.contains("†") {
            allNotes.append(
                "† no baseline was timed beside this method in the same process (latency_dense_ms for masked weights, the fp16 dense-kernel timing for sparse kernels; its column says \"not timed\"), so this speedup divides the dense cell's latency_ms by this cell's — latencies measured in different processes, possibly under different load, and for sparse kernels possibly across a precision change (fp32 → fp16); it has no interval and no verdict."
            )
        }
        if marksUsed.contains(Self.sharedMark) {
            allNotes.append(
                "\(Self.sharedMark) some of this latency's tasks ran on a device shared with other tasks at the same time (as their workers recorded, e.g. `sparsegrid worker --per-gpu 3`): measured under contention, so it may read slower than on a device of its own."
            )
        }
        for metric in metrics {
            for line in MetricUnits(metric: metric, rows: grid.allRows).descriptions {
                allNotes.append("\(metric): \(line)")
            }
        }
        allNotes += footnotes.lines
        allNotes += notes

        return ReportTable(
            title: spec.title, stubHeader: spec.rows, columnsBy: spec.columns, groups: groups,
            rows: zip(grid.rowValues, cellsByRow).map { ReportTable.Row(label: $0, cells: $1) },
            notes: allNotes, records: records)
    }

    private static func derive(
        _ d: Derivation, stats: CellStats, grid: Grid, row: String, dense: String,
        table: String, column: String, percent: ReportSpec.SpeedupPercent, decimals: Int, usualN: Int,
        footnotes: inout Footnotes
    ) -> (records: [CellRecord], texts: [String], marks: Set<String>) {
        let value: Double?, partial: Bool
        var marks = Set<String>()
        var speedup: Speedup?
        var change: DifferenceInterval?
        var pairedTexts: [String] = [], pairedRecords: [CellRecord] = []
        switch d.kind {
        case .speedup:
            speedup =
                d.recordMetric == "speedup_sparse"
                ? Speedup.sparse(grid, row: row, column: column, dense: dense)
                : Speedup.masked(grid, row: row, column: column, dense: dense)
            value = speedup?.value
            partial = speedup?.partial ?? false
            if speedup?.againstDenseModel == true { marks.insert("†") }
            if let pairedMetric = d.pairedMetric {
                let paired = pairedStats(d, speedup: speedup, stats: stats, grid: grid, row: row, column: column)
                let text =
                    speedup?.againstDenseModel == true
                    ? "not timed"
                    : CellText.measured(paired, decimals: decimals, usualN: usualN) {
                        footnotes.number(for: "\(pairedMetric) is null: \($0)")
                    }
                pairedTexts = [text]
                pairedRecords = [
                    CellRecord(
                        table: table, row: row, column: column, metric: pairedMetric,
                        unit: MetricUnits(metric: "latency_ms", rows: grid.allRows).unit,
                        stats: paired, text: text)
                ]
            }
        case .difference, .reduction:
            let base = d.baseMetrics.lazy.map { grid.stats($0, row: row, column: dense) }.first { $0.mean != nil }
            value = stats.mean.flatMap { measured in base?.mean.flatMap { d.value(measured, base: $0) } }
            partial = !stats.isComplete || base?.isComplete == false
            if d.kind == .difference, let metric = d.baseMetrics.first {
                change = DifferenceInterval.of(metric, grid: grid, row: row, column: column, dense: dense)
            }
        }
        guard let value else {
            let record = CellRecord(
                table: table, row: row, column: column, metric: d.recordMetric, unit: d.unit,
                derived: nil, status: "unavailable", text: "n/a")
            return (pairedRecords + [record], pairedTexts + ["n/a"], ["n/a"])
        }
        if partial { marks.insert("*") }
        var text = d.text(value, percent: percent)
        let interval = speedup?.interval
        if let interval {
            text += " " + NumberText.interval(interval.low, interval.high)
            if interval.verdict == .noDifference {
                text += " ≈"
                marks.insert("≈")
            }
        } else if let missing = speedup?.missingInterval {
            text += " ?"
            marks.insert(missing.rawValue)
        }
        if let change {
            text += " [\(NumberText.signed(change.low, 1)), \(NumberText.signed(change.high, 1))]"
            marks.insert("Δ " + change.basis.rawValue)
            if change.verdict == .noDifference {
                text += " ≈"
                marks.insert("≈Δ")
            }
        }
        text += (partial ? "*" : "") + (marks.contains("†") ? "†" : "")
        let status = partial ? "partial" : "complete"
        var record = CellRecord(
            table: table, row: row, column: column, metric: d.recordMetric, unit: d.unit,
            derived: value, status: status, text: text)
        record.ciLow = interval?.low ?? change?.low
        record.ciHigh = interval?.high ?? change?.high
        record.verdict = interval?.verdict.rawValue ?? change?.verdict.rawValue
        var records = pairedRecords + [record]
        if d.kind == .speedup {
            var pct = CellRecord(
                table: table, row: row, column: column, metric: d.recordMetric + "_pct", unit: "%",
                derived: percent.percent(value), status: status, text: text)
            pct.ciLow = interval.map { percent.percent($0.low) }
            pct.ciHigh = interval.map { percent.percent($0.high) }
            pct.verdict = record.verdict
            records.append(pct)
        }
        return (records, pairedTexts + [text], marks)
    }

    /// The per-task baselines of a speedup as a cell: latency_dense_ms of the method's tasks
    /// for masked weights; for sparse kernels the fp16 dense-kernel medians, with the gaps and
    /// nulls of the latency_sparse_ms cell (no sparse timing, no baseline either).
    private static func pairedStats(
        _ d: Derivation, speedup: Speedup?, stats: CellStats, grid: Grid, row: String, column: String
    ) -> CellStats {
        if d.pairedMetric == "latency_dense_ms" { return grid.stats("latency_dense_ms", row: row, column: column) }
        var paired = stats
        paired.values = speedup?.againstDenseModel == false ? speedup?.baseline.values ?? [] : []
        return paired
    }
}

extension PivotBuilder {
    /// Marks a latency cell with a value measured on a shared device.
    static let sharedMark = "§"

    /// A metric timed by the engine (its value depends on what else ran on the device).
    static func isLatency(_ metric: String) -> Bool { metric.contains("latency") }
}

/// Numbered footnotes, each text once, in order of first use.
struct Footnotes {
    private(set) var texts: [String] = []

    mutating func number(for text: String) -> Int {
        if let i = texts.firstIndex(of: text) { return i + 1 }
        texts.append(text)
        return texts.count
    }

    var lines: [String] { texts.enumerated().map { "[\($0.offset + 1)] \($0.element)" } }
}
