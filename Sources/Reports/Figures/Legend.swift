/// A legend laid out in rows left to right, wrapping at `maxWidth`.
struct Legend {
    enum Swatch {
        case bar(color: String, pale: Bool)
        case marker(Palette.Marker, color: String, hollow: Bool)
        case dashedLine
        case heading
    }

    var items: [(swatch: Swatch, label: String)]

    static let size = 11.0

    private func itemWidth(_ item: (swatch: Swatch, label: String)) -> Double {
        let text = SVGCanvas.textWidth(item.label, size: Legend.size)
        if case .heading = item.swatch { return text + 10 }
        return 18 + text + 16
    }

    func height(maxWidth: Double) -> Double { Double(rows(maxWidth: maxWidth).count) * 18 }

    private func rows(maxWidth: Double) -> [[(swatch: Swatch, label: String)]] {
        var rows: [[(swatch: Swatch, label: String)]] = [[]]
        var used = 0.0
        for item in items {
            let w = itemWidth(item)
            if used + w > maxWidth && !rows[rows.count - 1].isEmpty {
                rows.append([])
                used = 0
            }
            rows[rows.count - 1].append(item)
            used += w
        }
        return rows
    }

    func draw(on canvas: inout SVGCanvas, x: Double, y: Double, maxWidth: Double) {
        for (r, row) in rows(maxWidth: maxWidth).enumerated() {
            var cx = x
            let cy = y + Double(r) * 18
            for item in row {
                switch item.swatch {
                case .heading:
                    canvas.text(item.label, x: cx, y: cy + 10, size: Legend.size, bold: true)
                    cx += itemWidth(item)
                    continue
                case .bar(let color, let pale):
                    canvas.rect(
                        x: cx, y: cy, width: 12, height: 12, fill: color, stroke: pale ? color : nil,
                        strokeWidth: 1.5, fillOpacity: pale ? 0.3 : nil)
                case .dashedLine:
                    canvas.line(cx, cy + 6, cx + 14, cy + 6, stroke: Palette.ink, width: 1.2, dash: "4 2")
                case .marker(let marker, let color, let hollow):
                    Palette.draw(
                        marker, on: &canvas, x: cx + 6, y: cy + 6, size: 4.5, fill: hollow ? "#ffffff" : color,
                        stroke: color)
                }
                canvas.text(item.label, x: cx + 18, y: cy + 10, size: Legend.size)
                cx += itemWidth(item)
            }
        }
    }
}
