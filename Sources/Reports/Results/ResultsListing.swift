import SweepKit

/// `sparsegrid results`: one line per task with its state, main metrics and, for a failed
/// task, its error.
enum ResultsListing {
    /// The metrics a listing shows as columns in table and Markdown form.
    static let mainMetrics = ["accuracy", "latency_ms", "latency_sparse_ms", "gmacs_effective", "peak_mib"]
    /// Short headers for the terminal, where width is scarce.
    static let shortHeaders = [
        "accuracy": "acc %", "latency_ms": "ms", "latency_sparse_ms": "sparse ms",
        "gmacs_effective": "GMAC", "peak_mib": "peak MiB",
    ]

    static func render(_ rows: [ResultRow], format: OutputFormat, sortBy: String?) throws -> String {
        let ordered = try sortBy.map { try ResultsOrder.sorted(rows, by: $0) } ?? ResultsOrder.natural(rows)
        switch format {
        case .table: return ResultsTerminal.render(ordered)
        case .markdown: return markdown(ordered)
        case .csv: return csv(ordered)
        case .json: return json(ordered)
        case .latex, .html:
            throw ReportsError(
                .unsupportedFormat,
                "The results listing has no \(format.rawValue) form; choose one of table, markdown, csv or json, or use `sparsegrid report` for LaTeX and HTML tables."
            )
        }
    }

    /// A metric as a listing cell: "—" for null (not applicable), "" when not reported.
    static func metricText(_ row: ResultRow, _ metric: String) -> String {
        switch row.metrics[metric] {
        case .some(.some(let v)): return NumberText.fixed(v, MetricCatalog.info(metric).decimals + 1)
        case .some(.none): return "—"
        case .none: return ""
        }
    }

    static func oneLine(_ error: String?, limit: Int) -> String {
        guard let error else { return "" }
        let flat = error.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(
            separator: " ")
        return flat.count <= limit ? flat : String(flat.prefix(limit - 1)) + "…"
    }

    private static func markdown(_ rows: [ResultRow]) -> String {
        let headers =
            ["sweep", "stage", "model", "method", "seed", "state", "attempts"]
            + mainMetrics.map { m in
                MetricUnits(metric: m, rows: rows).unit.isEmpty
                    ? m : "\(m) (\(MetricUnits(metric: m, rows: rows).unit))"
            }
            + ["error"]
        var out = [MarkdownRenderer.row(headers), "|" + headers.map { _ in "---" }.joined(separator: "|") + "|"]
        for r in rows {
            out.append(
                MarkdownRenderer.row(
                    [
                        r.sweep, r.stage, r.model ?? "", r.method, r.seed.map(String.init) ?? "",
                        r.state.rawValue, String(r.attempts),
                    ]
                        + mainMetrics.map { metricText(r, $0) } + [oneLine(r.error, limit: 200)]))
        }
        return out.joined(separator: "\n") + "\n"
    }

    private static func csv(_ rows: [ResultRow]) -> String {
        let others = Set(rows.flatMap(\.metrics.keys)).subtracting(mainMetrics).sorted()
        let metrics = mainMetrics + others
        var lines = [
            CSVText.line(
                ["sweep", "stage", "model", "method", "seed", "state", "attempts", "task_id"]
                    + metrics + ["error", "params"])
        ]
        for r in rows {
            let values = metrics.map { m in (r.metrics[m] ?? nil).map(NumberText.plain) ?? "" }
            lines.append(
                CSVText.line(
                    [
                        r.sweep, r.stage, r.model ?? "", r.method, r.seed.map(String.init) ?? "",
                        r.state.rawValue, String(r.attempts), r.taskId,
                    ]
                        + values + [oneLine(r.error, limit: Int.max), JSONValue.object(r.params).canonicalText]))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func json(_ rows: [ResultRow]) -> String {
        JSONText.pretty(
            .array(
                rows.map { r in
                    var object: [String: JSONValue] = [
                        "sweep": .string(r.sweep), "stage": .string(r.stage), "task_id": .string(r.taskId),
                        "model": .nullable(r.model), "method": .string(r.method), "seed": .nullable(r.seed),
                        "state": .string(r.state.rawValue), "attempts": .number(Double(r.attempts)),
                        "metrics": .object(r.metrics.mapValues { .nullable($0) }),
                        "units": .object(r.units.mapValues { .string($0) }),
                        "params": .object(r.params), "details": r.details, "error": .nullable(r.error),
                        "artifacts": .array(
                            r.artifacts.map { a in
                                .object([
                                    "name": .string(a.name), "sha256": .string(a.sha256),
                                    "bytes": .number(Double(a.bytes)),
                                    "path": .string(a.path),
                                ])
                            }),
                    ]
                    // Where the result's attempt ran and who shared its device: only when recorded.
                    if let device = r.device {
                        object["device"] = .string(device)
                        object["tasks_at_once"] = .nullable(r.tasksAtOnce)
                        object["co_tenants"] = .array((r.coTenants ?? []).map { .string($0) })
                    }
                    return .object(object)
                }))
    }
}
