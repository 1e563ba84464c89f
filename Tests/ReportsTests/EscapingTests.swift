import Foundation
import SweepKit
import Testing

@testable import Reports

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads one XML element's attribute values and text back, checking it parses.
private final class ElementReader: NSObject, XMLParserDelegate {
    var attributes: [String: String] = [:]
    var text = ""

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        self.attributes = attributes
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    /// nil when `xml` is not well-formed.
    static func read(_ xml: String) -> ElementReader? {
        let reader = ElementReader()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = reader
        return parser.parse() ? reader : nil
    }
}

/// A string of the given scalar values (some cannot be written as literals).
private func scalars(_ values: [UInt32]) -> String {
    String(String.UnicodeScalarView(values.map { Unicode.Scalar($0)! }))
}

/// Text that every escaper must get through: markup, quotes of both kinds, CDATA's end, the
/// specials of LaTeX, Markdown and CSV, and combining marks that fuse with a special into one
/// Character (`<` + U+0338 is even canonically equivalent to `≮`).
private let hard =
    "Tom's \"net\" <b>&amp;</b> ]]> a&b 100% $5 #1 x_y {z} ~ ^ \\ | `c` *e* [l](u) , ;"
    + " <\u{338} &\u{301} \"\u{301} '\u{301} |\u{301} \\\u{301} ,\u{301}"

@Suite("One escaper per output language")
struct EscapingTests {
    // MARK: markup (HTML and SVG/XML)

    @Test("markup: the five characters become references, the apostrophe as &#39; (never &apos;)")
    func markupSpelling() {
        #expect(
            Escaping.markup("<a href=\"x\">Tom's & Jerry's</a>")
                == "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; Jerry&#39;s&lt;/a&gt;")
        #expect(Escaping.markup("]]>") == "]]&gt;")
        #expect(Escaping.markup("&amp;") == "&amp;amp;")
        #expect(Escaping.markup("plain ± text, ×2 — 1.5") == "plain ± text, ×2 — 1.5")
        #expect(!Escaping.markup(hard).contains("&apos;"))
    }

    @Test("markup: a special followed by a combining mark is still escaped")
    func markupCombining() {
        #expect(Escaping.markup("<\u{338}") == "&lt;\u{338}")
        #expect(Escaping.markup("&\u{301}") == "&amp;\u{301}")
        #expect(Escaping.markup("\"\u{301}'\u{301}>\u{301}") == "&quot;\u{301}&#39;\u{301}&gt;\u{301}")
        #expect(!Escaping.markup(hard).unicodeScalars.contains { $0 == "<" || $0 == ">" || $0 == "\"" || $0 == "'" })
    }

    @Test("markup: control characters XML forbids become spaces, noncharacters U+FFFD; tab and line feed stay")
    func markupControls() {
        for v in UInt32(0)..<0x20 where v != 0x09 && v != 0x0A {
            #expect(Escaping.markup("a\(Unicode.Scalar(v)!)b") == "a b", "U+\(String(v, radix: 16))")
        }
        #expect(Escaping.markup("a\tb\nc") == "a\tb\nc")
        #expect(Escaping.markup("a\r\nb") == "a \nb")
        #expect(Escaping.markup("\u{7F}\u{85}\u{9F}") == "   ")
        #expect(Escaping.markup(scalars([0xFFFE, 0xFFFF, 0xFDD0, 0x1FFFF])) == "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}")
    }

    @Test("markup: text and attribute values (both quote styles) read back as XML unchanged")
    func markupParsesAsXML() throws {
        let e = Escaping.markup(hard)
        let reader = try #require(ElementReader.read("<r a=\"\(e)\" b='\(e)'>\(e)</r>"), "not well-formed: \(e)")
        #expect(reader.text == hard)
        #expect(reader.attributes["a"] == hard)
        #expect(reader.attributes["b"] == hard)
        #expect(ElementReader.read("<r>\(Escaping.markup(scalars(Array(0..<0x20))))</r>") != nil)
    }

    @Test("markup: the HTML report and the SVG figures spell an apostrophe the same way")
    func markupOneSpelling() throws {
        let rows = Fixture.rows.map { row -> ResultRow in
            var row = row
            if row.model == "resnet18" { row.params["model"] = "O'Net <v2> & \"co\"" }
            return row
        }
        let html = Reports.renderReport(sweep: Fixture.sweep, rows: rows, specs: Reports.defaultSpecs, format: .html)
        let escaped = "O&#39;Net &lt;v2&gt; &amp; &quot;co&quot;"
        #expect(html.contains("<th scope=\"row\" class=\"stub\">\(escaped)</th>"))
        for figure in Reports.figures(sweep: Fixture.sweep, rows: rows) {
            #expect(!figure.svg.contains("&apos;"), "\(figure.name).svg")
            #expect(html.contains(figure.inlineSVG.trimmingCharacters(in: .newlines)))
            #expect(try #require(SVGReader.read(figure.svg)).texts.contains { $0.contains("O'Net <v2> & \"co\"") })
        }
        #expect(html.contains(">\(escaped)</text>"))
        #expect(!html.contains("&apos;"))
    }

    // MARK: JSON

    @Test("JSON: quotes and backslashes escaped, the string quoted")
    func jsonQuotes() {
        #expect(Escaping.json("a\"b\\c'd") == #""a\"b\\c'd""#)
        #expect(Escaping.json("") == #""""#)
        let raw = "</script> ]]> & é 😀 \u{7F} \u{2028}"
        #expect(Escaping.json(raw) == "\"\(raw)\"")
        #expect(Escaping.json("\"\u{301}\\\u{301}") == "\"\\\"\u{301}\\\\\u{301}\"")
    }

    @Test("JSON: every control character U+0000–U+001F is escaped and reads back")
    func jsonControls() throws {
        let short: [UInt32: String] = [0x0A: #"\n"#, 0x0D: #"\r"#, 0x09: #"\t"#]
        for v in UInt32(0)..<0x20 {
            let s = "a\(Unicode.Scalar(v)!)b"
            let expected = short[v] ?? String(format: "\\u%04x", v)
            #expect(Escaping.json(s) == "\"a\(expected)b\"", "U+\(String(v, radix: 16))")
            #expect(try JSONValue.parse("[\(Escaping.json(s))]") == .array([.string(s)]))
        }
        let all = scalars(Array(0..<0x20)) + hard
        let data = Data("[\(Escaping.json(all))]".utf8)
        #expect(try JSONSerialization.jsonObject(with: data) as? [String] == [all])
        #expect(!Escaping.json(all).unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test("JSON: the reports' indented JSON and SweepKit's canonical JSON spell strings the same")
    func jsonOneSpelling() {
        let s = "k\"\\\n\u{0}\u{1F}é"
        #expect(JSONValue.string(s).canonicalText == Escaping.json(s))
        #expect(JSONText.pretty(.string(s)) == Escaping.json(s) + "\n")
        #expect(JSONText.pretty(.object([s: .string(s)])) == "{\n  \(Escaping.json(s)): \(Escaping.json(s))\n}\n")
        // Task ids hash the canonical text: its spelling must not move.
        #expect(JSONValue.object(["k\n": .string("\u{0}\"\\\u{8}")]).canonicalText == #"{"k\n":"\u0000\"\\\u0008"}"#)
    }

    // MARK: CSV

    @Test("CSV: a field is quoted only when it holds a comma, a quote or a line break; quotes doubled")
    func csvQuoting() {
        for plain in ["", "abc", "a b", "it's", "93.2 ± 0.2", "semi;colon", "tab\there"] {
            #expect(Escaping.csvField(plain) == plain)
        }
        #expect(Escaping.csvField("a,b") == "\"a,b\"")
        #expect(Escaping.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(Escaping.csvField("\"") == "\"\"\"\"")
        #expect(Escaping.csvField("line 1\nline 2") == "\"line 1\nline 2\"")
        #expect(Escaping.csvField("cr\rhere") == "\"cr\rhere\"")
        // "\r\n" is one Character, equal neither to "\r" nor to "\n".
        #expect(Escaping.csvField("a\r\nb") == "\"a\r\nb\"")
        #expect(Escaping.csvField("\"\u{301}") == "\"\"\"\u{301}\"")
        #expect(Escaping.csvField(",\u{301}") == "\",\u{301}\"")
    }

    @Test("CSV: a record of hard fields reads back field for field")
    func csvRoundTrip() {
        let fields = [
            "a,b", "say \"hi\"", "line 1\nline 2", "", "\"", "\"\u{301},\u{301}", hard, "{\"k\":\"v,w\"}",
            "a\r\nb",
        ]
        let text = CSVText.line(fields) + "\n" + CSVText.line(["x", "y"]) + "\n"
        #expect(Read.csv(text) == [fields, ["x", "y"]])
        let parsed = CSVText.parse(text)
        #expect(parsed.map(\.fields) == [fields.map { $0.replacingOccurrences(of: "\r\n", with: "\n") }, ["x", "y"]])
        #expect(parsed.map(\.line) == [1, 4])
    }

    // MARK: LaTeX

    @Test("LaTeX: the ten specials, < > | and the tables' symbols")
    func latexSpecials() {
        #expect(
            Escaping.latex("%$&#_{}~^\\")
                == ##"\%\$\&\#\_\{\}\textasciitilde{}\textasciicircum{}\textbackslash{}"##)
        #expect(Escaping.latex("\\{x}") == #"\textbackslash{}\{x\}"#)
        #expect(Escaping.latex("a<b>c|d") == #"a\textless{}b\textgreater{}c\textbar{}d"#)
        #expect(
            Escaping.latex("93.2 ± 0.2 Δ 1.2× — – … ≈ ═─")
                == #"93.2 $\pm$ 0.2 $\Delta$ 1.2$\times$ --- -- \ldots{} $\approx$ --"#)
        #expect(Escaping.latex("Tom's \"net\" [1]") == "Tom's \"net\" [1]")
        #expect(Escaping.latex("\\\u{301}%\u{301}") == "\\textbackslash{}\u{301}\\%\u{301}")
    }

    @Test("LaTeX: line breaks and control characters become spaces")
    func latexControls() {
        #expect(Escaping.latex("a\nb\r\nc\td\u{0}e\u{7F}f") == "a b  c d e f")
    }

    @Test("LaTeX: a leading [ at the start of a tabular row cannot become \\\\'s optional argument")
    func latexRowStart() {
        #expect(Escaping.latex("[1] x", startsRow: true) == "{[}1] x")
        #expect(Escaping.latex("[1] x") == "[1] x")
        #expect(Escaping.latex("x [1]", startsRow: true) == "x [1]")
    }

    @Test("LaTeX: a report full of specials has balanced braces and no bare specials")
    func latexReport() {
        let sweep = "s_1\n\\input{x}"
        let rows = Fixture.rows.map { row -> ResultRow in
            var row = row
            row.sweep = sweep
            if row.model == "resnet18" { row.params["model"] = "net_{1}%$#&~^\\ <[2]>" }
            if row.model == "resnet50" { row.params["model"] = "[3] net" }
            return row
        }
        let spec = ReportSpec(title: "100% {raw} & #1 \\ ~", rows: "model", columns: "method", values: ["accuracy"])
        let tex = Reports.renderReport(sweep: sweep, rows: rows, specs: [spec], format: .latex)
        let lines = tex.split(separator: "\n").map(String.init)
        let label =
            ##"net\_\{1\}\%\$\#\&\textasciitilde{}\textasciicircum{}\textbackslash{} "##
            + #"\textless{}[2]\textgreater{}"#
        #expect(lines.contains { $0.hasPrefix(label + " & ") })
        #expect(lines.contains { $0.hasPrefix("{[}3] net & ") })
        #expect(lines.contains(##"\caption{100\% \{raw\} \& \#1 \textbackslash{} \textasciitilde{}}"##))
        #expect(lines[0].hasPrefix(#"% sparsegrid report: s\_1 \textbackslash{}input\{x\} ("#), "\(lines[0])")
        var depth = 0, escaped = false
        for u in tex.unicodeScalars {
            if escaped { escaped = false; continue }
            switch u {
            case "\\": escaped = true
            case "{": depth += 1
            case "}": depth -= 1; #expect(depth >= 0)
            default: break
            }
        }
        #expect(depth == 0)
        for line in lines where !line.hasPrefix("%") {
            let chars = Array(line.unicodeScalars)
            for (i, u) in chars.enumerated() {
                #expect(u != "^" && u != "~", "bare \(u) in: \(line)")
                if u == "%" || u == "#" || u == "_" { #expect(i > 0 && chars[i - 1] == "\\", "bare \(u) in: \(line)") }
            }
        }
    }

    // MARK: Markdown

    @Test("Markdown: | and backticks in table cells are escaped, so a row keeps its cells")
    func markdownTable() {
        #expect(Escaping.markdown("a|b") == #"a\|b"#)
        #expect(Escaping.markdown("`code`") == #"\`code\`"#)
        #expect(Escaping.markdown("|\u{301}") == "\\|\u{301}")
        let row = MarkdownRenderer.row(["a|b", "`x|y`", "", "c\\|d"])
        #expect(row == #"| a\|b | \`x\|y\` |   | c\\\|d |"#)
        let chars = Array(row.unicodeScalars)
        var separators = 0, i = 0
        while i < chars.count {
            if chars[i] == "\\" { i += 2; continue }
            if chars[i] == "|" { separators += 1 }
            i += 1
        }
        #expect(separators == 5)
    }

    @Test("Markdown: emphasis, HTML, headings, strikethrough and math characters are escaped")
    func markdownInline() {
        #expect(Escaping.markdown("*b* <i> \\ ~s~ #1 $x$") == ##"\*b\* \<i\> \\ \~s\~ \#1 \$x\$"##)
        #expect(Escaping.markdown("nm_2_4 latency_sparse_ms") == "nm_2_4 latency_sparse_ms")
        #expect(Escaping.markdown("_x_ a _b_. c_") == #"\_x\_ a \_b\_. c\_"#)
        #expect(Escaping.markdown("Tom's \"net\"") == "Tom's \"net\"")
    }

    @Test("Markdown: no links, images, link definitions or entity references")
    func markdownLinks() {
        #expect(Escaping.markdown("— [1] and [2]") == "— [1] and [2]")
        #expect(Escaping.markdown("[x](http://e)") == #"[x\](http://e)"#)
        #expect(Escaping.markdown("![i](u)") == #"![i\](u)"#)
        #expect(Escaping.markdown("[a][b] [c]: u") == #"[a\][b] [c\]: u"#)
        #expect(Escaping.markdown("Tatarnikova & Raskopina") == "Tatarnikova & Raskopina")
        #expect(Escaping.markdown("&amp; &#39; &#x27;") == ##"\&amp; \&\#39; \&\#x27;"##)
    }

    @Test("Markdown: line breaks and control characters become spaces")
    func markdownControls() {
        #expect(Escaping.markdown("a\nb\r\nc\td\u{0}e") == "a b  c d e")
    }
}
