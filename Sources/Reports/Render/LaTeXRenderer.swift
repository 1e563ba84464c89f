/// LaTeX with booktabs: one `table` float per report table holding one tabular per metric
/// group (a full pivot is wider than a page), each under a `\multicolumn` title with a
/// `\cmidrule`; notes in a `\footnotesize` block below.
/// Needs `\usepackage{booktabs}` in the preamble.
enum LaTeXRenderer {
    static func render(_ table: ReportTable) -> String {
        var out: [String] = []
        out.append("\\begin{table}[htbp]")
        out.append("\\centering")
        out.append("\\caption{\(Escaping.latex(table.title))}")
        out.append("\\small")
        for warning in table.warnings { out.append("\\textbf{\(Escaping.latex(warning))}\\par\\smallskip") }
        for (g, group) in table.groups.enumerated() {
            if g > 0 { out.append("\\medskip") }
            out.append("\\begin{tabular}{l" + String(repeating: "r", count: group.columns.count) + "}")
            out.append("\\toprule")
            out.append(" & \\multicolumn{\(group.columns.count)}{c}{\(Escaping.latex(group.title))} \\\\")
            out.append("\\cmidrule(lr){2-\(group.columns.count + 1)}")
            out.append(tabularRow(table.stubHeader, group.columns))
            out.append("\\midrule")
            for row in table.rows { out.append(tabularRow(row.label, table.cells(of: row, group: g))) }
            out.append("\\bottomrule")
            out.append("\\end{tabular}\\par")
        }
        if !table.notes.isEmpty {
            out.append("\\smallskip")
            out.append("\\begin{minipage}{\\linewidth}\\footnotesize")
            out += table.notes.map { Escaping.latex($0) + "\\par" }
            out.append("\\end{minipage}")
        }
        out.append("\\end{table}")
        return out.joined(separator: "\n") + "\n"
    }

    /// The provenance as comment lines after the heading comment (values are cleaned of line
    /// breaks by `Provenance`, so a comment cannot end early).
    static func provenance(_ content: ReportContent) -> String {
        var out = content.warnings.map { "% WARNING: \(comment($0))" }
        out.append("% Provenance:")
        out += content.provenance.items.map { "%   \(comment($0.label)): \(comment($0.text))" }
        return out.joined(separator: "\n") + "\n"
    }

    private static func comment(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    /// A tabular row: the stub starts the line, right after `\\` or a rule.
    private static func tabularRow<Cells: Collection<String>>(_ stub: String, _ cells: Cells) -> String {
        ([Escaping.latex(stub, startsRow: true)] + cells.map { Escaping.latex($0) }).joined(separator: " & ") + " \\\\"
    }
}
