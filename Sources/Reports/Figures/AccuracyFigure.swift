/// Figure 1: accuracy per model, grouped by method.
enum AccuracyFigure {
    static func make(_ data: FigureData) -> Figure {
        var canvas = SVGCanvas(width: 780, height: 470)
        let title = "Accuracy per model and method"
        let unit = data.unit("accuracy")
        let legend = Legend(items: data.methods.map { (.bar(color: data.colors[$0]!, pale: false), $0) })
        let chart = BarChart(
            categories: data.models,
            series: data.methods.map { method in
                BarChart.Series(
                    name: method, color: data.colors[method]!,
                    bars: data.models.map { data.bar("accuracy", $0, method, decimals: 1) })
            },
            yLabel: "top-1 accuracy (\(unit.isEmpty ? "%" : unit))", xLabel: "model", panelTitle: nil,
            referenceLine: nil,
            yCeiling: 100, valueText: { NumberText.fixed($0, 1) })
        let subtitle =
            "sweep \(data.sweep) · top-1 accuracy on the test split · \(data.spreadNote)"
            + (chart.hasPartial ? " · " + BarChart.partialNote : "")
        let top = FigureFrame.drawHeader(on: &canvas, title: title, subtitle: subtitle, legend: legend)
        let plotWidth = canvas.width - 72 - 24
        let plot = PlotRect(
            x: 72, y: top, width: plotWidth, height: canvas.height - top - chart.bottomMargin(plotWidth: plotWidth))
        chart.draw(on: &canvas, in: plot)
        return Figure(name: "accuracy", title: title, description: subtitle, canvas: canvas)
    }
}
