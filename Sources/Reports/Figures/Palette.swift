import Foundation

/// Colours and marker shapes. Colours are the Okabe–Ito set, told apart with the common
/// colour-vision deficiencies; dense is dark grey so the baseline reads as one.
enum Palette {
    static let colors = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#882255", "#999933"]
    static let dense = "#555555"
    static let ink = "#222222"
    static let muted = "#777777"
    static let grid = "#E3E3E3"

    /// One colour per method, dense grey, the rest in order.
    static func methodColors(_ methods: [String]) -> [String: String] {
        var out: [String: String] = [:]
        var i = 0
        for m in methods {
            if m == "dense" { out[m] = dense } else { out[m] = colors[i % colors.count]; i += 1 }
        }
        return out
    }

    static func color(_ index: Int) -> String { colors[index % colors.count] }

    enum Marker: CaseIterable { case circle, square, triangle, diamond, triangleDown, pentagon }

    static func marker(_ index: Int) -> Marker { Marker.allCases[index % Marker.allCases.count] }

    static func draw(
        _ marker: Marker, on canvas: inout SVGCanvas, x: Double, y: Double, size r: Double, fill: String,
        stroke: String, tooltip: String? = nil
    ) {
        func regular(_ sides: Int, rotation: Double, scale: Double) -> [(Double, Double)] {
            (0..<sides).map { k in
                let angle = rotation + Double(k) * 2 * Double.pi / Double(sides)
                return (x + r * scale * cos(angle), y + r * scale * sin(angle))
            }
        }
        switch marker {
        case .circle: canvas.circle(cx: x, cy: y, r: r, fill: fill, stroke: stroke, tooltip: tooltip)
        case .square:
            canvas.polygon(
                regular(4, rotation: Double.pi / 4, scale: 1.25), fill: fill, stroke: stroke, tooltip: tooltip)
        case .triangle:
            canvas.polygon(
                regular(3, rotation: -Double.pi / 2, scale: 1.35), fill: fill, stroke: stroke, tooltip: tooltip)
        case .diamond:
            canvas.polygon(regular(4, rotation: 0, scale: 1.35), fill: fill, stroke: stroke, tooltip: tooltip)
        case .triangleDown:
            canvas.polygon(
                regular(3, rotation: Double.pi / 2, scale: 1.35), fill: fill, stroke: stroke, tooltip: tooltip)
        case .pentagon:
            canvas.polygon(
                regular(5, rotation: -Double.pi / 2, scale: 1.2), fill: fill, stroke: stroke, tooltip: tooltip)
        }
    }
}
