/// GitHub-flavoured Markdown: a heading per table, a table per metric group (Markdown has no
/// spanning headers, and narrow tables stay readable), notes as a list.
enum MarkdownRenderer {
    static func render(_ table: ReportTable, level: Int = 2) -> String {
        var out = [String(repeating: "#", count: level) + " " + Escaping.markdown(table.title), ""]
        for warning in table.warnings { out += ["> **\(Escaping.markdown(warning))**", ""] }
        for (g, group) in table.groups.enumerated() {
            out.append("**\(Escaping.markdown(group.title))**")
            out.append("")
            out.append(row([table.stubHeader] + group.columns))
            out.append("|" + ([":---"] + group.columns.map { _ in "---:" }).joined(separator: "|") + "|")
            for r in table.rows { out.append(row([r.label] + Array(table.cells(of: r, group: g)))) }
            out.append("")
        }
        if !table.notes.isEmpty {
            out += table.notes.map { "- " + Escaping.markdown($0) }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    /// Warnings in bold block quotes, then the provenance as a list, under the report's heading.
    static func provenance(_ content: ReportContent) -> [String] {
        var out: [String] = []
        for warning in content.warnings { out += ["> **\(Escaping.markdown(warning))**", ""] }
        out += ["**Provenance**", ""]
        out += content.provenance.items.map { "- \(Escaping.markdown($0.label)): \(Escaping.markdown($0.text))" }
        out.append("")
        return out
    }

    static func row(_ cells: [String]) -> String {
        "| " + cells.map { $0.isEmpty ? " " : Escaping.markdown($0) }.joined(separator: " | ") + " |"
    }
}
