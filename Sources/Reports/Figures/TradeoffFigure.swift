/// Figure 2: latency versus accuracy, one colour per model and one marker shape per method.
/// Filled markers are dense-kernel latencies; hollow ones, where present, real sparse kernels.
enum TradeoffFigure {
    struct Point {
        var model: String, method: String
        var x: Double, y: Double, xError: Double?, yError: Double?
        var hollow: Bool
        /// Sample size and gaps, for the tooltip: "n=2, 1 failed".
        var counts: String
    }

    static func make(_ data: FigureData) -> Figure {
        var canvas = SVGCanvas(width: 780, height: 500)
        let title = "Latency versus accuracy"
        var points: [Point] = []
        var incomplete: [String] = []
        var notShown: [(label: String, reason: String)] = []
        for model in data.models {
            for method in data.methods {
                let accuracy = data.stats("accuracy", model, method)
                let latency = data.stats("latency_ms", model, method)
                let sparse = data.stats("latency_sparse_ms", model, method)
                guard let y = accuracy.mean, let x = latency.mean else {
                    let word = [accuracy, latency].map(data.gapWord).first { !$0.isEmpty } ?? "missing"
                    notShown.append(("\(model) × \(method) (\(word))", word))
                    continue
                }
                let counts = (["n=\(accuracy.n)"] + accuracy.gaps.filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }).joined(
                    separator: ", ")
                points.append(
                    Point(
                        model: model, method: method, x: x, y: y, xError: latency.std, yError: accuracy.std,
                        hollow: false,
                        counts: counts))
                if !accuracy.isComplete || !latency.isComplete { incomplete.append("\(model) × \(method) (\(counts))") }
                if let xs = sparse.mean {
                    points.append(
                        Point(
                            model: model, method: method, x: xs, y: y, xError: sparse.std, yError: nil, hollow: true,
                            counts: "n=\(sparse.n)"))
                }
            }
        }
        let modelColor = Dictionary(uniqueKeysWithValues: data.models.enumerated().map { ($1, Palette.color($0)) })
        let methodMarker = Dictionary(uniqueKeysWithValues: data.methods.enumerated().map { ($1, Palette.marker($0)) })
        var items: [(swatch: Legend.Swatch, label: String)] = [(.heading, "model:")]
        items += data.models.map { (.marker(.circle, color: modelColor[$0]!, hollow: false), $0) }
        items.append((.heading, "method:"))
        items += data.methods.map { (.marker(methodMarker[$0]!, color: Palette.ink, hollow: false), $0) }
        if points.contains(where: \.hollow) {
            items.append((.marker(.circle, color: Palette.ink, hollow: true), "hollow: sparse kernels"))
        }

        var subtitle =
            "sweep \(data.sweep) · x: median latency (latency_ms, dense kernels; masked weights for sparse methods) · y: top-1 accuracy"
        if data.grid.seedsPerCell > 1 {
            subtitle += " · means over \(data.grid.seedsPerCell) seeds, bars ±1 sample std"
        }
        let top = FigureFrame.drawHeader(on: &canvas, title: title, subtitle: subtitle, legend: Legend(items: items))
        let footerLines = footer(
            notShown: notShown, incomplete: incomplete, width: Int((canvas.width - 40) / (10 * 0.62)))
        let plot = PlotRect(
            x: 72, y: top, width: canvas.width - 72 - 30,
            height: canvas.height - top - 48 - 13 * Double(footerLines.count))

        let xs = points.flatMap { [$0.x - ($0.xError ?? 0), $0.x + ($0.xError ?? 0)] }
        let ys = points.flatMap { [$0.y - ($0.yError ?? 0), $0.y + ($0.yError ?? 0)] }
        // Latency is a magnitude: its axis starts at zero. Accuracy stays zoomed to the points
        // (a 0–100 axis would hide the differences), never below 0 or above 100, and the axis
        // label says where it starts.
        let xScale = fromZero(xs), yScale = padded(ys, within: 0...100)
        let px = { (v: Double) in xScale.position(v, from: plot.x, to: plot.right) }
        let py = { (v: Double) in yScale.position(v, from: plot.bottom, to: plot.y) }
        for tick in xScale.ticks {
            canvas.line(px(tick), plot.y, px(tick), plot.bottom, stroke: Palette.grid)
            canvas.text(
                xScale.label(tick), x: px(tick), y: plot.bottom + 16, size: 11, anchor: .middle, fill: Palette.muted)
        }
        for tick in yScale.ticks {
            canvas.line(plot.x, py(tick), plot.right, py(tick), stroke: Palette.grid)
            canvas.text(yScale.label(tick), x: plot.x - 6, y: py(tick) + 4, size: 11, anchor: .end, fill: Palette.muted)
        }
        canvas.line(plot.x, plot.bottom, plot.right, plot.bottom, stroke: Palette.ink)
        canvas.line(plot.x, plot.y, plot.x, plot.bottom, stroke: Palette.ink)
        canvas.text(
            "latency (\(unitOr(data.unit("latency_ms"), "ms")))", x: plot.x + plot.width / 2, y: plot.bottom + 36,
            size: 12, anchor: .middle)
        canvas.text(
            "top-1 accuracy (\(unitOr(data.unit("accuracy"), "%")))"
                + (yScale.lower > 0 ? ", axis from \(yScale.label(yScale.lower))" : ""), x: plot.x - 44,
            y: plot.y + plot.height / 2,
            size: 12,
            anchor: .middle, rotate: -90)
        if points.isEmpty {
            canvas.text(
                "no task has both accuracy and latency yet", x: plot.x + plot.width / 2, y: plot.y + plot.height / 2,
                size: 13, anchor: .middle, fill: Palette.muted)
        }
        for p in points {
            let color = modelColor[p.model]!
            let (x, y) = (px(p.x), py(p.y))
            if let e = p.xError, e > 0 { canvas.line(px(max(0, p.x - e)), y, px(p.x + e), y, stroke: color, width: 1) }
            if let e = p.yError, e > 0 { canvas.line(x, py(p.y - e), x, py(p.y + e), stroke: color, width: 1) }
            let tooltip =
                "\(p.model), \(p.method): \(NumberText.fixed(p.y, 1))% at \(NumberText.fixed(p.x, 2)) ms"
                + (p.hollow ? " (sparse kernels)" : "") + " (\(p.counts))"
            Palette.draw(
                methodMarker[p.method]!, on: &canvas, x: x, y: y, size: 5.5, fill: p.hollow ? "#ffffff" : color,
                stroke: color, tooltip: tooltip)
        }
        for (i, line) in footerLines.enumerated() {
            canvas.text(line, x: 20, y: plot.bottom + 54 + Double(i) * 13, size: 10, fill: Palette.muted)
        }
        return Figure(name: "latency_vs_accuracy", title: title, description: subtitle, canvas: canvas)
    }

    /// Which cells have no point, and which points are means of incomplete cells: named when
    /// they fit in a few lines, counted by reason when they do not.
    private static func footer(notShown: [(label: String, reason: String)], incomplete: [String], width: Int)
        -> [String]
    {
        var parts: [String] = []
        if !notShown.isEmpty { parts.append("not shown: " + notShown.map(\.label).joined(separator: ", ")) }
        if !incomplete.isEmpty { parts.append("mean of finished seeds only: " + incomplete.joined(separator: ", ")) }
        let named = parts.flatMap { TextWrap.wrap($0, width: width) }
        if named.count <= 3 { return named }
        var counts: [String: Int] = [:]
        for cell in notShown { counts[cell.reason, default: 0] += 1 }
        let reasons = counts.keys.sorted().map { "\(counts[$0]!) \($0)" }.joined(separator: ", ")
        var summary: [String] = []
        if !notShown.isEmpty {
            summary.append("not shown: \(notShown.count) model × method cells without both values (\(reasons))")
        }
        if !incomplete.isEmpty {
            summary.append("\(incomplete.count) points are means of incomplete cells (hover for n)")
        }
        return summary.flatMap { TextWrap.wrap($0, width: width) }
    }

    private static func padded(_ values: [Double], within limits: ClosedRange<Double>) -> AxisScale {
        guard let lo = values.min(), let hi = values.max() else { return AxisScale(minValue: 0, maxValue: 1) }
        let pad = (hi - lo) * 0.08
        // Round ticks (1, 2 or 5 × 10^k) divide 0 and 100, so rounding outwards stays within them.
        return AxisScale(minValue: max(limits.lowerBound, lo - pad), maxValue: min(limits.upperBound, hi + pad))
    }

    private static func fromZero(_ values: [Double]) -> AxisScale {
        AxisScale(minValue: 0, maxValue: max(values.max() ?? 1, 0) * 1.08)
    }

    private static func unitOr(_ unit: String, _ fallback: String) -> String { unit.isEmpty ? fallback : unit }
}
