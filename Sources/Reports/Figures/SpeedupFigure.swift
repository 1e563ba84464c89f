/// Figure 4: speedup over dense (dense latency / method latency) per model and method, with
/// the real-sparse-kernel speedup beside the masked one where sparse kernels ran.
enum SpeedupFigure {
    static func make(_ data: FigureData) -> Figure {
        var canvas = SVGCanvas(width: 780, height: 470)
        let title = "Speedup over dense per model and method"
        let hasSparse = data.grid.allRows.contains { ($0.metrics["latency_sparse_ms"] ?? nil) != nil }
        var series: [BarChart.Series] = []
        var legendItems: [(swatch: Legend.Swatch, label: String)] = []
        for method in data.sparseMethods {
            let color = data.colors[method]!
            series.append(BarChart.Series(name: method, color: color, bars: data.models.map { speedup("latency_ms", $0, method, data) }))
            legendItems.append((.bar(color: color, pale: false), "\(method), masked dense kernels"))
            if hasSparse {
                series.append(BarChart.Series(name: method, color: color, pale: true,
                                              bars: data.models.map { speedup("latency_sparse_ms", $0, method, data) }))
                legendItems.append((.bar(color: color, pale: true), "\(method), sparse kernels"))
            }
        }
        legendItems.append((.dashedLine, "1× = as fast as dense"))
        let chart = BarChart(categories: data.models, series: series, yLabel: "speedup over dense (×)", xLabel: "model",
                             panelTitle: nil, referenceLine: (1, "1× = as fast as dense"), valueText: { NumberText.fixed($0, 2) + "×" })
        let subtitle = "sweep \(data.sweep) · speedup = dense latency_ms / method latency (medians, means over seeds)"
            + (hasSparse ? " · n/a: no sparse kernel ran for that cell" : " · no task ran real sparse kernels, so only masked dense kernels are shown")
            + (chart.hasPartial ? " · " + BarChart.partialNote : "")
        let top = FigureFrame.drawHeader(on: &canvas, title: title, subtitle: subtitle, legend: Legend(items: legendItems))
        let plotWidth = canvas.width - 72 - 24
        let plot = PlotRect(x: 72, y: top, width: plotWidth, height: canvas.height - top - chart.bottomMargin(plotWidth: plotWidth))
        chart.draw(on: &canvas, in: plot)
        return Figure(name: "speedup", title: title, description: subtitle, canvas: canvas)
    }

    private static func speedup(_ metric: String, _ model: String, _ method: String, _ data: FigureData) -> BarChart.Bar {
        let dense = data.stats("latency_ms", model, "dense")
        let cell = data.stats(metric, model, method)
        guard let base = dense.mean else {
            return BarChart.Bar(value: nil, error: nil, gap: "no dense", tooltip: "\(model), \(method): no dense latency")
        }
        guard let value = cell.mean, value > 0 else {
            let word = data.gapWord(cell)
            return BarChart.Bar(value: nil, error: nil, gap: word, tooltip: "\(model), \(method): \(word)")
        }
        let ratio = base / value
        let partial = cell.isComplete && dense.isComplete ? "" : " (from incomplete cells)"
        return BarChart.Bar(value: ratio, error: nil, gap: nil,
                            tooltip: "\(model), \(method): \(NumberText.fixed(ratio, 2))× (\(metric))\(partial)",
                            partial: !partial.isEmpty)
    }
}
