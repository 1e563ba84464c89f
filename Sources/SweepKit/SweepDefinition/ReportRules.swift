/// Checks a spec's report tables against what the sweep produces: rows and columns must be
/// grid keys (or `method` / `stage`), and for the sparsity engine values must be its metrics.
enum ReportRules {
    static func check(_ spec: SweepSpec, _ diagnostics: inout Diagnostics) {
        var keys: [String] = []
        var known: Set<String> = []
        for key in spec.grid.map(\.key) + spec.stages.flatMap({ $0.grid.map(\.key) }) + ["method", "stage"]
        where known.insert(key).inserted {
            keys.append(key)
        }
        for axis in spec.reportAxes where !known.contains(axis.key) {
            diagnostics.add(
                axis.node, axis.path,
                "`\(axis.key)` is not a key of the grid;"
                    + Suggestions.tail(
                        for: axis.key, in: keys, label: "Tables can pivot on", list: Suggestions.sample(keys)))
        }
        guard spec.isSparsity else { return }
        let metrics = KnownEngines.sparsityMetrics
        for metric in spec.reportMetrics
        where !metrics.contains(metric.key) && !KnownEngines.isPerBatchLatency(metric.key) {
            diagnostics.add(
                metric.node, metric.path,
                "`\(metric.key)` is not a metric of the sparsity engine;"
                    + Suggestions.tail(
                        for: metric.key, in: metrics, label: "Metrics",
                        list: metrics.joined(separator: ", ") + ", and latency_ms_bs64 etc. per batch size"))
        }
    }
}

extension ReportRules {
    /// `speedup_percent: gain | reduction` of a report table; nil (and an issue) otherwise.
    static func speedupPercent(_ node: SpecNode, _ path: String, _ diagnostics: inout Diagnostics)
        -> ReportSpec.SpeedupPercent?
    {
        let choices = ReportSpec.SpeedupPercent.allCases.map(\.rawValue)
        if case .string(let s, _) = node.kind, let value = ReportSpec.SpeedupPercent(rawValue: s) { return value }
        diagnostics.add(
            node, path,
            "expected \(choices.joined(separator: " or ")), found \(node.found); gain = (speedup - 1) × 100, "
                + "reduction = (1 - 1/speedup) × 100 (the study's latency reduction), e.g. `speedup_percent: reduction`."
        )
        return nil
    }
}
