import SweepKit

/// The results listing for a terminal: aligned columns within 100 characters, the sweep
/// named once above the table when there is only one, errors on their own wrapped line under
/// the task that failed.
enum ResultsTerminal {
    static func render(_ rows: [ResultRow], width: Int = TerminalRenderer.defaultWidth) -> String {
        let sweeps = Set(rows.map(\.sweep))
        let oneSweep = sweeps.count == 1
        var headers = ["stage", "model", "method", "seed", "state", "tries"]
        if !oneSweep { headers.insert("sweep", at: 0) }
        headers += ResultsListing.mainMetrics.map { ResultsListing.shortHeaders[$0]! }
        let alignRight = headers.map { !["sweep", "stage", "model", "method", "state"].contains($0) }
        let body: [[String]] = rows.map { r in
            (oneSweep ? [] : [r.sweep])
                + [
                    r.stage, r.model ?? "", r.method, r.seed.map(String.init) ?? "", r.state.rawValue,
                    String(r.attempts),
                ]
                + ResultsListing.mainMetrics.map { ResultsListing.metricText(r, $0) }
        }
        var widths = headers.map(\.count)
        for line in body { for (i, cell) in line.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func format(_ cells: [String]) -> String {
            let text = cells.enumerated().map { i, cell in
                alignRight[i] ? TerminalRenderer.padLeft(cell, widths[i]) : TerminalRenderer.pad(cell, widths[i])
            }.joined(separator: TerminalRenderer.gap)
            return TerminalRenderer.trimEnd(text)
        }
        var out: [String] = []
        if oneSweep, let sweep = sweeps.first { out.append("sweep: \(sweep)") }
        out.append(summary(rows))
        out.append("")
        out.append(format(headers))
        out.append(
            String(
                repeating: "─", count: min(width, widths.reduce(0, +) + TerminalRenderer.gap.count * (widths.count - 1))
            ))
        for (r, line) in zip(rows, body) {
            out.append(format(line))
            if let error = r.error, !error.isEmpty {
                out += TextWrap.wrap(
                    "error: " + ResultsListing.oneLine(error, limit: 400), width: width,
                    indent: "    ", hangingIndent: "           ")
            }
        }
        out.append("")
        let legend =
            "acc % = accuracy (top-1 %); ms = latency_ms (median, dense kernels); sparse ms = latency_sparse_ms "
            + "(real sparse kernels); GMAC = gmacs_effective (MACs of nonzero weights per image); peak MiB = peak_mib; "
            + "— = null (not applicable); blank = not reported. Use --format json for units and all metrics."
        out += TextWrap.wrap(legend, width: width)
        return out.joined(separator: "\n") + "\n"
    }

    static func summary(_ rows: [ResultRow]) -> String {
        let order: [TaskState] = [.succeeded, .failed, .running, .ready, .pending, .cancelled]
        let counts = order.compactMap { state -> String? in
            let n = rows.filter { $0.state == state }.count
            return n == 0 ? nil : "\(n) \(state.rawValue)"
        }
        return "\(rows.count) task\(rows.count == 1 ? "" : "s")"
            + (counts.isEmpty ? "" : ": " + counts.joined(separator: ", "))
    }
}
