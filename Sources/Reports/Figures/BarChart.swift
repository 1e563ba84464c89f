import Foundation

struct PlotRect {
    var x: Double, y: Double, width: Double, height: Double
    var right: Double { x + width }
    var bottom: Double { y + height }
}

/// Grouped bars: one group per category (model), one bar per series (method) in each, from a
/// zero baseline. Error bars show ±1 std where given; a bar with no value shows why ("failed",
/// "missing") instead of a zero-height bar that would read as a measurement.
struct BarChart {
    struct Bar {
        var value: Double?
        /// ±1 std whisker; `interval` (e.g. a 95% interval) wins when both are given.
        var error: Double?
        /// Shown in place of a missing bar.
        var gap: String?
        var tooltip: String
        /// The value comes from an incomplete cell; its label gets a "*".
        var partial = false
        /// An asymmetric whisker [low, high], drawn instead of ±error.
        var interval: (low: Double, high: Double)? = nil
        /// Appended to the value label (e.g. " ≈" for an interval containing 1.0).
        var mark = ""

        /// The whisker's ends, clamped at the zero baseline; nil when there is none.
        var whisker: (low: Double, high: Double)? {
            if let interval { return (max(0, interval.low), max(0, interval.high)) }
            guard let value, let error, error > 0 else { return nil }
            return (max(0, value - error), value + error)
        }
    }

    /// Whether any bar is from an incomplete cell (the figure then explains the "*").
    var hasPartial: Bool { series.contains { $0.bars.contains { $0.value != nil && $0.partial } } }
    static let partialNote = "* incomplete cell: mean of the seeds that finished"

    struct Series {
        var name: String
        var color: String
        /// Drawn pale with a solid outline (e.g. sparse-kernel speedups beside masked ones).
        var pale = false
        var bars: [Bar]
    }

    var categories: [String]
    var series: [Series]
    var yLabel: String
    var xLabel: String
    var panelTitle: String?
    var referenceLine: (value: Double, label: String)?
    /// A ceiling the axis never passes (100 for percentages).
    var yCeiling: Double? = nil
    var valueText: (Double) -> String

    static let tickSize = 11.0
    static let valueSize = 9.0

    private func rotatesLabels(plotWidth: Double) -> Bool {
        let slot = plotWidth / Double(max(1, categories.count))
        return categories.contains { SVGCanvas.textWidth($0, size: BarChart.tickSize) + 8 > slot }
    }

    /// Room the category labels and the axis label need under the plot.
    func bottomMargin(plotWidth: Double) -> Double {
        guard rotatesLabels(plotWidth: plotWidth) else { return 44 }
        let longest = categories.map { SVGCanvas.textWidth($0, size: BarChart.tickSize) }.max() ?? 0
        return longest * sin(35 * Double.pi / 180) + 40
    }

    func draw(on canvas: inout SVGCanvas, in plot: PlotRect) {
        if let panelTitle {
            canvas.text(panelTitle, x: plot.x, y: plot.y - 10, size: 13, bold: true)
        }
        let tops = series.flatMap { $0.bars.compactMap { b in b.value.map { max($0, b.whisker?.high ?? 0) } } }
        let highest = max(tops.max() ?? yCeiling ?? 1, referenceLine?.value ?? 0)
        var scale = AxisScale(minValue: 0, maxValue: highest * 1.1)
        if let yCeiling, scale.upper > yCeiling, highest <= yCeiling {
            scale = AxisScale(minValue: 0, maxValue: yCeiling)
        }
        let yOf = { (v: Double) in scale.position(v, from: plot.bottom, to: plot.y) }

        for tick in scale.ticks {
            let y = yOf(tick)
            canvas.line(plot.x, y, plot.right, y, stroke: Palette.grid)
            canvas.text(
                scale.label(tick), x: plot.x - 6, y: y + 4, size: BarChart.tickSize, anchor: .end, fill: Palette.muted)
        }
        canvas.text(yLabel, x: plot.x - 44, y: plot.y + plot.height / 2, size: 12, anchor: .middle, rotate: -90)

        if let reference = referenceLine {
            // Its label is in the legend: inside the plot it would collide with bar labels.
            let y = yOf(reference.value)
            canvas.line(plot.x, y, plot.right, y, stroke: Palette.ink, width: 1.2, dash: "6 4")
        }
        let slot = plot.width / Double(max(1, categories.count))
        let barWidth = slot * 0.72 / Double(max(1, series.count))
        for (c, category) in categories.enumerated() {
            let groupStart = plot.x + slot * Double(c) + slot * 0.14
            for (s, line) in series.enumerated() {
                let bar = line.bars[c]
                let x = groupStart + barWidth * Double(s)
                let center = x + barWidth / 2
                guard let value = bar.value else {
                    if let gap = bar.gap {
                        canvas.text(
                            gap, x: center + 3, y: plot.bottom - 4, size: BarChart.valueSize, fill: Palette.muted,
                            rotate: -90)
                    }
                    continue
                }
                let top = yOf(value)
                canvas.rect(
                    x: x + 1, y: top, width: barWidth - 2, height: plot.bottom - top, fill: line.color,
                    stroke: line.pale ? line.color : nil, strokeWidth: 1.5, fillOpacity: line.pale ? 0.3 : nil,
                    tooltip: bar.tooltip)
                var end = top
                if let whisker = bar.whisker {
                    let hi = yOf(whisker.high), lo = yOf(whisker.low)
                    canvas.line(center, hi, center, lo, stroke: Palette.ink, width: 1.2)
                    canvas.line(center - 4, hi, center + 4, hi, stroke: Palette.ink, width: 1.2)
                    canvas.line(center - 4, lo, center + 4, lo, stroke: Palette.ink, width: 1.2)
                    end = min(top, hi)
                }
                BarChart.drawValueLabel(
                    valueText(value) + bar.mark + (bar.partial ? "*" : ""), on: &canvas, center: center, end: end,
                    barWidth: barWidth, plotTop: plot.y)
            }
            let labelX = plot.x + slot * (Double(c) + 0.5)
            if rotatesLabels(plotWidth: plot.width) {
                canvas.text(
                    category, x: labelX, y: plot.bottom + 14, size: BarChart.tickSize, anchor: .end, rotate: -35)
            } else {
                canvas.text(category, x: labelX, y: plot.bottom + 17, size: BarChart.tickSize, anchor: .middle)
            }
        }
        canvas.line(plot.x, plot.bottom, plot.right, plot.bottom, stroke: Palette.ink)
        canvas.line(plot.x, plot.y, plot.x, plot.bottom, stroke: Palette.ink)
        canvas.text(
            xLabel, x: plot.x + plot.width / 2, y: plot.bottom + bottomMargin(plotWidth: plot.width) - 6,
            size: 12, anchor: .middle)
    }

    /// The one placement rule for value labels of every bar chart: just above the end of the
    /// bar (or of its whisker, when it has one), horizontal when the label fits the bar's width
    /// and turned upright otherwise; where that would run past the top of the plot, the label
    /// goes just below that end instead (inside the bar). A white halo keeps it legible where
    /// it crosses a grid or reference line.
    static func drawValueLabel(
        _ label: String, on canvas: inout SVGCanvas, center: Double, end: Double, barWidth: Double, plotTop: Double
    ) {
        let width = SVGCanvas.textWidth(label, size: BarChart.valueSize)
        if width <= barWidth {
            let above = end - 4
            let y = above - BarChart.valueSize < plotTop ? end + BarChart.valueSize + 3 : above
            canvas.text(label, x: center, y: y, size: BarChart.valueSize, anchor: .middle, halo: true)
        } else if end - 4 - width < plotTop {
            canvas.text(
                label, x: center + 3, y: end + 4, size: BarChart.valueSize, anchor: .end, rotate: -90, halo: true)
        } else {
            canvas.text(label, x: center + 3, y: end - 4, size: BarChart.valueSize, rotate: -90, halo: true)
        }
    }
}
