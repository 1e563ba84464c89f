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
            series.append(
                BarChart.Series(
                    name: method, color: color, bars: data.models.map { speedup("latency_ms", $0, method, data) }))
            legendItems.append((.bar(color: color, pale: false), "\(method), masked dense kernels"))
            if hasSparse {
                series.append(
                    BarChart.Series(
                        name: method, color: color, pale: true,
                        bars: data.models.map { speedup("latency_sparse_ms", $0, method, data) }))
                legendItems.append((.bar(color: color, pale: true), "\(method), sparse kernels"))
            }
        }
        legendItems.append((.dashedLine, "1× (0%) = as fast as dense"))
        let percent = data.speedupPercent
        let chart = BarChart(
            categories: data.models, series: series, yLabel: "speedup over dense (×)", xLabel: "model",
            panelTitle: nil, referenceLine: (1, "1× (0%) = as fast as dense"),
            valueText: { NumberText.speedup($0, percent: percent) })
        var subtitle =
            "sweep \(data.sweep) · masked: per task, the dense model it started from (timed interleaved) / its latency_ms"
        let fallback = data.models.contains { model in
            data.sparseMethods.contains {
                Speedup.sparse(data.grid, row: model, column: $0, dense: "dense")?.againstDenseModel == true
            }
        }
        subtitle +=
            hasSparse
            ? " · sparse: same weights in fp16 on dense kernels / on sparse kernels, timed together"
                + (fallback ? " (where not recorded: dense model's latency_ms, precision may differ)" : "")
                + " · n/a: no sparse kernel ran"
            : " · no task ran real sparse kernels, so only masked dense kernels are shown"
        subtitle +=
            " · speedup = t_dense / t_method (axis from 0, dashed line at 1×) · \(percent.definition)"
            + " · medians per task, means over seeds"
            + (chart.series.contains { $0.bars.contains { $0.interval != nil } }
                ? " · error bars: 95% interval (bootstrap over interleaved block pairs and seeds; ≈ in a label: the interval contains 1.0, no detectable difference)"
                : "")
            + (chart.series.contains { $0.bars.contains { $0.value != nil && $0.interval == nil } }
                ? " · ? in a label: no interval (no per-block timings recorded)" : "")
            + (chart.hasPartial ? " · " + BarChart.partialNote : "")
        let top = FigureFrame.drawHeader(
            on: &canvas, title: title, subtitle: subtitle, legend: Legend(items: legendItems))
        let plotWidth = canvas.width - 72 - 24
        let plot = PlotRect(
            x: 72, y: top, width: plotWidth, height: canvas.height - top - chart.bottomMargin(plotWidth: plotWidth))
        chart.draw(on: &canvas, in: plot)
        return Figure(name: "speedup", title: title, description: subtitle, canvas: canvas)
    }

    private static func speedup(_ metric: String, _ model: String, _ method: String, _ data: FigureData) -> BarChart.Bar
    {
        let dense = data.stats("latency_ms", model, "dense")
        let cell = data.stats(metric, model, method)
        guard dense.mean != nil else {
            return BarChart.Bar(
                value: nil, error: nil, gap: "no dense", tooltip: "\(model), \(method): no dense latency")
        }
        let speedup =
            metric == "latency_sparse_ms"
            ? Speedup.sparse(data.grid, row: model, column: method, dense: "dense")
            : Speedup.masked(data.grid, row: model, column: method, dense: "dense")
        guard let speedup else {
            let word = data.gapWord(cell)
            return BarChart.Bar(value: nil, error: nil, gap: word, tooltip: "\(model), \(method): \(word)")
        }
        var tooltip =
            "\(model), \(method): \(NumberText.speedup(speedup.value, percent: data.speedupPercent)) (\(metric), n=\(speedup.n))"
        if let interval = speedup.interval {
            tooltip +=
                ", 95% interval \(NumberText.interval(interval.low, interval.high)): \(interval.verdict.rawValue)"
        } else if let missing = speedup.missingInterval {
            tooltip += ", \(missing.rawValue)"
        }
        if speedup.partial { tooltip += ", from incomplete cells" }
        if speedup.againstDenseModel {
            tooltip += ", against the dense model's latency_ms (other processes; no interval)"
        }
        var bar = BarChart.Bar(value: speedup.value, error: nil, gap: nil, tooltip: tooltip, partial: speedup.partial)
        bar.interval = speedup.interval.map { ($0.low, $0.high) }
        bar.mark =
            speedup.interval.map { $0.verdict == .noDifference ? " ≈" : "" } ?? (speedup.againstDenseModel ? "†" : " ?")
        return bar
    }
}
