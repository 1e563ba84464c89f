/// LaTeX with booktabs: one `table` float per report table holding one tabular per metric
/// group (a full pivot is wider than a page), each under a `\multicolumn` title with a
/// `\cmidrule`; notes in a `\footnotesize` block below.
/// Needs `\usepackage{booktabs}` in the preamble.
enum LaTeXRenderer {
    static func render(_ table: ReportTable) -> String {
        var out: [String] = []
        out.append("\\begin{table}[htbp]")
        out.append("\\centering")
        out.append("\\caption{\(escape(table.title))}")
        out.append("\\small")
        for (g, group) in table.groups.enumerated() {
            if g > 0 { out.append("\\medskip") }
            out.append("\\begin{tabular}{l" + String(repeating: "r", count: group.columns.count) + "}")
            out.append("\\toprule")
            out.append(" & \\multicolumn{\(group.columns.count)}{c}{\(escape(group.title))} \\\\")
            out.append("\\cmidrule(lr){2-\(group.columns.count + 1)}")
            out.append(([escape(table.stubHeader)] + group.columns.map(escape)).joined(separator: " & ") + " \\\\")
            out.append("\\midrule")
            for row in table.rows {
                out.append(([escape(row.label)] + table.cells(of: row, group: g).map(escape)).joined(separator: " & ") + " \\\\")
            }
            out.append("\\bottomrule")
            out.append("\\end{tabular}\\par")
        }
        if !table.notes.isEmpty {
            out.append("\\smallskip")
            out.append("\\begin{minipage}{\\linewidth}\\footnotesize")
            out += table.notes.map { escape($0) + "\\par" }
            out.append("\\end{minipage}")
        }
        out.append("\\end{table}")
        return out.joined(separator: "\n") + "\n"
    }

    /// Escapes LaTeX specials and spells the few non-ASCII symbols the tables use.
    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\": out += "\\textbackslash{}"
            case "&", "%", "$", "#", "_", "{", "}": out += "\\\(c)"
            case "~": out += "\\textasciitilde{}"
            case "^": out += "\\textasciicircum{}"
            case "±": out += "$\\pm$"
            case "Δ": out += "$\\Delta$"
            case "×": out += "$\\times$"
            case "—": out += "---"
            case "–": out += "--"
            case "…": out += "\\ldots{}"
            case "≈": out += "$\\approx$"
            case "═", "─": out += "-"
            case "\n": out += " "
            default: out.append(c)
            }
        }
        return out
    }
}
