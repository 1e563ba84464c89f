/// One figure of a report as SVG text.
public struct Figure: Sendable, Equatable {
    /// File stem, e.g. "accuracy" → figures/accuracy.svg.
    public let name: String
    public let title: String
    /// A standalone SVG document (XML declaration and SVG namespace).
    public let svg: String
    /// The same drawing for inline use in HTML: no namespace attribute, so no URL in the page.
    let inlineSVG: String

    init(name: String, title: String, description: String, canvas: SVGCanvas) {
        self.name = name
        self.title = title
        svg = canvas.document(title: title, description: description, standalone: true)
        inlineSVG = canvas.document(title: title, description: description, standalone: false)
    }
}

/// Title, subtitle and legend across the top of a figure; returns where the plot may start.
enum FigureFrame {
    static func drawHeader(on canvas: inout SVGCanvas, title: String, subtitle: String, legend: Legend) -> Double {
        canvas.text(title, x: 20, y: 28, size: 17, bold: true)
        var y = 48.0
        for line in TextWrap.wrap(subtitle, width: Int((canvas.width - 40) / (11 * 0.58))) {
            canvas.text(line, x: 20, y: y, size: 11, fill: Palette.muted)
            y += 15
        }
        legend.draw(on: &canvas, x: 20, y: y - 2, maxWidth: canvas.width - 40)
        return y + legend.height(maxWidth: canvas.width - 40) + 26
    }
}
