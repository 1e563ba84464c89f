import Foundation

/// A minimal SVG writer: shapes and text appended in paint order, every text and attribute
/// value escaped for XML (`Escaping.markup`). Coordinates are pixels from the top left.
struct SVGCanvas {
    let width: Double
    let height: Double
    private(set) var elements: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    mutating func rect(
        x: Double, y: Double, width: Double, height: Double, fill: String, stroke: String? = nil,
        strokeWidth: Double = 1, fillOpacity: Double? = nil, tooltip: String? = nil
    ) {
        var attrs = [
            ("x", n(x)), ("y", n(y)), ("width", n(max(0, width))), ("height", n(max(0, height))), ("fill", fill),
        ]
        if let stroke { attrs += [("stroke", stroke), ("stroke-width", n(strokeWidth))] }
        if let fillOpacity { attrs.append(("fill-opacity", n(fillOpacity))) }
        add("rect", attrs, tooltip: tooltip)
    }

    mutating func line(
        _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
        dash: String? = nil
    ) {
        var attrs = [
            ("x1", n(x1)), ("y1", n(y1)), ("x2", n(x2)), ("y2", n(y2)), ("stroke", stroke), ("stroke-width", n(width)),
        ]
        if let dash { attrs.append(("stroke-dasharray", dash)) }
        add("line", attrs)
    }

    mutating func polygon(
        _ points: [(Double, Double)], fill: String, stroke: String, strokeWidth: Double = 1.2,
        tooltip: String? = nil
    ) {
        let list = points.map { "\(n($0.0)),\(n($0.1))" }.joined(separator: " ")
        add(
            "polygon", [("points", list), ("fill", fill), ("stroke", stroke), ("stroke-width", n(strokeWidth))],
            tooltip: tooltip)
    }

    mutating func circle(
        cx: Double, cy: Double, r: Double, fill: String, stroke: String, strokeWidth: Double = 1.2,
        tooltip: String? = nil
    ) {
        add(
            "circle",
            [
                ("cx", n(cx)), ("cy", n(cy)), ("r", n(r)), ("fill", fill), ("stroke", stroke),
                ("stroke-width", n(strokeWidth)),
            ], tooltip: tooltip)
    }

    enum Anchor: String { case start, middle, end }

    mutating func text(
        _ content: String, x: Double, y: Double, size: Double = 12, anchor: Anchor = .start,
        bold: Bool = false, fill: String = "#222222", rotate: Double? = nil, halo: Bool = false
    ) {
        var attrs = [
            ("x", n(x)), ("y", n(y)), ("font-size", n(size)), ("text-anchor", anchor.rawValue), ("fill", fill),
        ]
        if bold { attrs.append(("font-weight", "bold")) }
        // A white outline under the glyphs keeps a label legible where it crosses a line.
        if halo {
            attrs += [
                ("stroke", "#ffffff"), ("stroke-width", "3"), ("paint-order", "stroke"), ("stroke-linejoin", "round"),
            ]
        }
        if let rotate { attrs.append(("transform", "rotate(\(n(rotate)) \(n(x)) \(n(y)))")) }
        elements.append("<text \(attributes(attrs))>\(Escaping.markup(content))</text>")
    }

    /// The standalone file form (XML declaration, SVG namespace) or the form for inline use
    /// in HTML, which needs no namespace — and so holds no URL at all.
    func document(title: String, description: String, standalone: Bool) -> String {
        var head =
            standalone
            ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" " : "<svg "
        head += "width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" "
        head += "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\" role=\"img\">"
        let body =
            [
                "<title>\(Escaping.markup(title))</title>", "<desc>\(Escaping.markup(description))</desc>",
                "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>",
            ] + elements
        return head + "\n" + body.joined(separator: "\n") + "\n</svg>\n"
    }

    /// Estimated width of a text run (DejaVu Sans, the widest common fallback, averages about
    /// 0.62 em per glyph; overestimating only costs some space).
    static func textWidth(_ text: String, size: Double) -> Double { Double(text.count) * size * 0.62 }

    private mutating func add(_ tag: String, _ attrs: [(String, String)], tooltip: String? = nil) {
        if let tooltip {
            elements.append("<\(tag) \(attributes(attrs))><title>\(Escaping.markup(tooltip))</title></\(tag)>")
        } else {
            elements.append("<\(tag) \(attributes(attrs))/>")
        }
    }

    private func attributes(_ attrs: [(String, String)]) -> String {
        attrs.map { "\($0.0)=\"\(Escaping.markup($0.1))\"" }.joined(separator: " ")
    }

    private func n(_ value: Double) -> String {
        let text = String(format: "%.1f", value)
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }
}
