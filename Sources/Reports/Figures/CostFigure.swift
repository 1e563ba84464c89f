/// Figure 3: compute and memory cost per model and method, two panels side by side.
enum CostFigure {
    static func make(_ data: FigureData) -> Figure {
        var canvas = SVGCanvas(width: 940, height: 480)
        let title = "MACs and peak inference memory per model and method"
        // One metric per panel for every bar: effective MACs where the engine reports them, the
        // dense MACs otherwise (and the labels say which). Memory is peak_mib, the measured
        // counterpart of the study's Table II "memory" (the memory needed to run the model, not
        // the weights' storage size, which Table II of this report lists separately).
        let macs = data.firstReported(["gmacs_effective", "gmacs"])
        let memory = "peak_mib"
        let macsAxis =
            "\(macs == "gmacs_effective" ? "effective MACs" : "MACs") per image (\(unitOr(data.unit(macs), "GMAC")))"
        let charts = [
            (macs, "Compute", macsAxis, 3),
            (memory, "Peak inference memory", "peak memory (\(unitOr(data.unit(memory), "MiB")))", 1),
        ]
        .map { metric, panelTitle, axis, decimals in
            BarChart(
                categories: data.models,
                series: data.methods.map { method in
                    BarChart.Series(
                        name: method, color: data.colors[method]!,
                        bars: data.models.map { data.bar(metric, $0, method, decimals: decimals) })
                },
                yLabel: axis, xLabel: "model", panelTitle: panelTitle, referenceLine: nil, valueText: NumberText.compact
            )
        }
        let legend = Legend(items: data.methods.map { (.bar(color: data.colors[$0]!, pale: false), $0) })
        let macsWhat = macs == "gmacs_effective" ? "MACs of nonzero weights" : "dense MACs"
        let memoryWhat =
            "peak inference memory, what the study's \"memory\" is compared with (GPU: max_memory_allocated; CPU: peak RSS increase; not the weights' storage size)"
        let subtitle =
            "sweep \(data.sweep) · left: \(macsWhat) per image (\(macs); 1 MAC = 2 FLOPs) · right: \(memoryWhat) (\(memory)) · \(data.spreadNote)"
            + (charts.contains(where: \.hasPartial) ? " · " + BarChart.partialNote : "")
        let top = FigureFrame.drawHeader(on: &canvas, title: title, subtitle: subtitle, legend: legend) + 14
        let panelWidth = (canvas.width - 40) / 2
        for (i, chart) in charts.enumerated() {
            let left = 20 + panelWidth * Double(i) + 62
            let width = panelWidth - 62 - 24
            let plot = PlotRect(
                x: left, y: top, width: width, height: canvas.height - top - chart.bottomMargin(plotWidth: width))
            chart.draw(on: &canvas, in: plot)
        }
        return Figure(name: "macs_memory", title: title, description: subtitle, canvas: canvas)
    }

    private static func unitOr(_ unit: String, _ fallback: String) -> String { unit.isEmpty ? fallback : unit }
}
