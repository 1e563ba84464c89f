import Foundation
import SweepKit

/// What `sparsegrid results` and `sparsegrid report` print and write. Reads plain
/// `ResultRow`s (Store builds them) and `ReportSpec`s; does no I/O except `writeReport` and
/// `ReferenceTable.load`.
public enum Reports {
    /// The two tables of the published study: Table I (accuracy, latency with masked and real
    /// sparse kernels) and Table II (MACs, weight memory dense vs compressed, peak memory), per
    /// model (rows) and method (columns).
    public static let defaultSpecs: [ReportSpec] = [
        ReportSpec(
            title: "Table I: accuracy and latency", rows: "model", columns: "method",
            values: ["accuracy", "latency_ms", "latency_sparse_ms"]),
        ReportSpec(
            title: "Table II: MACs and memory", rows: "model", columns: "method",
            values: ["gmacs", "gmacs_effective", "weight_mib", "weight_compressed_mib", "peak_mib"]),
    ]

    /// One line per task. Formats: table, markdown, csv, json (latex and html throw).
    /// `sortBy`: a column (sweep, stage, model, method, seed, state, attempts, task_id) or a
    /// metric name; a leading "-" sorts descending. Default: sweep, model, method, seed, stage.
    public static func renderResults(_ rows: [ResultRow], format: OutputFormat, sortBy: String? = nil) throws -> String
    {
        try ResultsListing.render(rows, format: format, sortBy: sortBy)
    }

    /// The pivot tables of `specs` (the defaults when empty) with derived columns, and the
    /// claimed-versus-measured tables when a reference is given. `.html` is the whole
    /// self-contained report including the four figures. Rows of other sweeps are ignored.
    public static func renderReport(
        sweep: String, rows: [ResultRow], specs: [ReportSpec], format: OutputFormat,
        reference: ReferenceTable? = nil
    ) -> String {
        let content = ReportContent(sweep: sweep, rows: rows, specs: specs, reference: reference)
        switch format {
        case .table:
            let tables = content.pivots + content.references
            return
                ([content.heading] + TerminalRenderer.provenance(content) + [""]
                + tables.map { TerminalRenderer.render($0) }).joined(separator: "\n")
        case .markdown:
            var parts =
                ["# \(Escaping.markdown(content.heading))", ""] + MarkdownRenderer.provenance(content)
                + content.pivots.map { MarkdownRenderer.render($0) }
            if !content.references.isEmpty {
                parts +=
                    ["## Claimed versus measured", ""]
                    + content.references.map { MarkdownRenderer.render($0, level: 3) }
            }
            return parts.joined(separator: "\n")
        case .csv:
            return TableData.csv(content.pivots + content.references, provenance: content)
        case .json:
            return TableData.json(
                sweep: sweep, pivots: content.pivots, references: content.references, provenance: content)
        case .latex:
            let preamble =
                "% \(Escaping.latex(content.heading))\n% Needs \\usepackage{booktabs}.\n"
                + LaTeXRenderer.provenance(content)
            return preamble + (content.pivots + content.references).map { "\n" + LaTeXRenderer.render($0) }.joined()
        case .html:
            return HTMLRenderer.render(
                sweep: sweep, summary: content.summary, content: content, pivots: content.pivots,
                references: content.references,
                figures: figures(sweep: sweep, rows: rows, speedupPercent: figurePercent(specs)))
        }
    }

    /// The four figures: accuracy, latency versus accuracy, MACs and memory, speedup.
    /// `speedupPercent`: how Fig. 4 writes speedups as percentages.
    public static func figures(
        sweep: String, rows: [ResultRow], speedupPercent: ReportSpec.SpeedupPercent = .gain
    ) -> [Figure] {
        let data = FigureData(
            sweep: sweep, rows: ReportContent.rows(of: sweep, in: rows), speedupPercent: speedupPercent)
        return [AccuracyFigure.make(data), TradeoffFigure.make(data), CostFigure.make(data), SpeedupFigure.make(data)]
    }

    /// The figures follow the first table's `speedup_percent` (the CLI's --speedup-percent
    /// sets every table's).
    static func figurePercent(_ specs: [ReportSpec]) -> ReportSpec.SpeedupPercent {
        (specs.isEmpty ? defaultSpecs : specs)[0].speedupPercent
    }

    /// Returns `specs` (the defaults when empty) with every table's speedup percentage set to
    /// `percent` — what `sparsegrid report --speedup-percent` does.
    public static func specs(_ specs: [ReportSpec], speedupPercent percent: ReportSpec.SpeedupPercent?) -> [ReportSpec]
    {
        var all = specs.isEmpty ? defaultSpecs : specs
        if let percent { for i in all.indices { all[i].speedupPercent = percent } }
        return all
    }

    /// Writes report.html, the tables in every other format (report.txt, .md, .csv, .json,
    /// .tex), the results listing (results.csv, results.json) and figures/NAME.svg into
    /// `directory`, creating it if needed. Returns the paths written, in that order.
    public static func writeReport(
        sweep: String, rows: [ResultRow], specs: [ReportSpec], reference: ReferenceTable?,
        to directory: String
    ) throws -> [String] {
        let sweepRows = ReportContent.rows(of: sweep, in: rows)
        var files: [(String, String)] = [
            (
                "report.html",
                renderReport(sweep: sweep, rows: sweepRows, specs: specs, format: .html, reference: reference)
            )
        ]
        for format in [OutputFormat.table, .markdown, .csv, .json, .latex] {
            files.append(
                (
                    "report.\(format.fileExtension)",
                    renderReport(sweep: sweep, rows: sweepRows, specs: specs, format: format, reference: reference)
                ))
        }
        for format in [OutputFormat.csv, .json] {
            files.append(("results.\(format.fileExtension)", try renderResults(sweepRows, format: format)))
        }
        for figure in figures(sweep: sweep, rows: sweepRows, speedupPercent: figurePercent(specs)) {
            files.append(("figures/\(figure.name).svg", figure.svg))
        }
        return try ReportFiles.write(files, into: directory)
    }
}
