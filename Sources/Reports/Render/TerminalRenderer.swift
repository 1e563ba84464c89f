/// Aligned plain text for a terminal, no line longer than `width` (100 by default): column
/// groups that do not fit beside each other go into further panels, each repeating the row
/// labels.
enum TerminalRenderer {
    static let defaultWidth = 100
    static let gap = "  "

    static func render(_ table: ReportTable, width: Int = defaultWidth) -> String {
        var out: [String] = [table.title, String(repeating: "═", count: min(width, table.title.count))]
        for warning in table.warnings {
            out += TextWrap.wrap("!! " + warning, width: width, indent: "", hangingIndent: "   ")
        }
        out.append("")
        let stubWidth = max(table.stubHeader.count, table.rows.map(\.label.count).max() ?? 0)
        for panel in panels(table, stubWidth: stubWidth, width: width) {
            out += renderPanel(panel, table: table, stubWidth: stubWidth)
            out.append("")
        }
        for note in table.notes {
            out += TextWrap.wrap(note, width: width, indent: "  ", hangingIndent: "    ")
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The lines under the report's heading: warnings marked "!!", then the provenance.
    static func provenance(_ content: ReportContent, width: Int = defaultWidth) -> [String] {
        var out: [String] = []
        for warning in content.warnings {
            out += TextWrap.wrap("!! " + warning, width: width, indent: "", hangingIndent: "   ")
        }
        out.append("Provenance")
        for item in content.provenance.items {
            out += TextWrap.wrap("\(item.label): \(item.text)", width: width, indent: "  ", hangingIndent: "    ")
        }
        return out
    }

    /// A slice of one group's columns (a group wider than the screen is cut into parts).
    struct Part { var group: Int; var title: String; var columns: Range<Int>; var widths: [Int] }

    static func columnWidths(_ table: ReportTable, group: Int) -> [Int] {
        var widths = table.groups[group].columns.map(\.count)
        for row in table.rows {
            for (c, cell) in table.cells(of: row, group: group).enumerated() { widths[c] = max(widths[c], cell.count) }
        }
        return widths
    }

    static func panels(_ table: ReportTable, stubWidth: Int, width: Int) -> [[Part]] {
        let room = width - stubWidth
        var parts: [Part] = []
        for g in table.groups.indices {
            let widths = columnWidths(table, group: g)
            var start = 0
            while start < widths.count {
                var end = start, used = 0
                while end < widths.count && (end == start || used + gap.count + widths[end] <= room) {
                    used += gap.count + widths[end]
                    end += 1
                }
                let title = start == 0 ? table.groups[g].title : table.groups[g].title + " (continued)"
                parts.append(Part(group: g, title: title, columns: start..<end, widths: Array(widths[start..<end])))
                start = end
            }
        }
        var panels: [[Part]] = []
        var current: [Part] = [], used = 0
        for part in parts {
            let partWidth = max(part.widths.reduce(0) { $0 + gap.count + $1 }, gap.count + part.title.count)
            if !current.isEmpty && used + partWidth > room {
                panels.append(current)
                current = []
                used = 0
            }
            current.append(part)
            used += partWidth
        }
        if !current.isEmpty { panels.append(current) }
        return panels
    }

    private static func renderPanel(_ panel: [Part], table: ReportTable, stubWidth: Int) -> [String] {
        var titleLine = pad("", stubWidth), ruleLine = pad("", stubWidth), headerLine = pad(table.stubHeader, stubWidth)
        var bodies = table.rows.map { pad($0.label, stubWidth) }
        for part in panel {
            let span = part.widths.reduce(0) { $0 + gap.count + $1 } - gap.count
            let partWidth = max(span, part.title.count)
            // Widen the last column when the title is longer than the columns together.
            var widths = part.widths
            widths[widths.count - 1] += partWidth - span
            titleLine += gap + pad(part.title, partWidth)
            ruleLine += gap + String(repeating: "─", count: partWidth)
            let headers = table.groups[part.group].columns[part.columns]
            headerLine += zip(headers, widths).map { gap + padLeft($0, $1) }.joined()
            for (r, row) in table.rows.enumerated() {
                let cells = table.cells(of: row, group: part.group)
                let slice = cells[
                    (cells.startIndex + part.columns.lowerBound)..<(cells.startIndex + part.columns.upperBound)]
                bodies[r] += zip(slice, widths).map { gap + padLeft($0, $1) }.joined()
            }
        }
        return [titleLine, ruleLine, headerLine].map(trimEnd) + bodies.map(trimEnd)
    }

    static func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
    static func padLeft(_ s: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - s.count)) + s
    }
    static func trimEnd(_ s: String) -> String {
        var s = s
        while s.last == " " { s.removeLast() }
        return s
    }
}
