import Foundation

/// The text `sparsegrid validate` prints: what the sweep will run, stage by stage.
extension ValidatedSweep {
    public var summary: String {
        let plan = self.plan
        var lines: [String] = []
        func row(_ label: String, _ text: String) {
            lines.append(label.padding(toLength: 10, withPad: " ", startingAt: 0) + text)
        }
        row("sweep", plan.name)
        if let description, let first = description.split(separator: "\n").first {
            row("", String(first))
        }
        row("engine", plan.engine)
        if let data = plan.context["data"], !data.isNull { row("data", Self.describeData(data)) }
        if let methods = plan.context["methods"]?.objectValue, !methods.isEmpty {
            let width = (methods.keys.map(\.count).max() ?? 0) + 2
            for (i, name) in self.methods.enumerated() {
                let text =
                    name.padding(toLength: width, withPad: " ", startingAt: 0) + Self.describeMethod(methods[name]!)
                row(i == 0 ? "methods" : "", text)
            }
        }
        if let measure = plan.context["measure"], !measure.isNull { row("measure", Self.describeMeasure(measure)) }
        var resources = "device \(plan.device); \(plan.retries) \(plan.retries == 1 ? "retry" : "retries") per task"
        if let deadAfter = plan.deadAfter { resources += "; workers dead after \(Self.seconds(deadAfter)) of silence" }
        if let exclusive = plan.exclusiveStages, !exclusive.isEmpty {
            resources += "; exclusive devices for \(exclusive.joined(separator: ", ")) (workers whose slots share none)"
        }
        row("resources", resources)
        lines.append("")

        let nameWidth = max((stages.map(\.name.count) + [5]).max()! + 2, 11)
        let total = taskCount
        let countWidth = String(total).count
        for stage in stages {
            var line = stage.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            line += String(repeating: " ", count: countWidth - String(stage.tasks).count)
            line += "\(stage.tasks) \(stage.tasks == 1 ? "task " : "tasks")"
            line += stage.axes.isEmpty ? "  (no grid)" : "  (\(stage.axes.joined(separator: " × ")))"
            if let after = stage.after { line += "  after \(after)" }
            if let timeout = plan.timeout(ofStage: stage.name) { line += "  timeout \(Self.seconds(timeout))" }
            lines.append(line)
        }
        lines.append(
            "total".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                + "\(total) \(total == 1 ? "task" : "tasks")")
        return lines.map { $0.trailingSpacesRemoved }.joined(separator: "\n")
    }

    /// "90 s", "2 h", "1.5 h": a duration as a spec would write it, readably.
    static func seconds(_ value: Double) -> String {
        let text = { (v: Double) in v == v.rounded() ? String(Int(v)) : String(format: "%g", v) }
        if value >= 3600, (value / 360).rounded() == value / 360 { return "\(text(value / 3600)) h" }
        if value >= 60, value.truncatingRemainder(dividingBy: 60) == 0 { return "\(text(value / 60)) min" }
        return "\(text(value)) s"
    }

    static func describeData(_ data: JSONValue) -> String {
        switch data["dataset"]?.stringValue {
        case "cifar10":
            return "CIFAR-10 from \(data["root"]?.displayText ?? "?")"
        case "synthetic":
            let n = { (key: String) in data[key]?.displayText ?? "?" }
            return "synthetic, \(n("train")) train / \(n("test")) test images (seed \(n("seed")))"
        default:
            return data.canonicalText
        }
    }

    static func describeMethod(_ method: JSONValue) -> String {
        let skip = method["skip"]?.arrayValue?.map(\.displayText) ?? []
        let dense = skip.isEmpty ? "" : "; left dense: \(skip.joined(separator: ", "))"
        switch method["kind"]?.stringValue {
        case "n_m":
            return "\(method["n"]?.displayText ?? "?"):\(method["m"]?.displayText ?? "?") (n_m)\(dense)"
        case "block":
            let shape = method["shape"]?.arrayValue?.map(\.displayText).joined(separator: "×") ?? "?"
            var text =
                "\(shape) blocks, \(method["select"]?.displayText ?? "?"), p \(method["probability"]?.displayText ?? "?")"
            if let start = method["probability_start"] { text += " (ramped from \(start.displayText))" }
            if let seed = method["seed"] { text += ", seed \(seed.displayText)" }
            return text + dense
        default:
            var rest = method.objectValue ?? [:]
            rest["name"] = nil
            return JSONValue.object(rest).canonicalText
        }
    }

    static func describeMeasure(_ measure: JSONValue) -> String {
        var parts: [String] = []
        if let latency = measure["latency"], !latency.isNull {
            let sizes = latency["batch_sizes"]?.arrayValue?.map(\.displayText).joined(separator: ", ") ?? "?"
            parts.append(
                "latency at batch sizes \(sizes) (\(latency["warmup"]?.displayText ?? "?") warm-up, \(latency["iterations"]?.displayText ?? "?") timed runs)"
            )
        }
        if measure["flops"]?.boolValue == true { parts.append("FLOPs") }
        if measure["memory"]?.boolValue == true { parts.append("memory") }
        return parts.isEmpty ? "accuracy only" : parts.joined(separator: "; ")
    }
}

extension String {
    fileprivate var trailingSpacesRemoved: String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
