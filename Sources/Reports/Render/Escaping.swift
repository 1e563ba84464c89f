import SweepKit

/// The one escaper per output language. Every renderer that puts text into a language goes
/// through these, so that the same text is spelled the same wherever it appears (the SVG
/// figures are embedded in the HTML report, for one). All of them walk Unicode scalars, not
/// Characters: a combining mark after `<`, `&`, `"`, `|` or `\` makes one Character that
/// compares unequal to the bare one and would slip past a Character-wise escaper.
enum Escaping {
    /// Text and attribute values (double- or single-quoted) in HTML and in XML, hence SVG —
    /// standalone or inline in HTML. The five markup characters become references; the
    /// apostrophe is `&#39;`, which HTML 4 and XML both know (`&apos;` is XML and HTML 5
    /// only). `>` is escaped too, so `]]>` cannot end a CDATA section that does not exist.
    /// Control characters other than tab and line feed are not allowed in XML 1.0 (and are
    /// errors in HTML) and become spaces; noncharacters (U+FFFE, U+FFFF, U+FDD0–U+FDEF, …)
    /// become U+FFFD.
    static func markup(_ text: String) -> String {
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(u)
            default:
                if isControl(u) {
                    out += " "
                } else if (0xFDD0...0xFDEF).contains(u.value) || u.value & 0xFFFE == 0xFFFE {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    /// A JSON string literal, quotes included: SweepKit's escaper, the one `canonicalText`
    /// (and so every task id) uses.
    static func json(_ text: String) -> String { JSONValue.quoted(text) }

    /// An RFC 4180 CSV field, quoted only when it must be (it holds a comma, a double quote,
    /// a line feed or a carriage return), with each double quote doubled inside the quotes.
    static func csvField(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else {
            return value
        }
        var out = "\""
        for u in value.unicodeScalars {
            if u == "\"" { out += "\"\"" } else { out.unicodeScalars.append(u) }
        }
        return out + "\""
    }

    /// Text for a LaTeX document (table cells, captions, notes): the ten specials
    /// `\ & % $ # _ { } ~ ^` and `< > |` (which the default OT1 encoding prints as other
    /// glyphs) escaped, the few non-ASCII symbols the tables use spelled in LaTeX, line
    /// breaks and other control characters as spaces. `startsRow`: the text begins a tabular
    /// row, right after `\\` or a booktabs rule, which would read a leading `[` as the start
    /// of their optional argument; it is then written `{[}`.
    static func latex(_ text: String, startsRow: Bool = false) -> String {
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "\\": out += "\\textbackslash{}"
            case "&", "%", "$", "#", "_", "{", "}": out += "\\" + String(u)
            case "~": out += "\\textasciitilde{}"
            case "^": out += "\\textasciicircum{}"
            case "<": out += "\\textless{}"
            case ">": out += "\\textgreater{}"
            case "|": out += "\\textbar{}"
            case "±": out += "$\\pm$"
            case "Δ": out += "$\\Delta$"
            case "×": out += "$\\times$"
            case "—": out += "---"
            case "–": out += "--"
            case "…": out += "\\ldots{}"
            case "≈": out += "$\\approx$"
            case "═", "─": out += "-"
            default:
                if isControl(u) { out += " " } else { out.unicodeScalars.append(u) }
            }
        }
        if startsRow && out.hasPrefix("[") { out = "{[}" + out.dropFirst() }
        return out
    }

    /// Inline text for GitHub-flavoured Markdown: table cells, headings, bold titles and list
    /// items. Backslash-escapes what would be read as markup — `|` (the table's cell
    /// separator), `` ` ``, `*`, `\`, `<` and `>` (HTML, autolinks), `~` (strikethrough),
    /// `#` (headings), `$` (math) — and, where they could form markup, `_` (emphasis, except
    /// between two letters or digits, where GitHub reads it literally as in `nm_2_4`), `]`
    /// (before `(`, `[` or `:`, which would make a link, image or link definition) and `&`
    /// (before a letter, digit or `#`, which would make an entity reference). Line breaks
    /// and other control characters become spaces.
    static func markdown(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        func isWordScalar(_ i: Int) -> Bool {
            guard scalars.indices.contains(i) else { return false }
            let p = scalars[i].properties
            return p.isAlphabetic || p.numericType != nil
        }
        var out = ""
        for (i, u) in scalars.enumerated() {
            let next = i + 1 < scalars.count ? scalars[i + 1] : nil
            let escaped: Bool
            switch u {
            case "|", "`", "*", "\\", "<", ">", "~", "#", "$": escaped = true
            case "_": escaped = !(isWordScalar(i - 1) && isWordScalar(i + 1))
            case "]": escaped = next == "(" || next == "[" || next == ":"
            case "&": escaped = next == "#" || isWordScalar(i + 1)
            default:
                if isControl(u) { out += " "; continue }
                escaped = false
            }
            if escaped { out += "\\" }
            out.unicodeScalars.append(u)
        }
        return out
    }

    /// The C0 controls (tab and line feed included: callers that keep them match them
    /// first), DEL and the C1 controls.
    private static func isControl(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7F...0x9F).contains(u.value)
    }
}
