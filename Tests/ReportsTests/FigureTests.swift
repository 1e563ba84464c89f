import Foundation
import Reports
import SweepKit
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Collects the text content of an SVG while checking it parses as XML.
final class SVGReader: NSObject, XMLParserDelegate {
    var root: String?
    var texts: [String] = []
    private var current = ""

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if root == nil { root = name }
        current = ""
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" || name == "title" { texts.append(current) }
        current = ""
    }

    /// nil when the document is not well-formed XML.
    static func read(_ svg: String) -> SVGReader? {
        let reader = SVGReader()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = reader
        return parser.parse() ? reader : nil
    }
}

@Suite("Figures are well-formed SVG that renders")
struct FigureTests {
    let figures = Reports.figures(sweep: Fixture.sweep, rows: Fixture.rows)

    @Test("there are four figures with distinct file names")
    func four() {
        #expect(figures.map(\.name) == ["accuracy", "latency_vs_accuracy", "macs_memory", "speedup"])
    }

    @Test("each SVG is well-formed XML with an svg root")
    func wellFormed() throws {
        for figure in figures {
            let reader = try #require(SVGReader.read(figure.svg), "\(figure.name).svg is not well-formed XML")
            #expect(reader.root == "svg")
            #expect(reader.texts.contains(figure.title))
        }
    }

    @Test("each figure states its axes with units and has a legend")
    func labelled() throws {
        let texts = figures.map { SVGReader.read($0.svg)?.texts ?? [] }
        #expect(texts[0].contains("top-1 accuracy (%)") && texts[0].contains("nm_2_4") && texts[0].contains("dense"))
        #expect(texts[0].contains("failed") && texts[0].contains("missing"))
        #expect(texts[1].contains("latency (ms)") && texts[1].contains("model:") && texts[1].contains("method:"))
        #expect(texts[1].contains("hollow: sparse kernels"))
        #expect(texts[2].contains("effective MACs per image (G-MAC)") && texts[2].contains("peak memory (MiB)"))
        #expect(texts[3].contains("speedup over dense (×)") && texts[3].contains("1× (0%) = as fast as dense"))
        #expect(texts[3].contains("nm_2_4, masked dense kernels") && texts[3].contains("nm_2_4, sparse kernels"))
    }

    @Test("text that looks like markup is escaped")
    func escaping() throws {
        let rows = Fixture.rows.map { row -> ResultRow in
            var row = row
            if row.model == "resnet18" { row.params["model"] = "net<&>\"'" }
            row.sweep = "a&b <test>"
            return row
        }
        for figure in Reports.figures(sweep: "a&b <test>", rows: rows) {
            let reader = try #require(SVGReader.read(figure.svg), "\(figure.name) broke on markup characters")
            #expect(reader.texts.contains("net<&>\"'"))
        }
    }

    @Test("an empty sweep still gives four well-formed figures")
    func empty() {
        for figure in Reports.figures(sweep: "empty", rows: []) {
            #expect(SVGReader.read(figure.svg) != nil, "\(figure.name) is not well-formed with no rows")
        }
    }

    @Test("rsvg-convert renders each figure to a non-empty PNG")
    func renders() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let tool = path.split(separator: ":").map { "\($0)/rsvg-convert" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let tool else {
            Issue.record("rsvg-convert is not on PATH; install it with `make deps` (Debian package librsvg2-bin).")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sparsegrid-figures-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for figure in figures {
            let svg = directory.appendingPathComponent("\(figure.name).svg"),
                png = directory.appendingPathComponent("\(figure.name).png")
            try Data(figure.svg.utf8).write(to: svg)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: tool)
            process.arguments = ["--format", "png", "--output", png.path, svg.path]
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "rsvg-convert failed on \(figure.name).svg: \(message)")
            let data = try Data(contentsOf: png)
            #expect(data.count > 1000, "\(figure.name).png is nearly empty")
            #expect(
                data.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
                "\(figure.name).png is not a PNG")
        }
    }
}
