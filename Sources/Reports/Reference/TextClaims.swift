import SweepKit

/// Claims a paper makes in its text rather than its tables ("N:M sparsity reduces FLOPs by
/// 30%"), set beside the range the sweep measured. A reference entry is a text claim when its
/// metric is one of `derivations`; model `all` means every model of the study, compared with
/// the measured minimum–maximum over the models the sweep ran with that method.
enum TextClaims {
    struct Derivation: Sendable {
        /// How the measured value is computed, for the table's notes.
        var definition: String
        /// The measured metrics it reads.
        var metrics: [String]
    }

    /// Reductions in percent, each computed per model from the method's cell (and, where the
    /// engine does not pair them in one task, the dense cell of the same model).
    static let derivations: [String: Derivation] = [
        "flops_reduction_pct": Derivation(
            definition:
                "(1 - gmacs_effective / gmacs) x 100 per task (effective MACs count nonzero weights only; both from the same task), mean over seeds",
            metrics: ["gmacs_effective", "gmacs"]),
        "memory_reduction_pct": Derivation(
            definition:
                "(1 - peak_mib(method) / peak_mib(dense)) x 100 from the cell means of the same model (peak memory is not paired within a task)",
            metrics: ["peak_mib"]),
        "latency_reduction_pct": Derivation(
            definition:
                "(1 - latency_ms / latency_dense_ms) x 100 per task (the study's latency reduction 1 - t_sparse / t_dense; the dense model timed interleaved in the same task), mean over seeds",
            metrics: ["latency_ms", "latency_dense_ms"]),
    ]

    /// The table's stub header; its records hold the claim's model and method as `row` and
    /// `column` (model "all" for every model), like the other reference tables.
    static let stubHeader = "claim"

    static func isTextClaim(_ entry: ReferenceTable.Entry) -> Bool { derivations[entry.metric] != nil }

    /// The "Claims in the text" table, or nil when the reference holds no text claims.
    static func build(reference: ReferenceTable, grid: Grid) -> ReportTable? {
        let entries = reference.entries.filter(isTextClaim)
        guard !entries.isEmpty else { return nil }
        var differences = ConditionDifferences()
        var records: [CellRecord] = []
        var marked = false
        let baseTitle = "Claims in the text"
        var rows: [ReportTable.Row] = []
        for entry in entries {
            let models = entry.model == "all" ? grid.rowValues : [entry.model]
            var perModel: [(model: String, value: Double)] = []
            var used: [ResultRow] = []
            for model in models {
                let cell = grid.tasks[Grid.Key(row: model, column: entry.method)] ?? []
                let dense = grid.tasks[Grid.Key(row: model, column: "dense")] ?? []
                if let v = value(entry.metric, cell: cell, dense: dense) {
                    perModel.append((model, v))
                    used += cell.filter { $0.state == .succeeded }
                    if entry.metric == "memory_reduction_pct" { used += dense.filter { $0.state == .succeeded } }
                }
            }
            let differs = differences.compare(claimed: entry.conditions, with: used)
            marked = marked || differs
            let claimedText =
                NumberText.fixed(entry.value, entry.decimals) + (entry.unit.isEmpty ? "" : " " + entry.unit)
            var measuredText = "n/a", over = ""
            if let lo = perModel.min(by: { $0.value < $1.value }), let hi = perModel.max(by: { $0.value < $1.value }) {
                let low = NumberText.fixed(lo.value, 1), high = NumberText.fixed(hi.value, 1)
                measuredText = low == high ? low : "\(low) to \(high)"
                measuredText += (entry.unit.isEmpty ? "" : " " + entry.unit) + (differs ? " ‡" : "")
                over = low == high ? perModel.map(\.model).joined(separator: ", ") : "\(lo.model) / \(hi.model)"
            }
            let label = "\(entry.method) \(entry.metric) (\(entry.model))"
            rows.append(ReportTable.Row(label: label, cells: [claimedText, measuredText, over]))
            var record = CellRecord(
                table: baseTitle, row: entry.model, column: entry.method, metric: entry.metric, unit: entry.unit,
                derived: nil, status: perModel.isEmpty ? "missing" : "ok", text: measuredText)
            record.claimed = entry.value
            record.claimedUnit = entry.unit
            // A range has no one mean or Δ: the record carries the claim and the range as text.
            records.append(record)
        }
        let title = baseTitle + (marked ? " [conditions differ]" : "")
        for i in records.indices { records[i].table = title }
        var notes = [
            "claimed: \(sources(entries)), as stated in the paper's text; model 'all' is compared with the range over the models this sweep measured with that method."
        ]
        if marked {
            notes.append("‡ measured under other conditions than the claim (see the warning above the table).")
        }
        var seen = Set<String>()
        for metric in entries.map(\.metric) where seen.insert(metric).inserted {
            notes.append("\(metric): \(derivations[metric]!.definition).")
        }
        var seenSentences = Set<String>()
        for e in entries {
            if let fresh = freshSentences(e.note, seen: &seenSentences) {
                notes.append("Note (\(e.method) \(e.metric)): \(fresh)")
            }
        }
        return ReportTable(
            title: title, stubHeader: stubHeader, columnsBy: "method",
            groups: [ReportTable.Group(title: "text claims", columns: ["claimed", "measured", "min / max model"])],
            rows: rows, notes: notes, records: records,
            warnings: marked ? [differences.warning(subject: "the measured range")] : [])
    }

    /// One model's measured value of a text-claim metric, or nil when nothing was measured.
    static func value(_ metric: String, cell: [ResultRow], dense: [ResultRow]) -> Double? {
        func metricValue(_ row: ResultRow, _ name: String) -> Double? {
            guard row.state == .succeeded, case .some(.some(let v)) = row.metrics[name], v.isFinite else { return nil }
            return v
        }
        func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        func pairedReduction(_ measured: String, _ baseline: String) -> Double? {
            mean(
                cell.compactMap { row in
                    guard let m = metricValue(row, measured), let b = metricValue(row, baseline), b > 0 else {
                        return nil
                    }
                    return (1 - m / b) * 100
                })
        }
        switch metric {
        case "flops_reduction_pct": return pairedReduction("gmacs_effective", "gmacs")
        case "latency_reduction_pct": return pairedReduction("latency_ms", "latency_dense_ms")
        case "memory_reduction_pct":
            guard let m = mean(cell.compactMap { metricValue($0, "peak_mib") }),
                let b = mean(dense.compactMap { metricValue($0, "peak_mib") }), b > 0
            else { return nil }
            return (1 - m / b) * 100
        default: return nil
        }
    }

    /// The sentences of a note not shown yet, or nil: claims share sentences (what model
    /// 'all' means, how a metric is read), and each is shown once per table.
    static func freshSentences(_ note: String, seen: inout Set<String>) -> String? {
        let parts = note.components(separatedBy: ". ")
        let sentences = parts.enumerated().map { i, part in i + 1 < parts.count ? part + "." : part }
        let fresh = sentences.filter { !$0.isEmpty && seen.insert($0).inserted }
        return fresh.isEmpty ? nil : fresh.joined(separator: " ")
    }

    private static func sources(_ entries: [ReferenceTable.Entry]) -> String {
        var list: [String] = []
        for e in entries where !e.source.isEmpty && !list.contains(e.source) { list.append(e.source) }
        return list.isEmpty ? "the reference table" : list.joined(separator: "; ")
    }
}
