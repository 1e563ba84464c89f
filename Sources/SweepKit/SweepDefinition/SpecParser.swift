/// Reads the fixed schema of a sweep spec (docs/spec-reference.md) from the node tree. Engine-specific
/// rules (which models, which parameters) are checked afterwards by `SparsityRules`.
extension SpecReader {
    static let topKeys = [
        "name", "description", "engine", "data", "grid", "stages", "methods", "measure",
        "resources", "retries", "dead_after", "report",
    ]

    /// The longest a stage's `timeout` may be: 30 days.
    static let maxStageTimeout = 30 * 86_400.0
    /// The longest a sweep's `dead_after` may be: a day (the coordinator's own range).
    static let maxDeadAfter = 86_400.0

    /// The spec, or nil when the document is not even a mapping. Parts with problems are left
    /// out (and reported) so the remaining checks still run. `rangesFor` gives the table of
    /// what the named engine accepts; it is asked only for the sparsity engine, once its name is read.
    mutating func sweep(_ root: SpecNode, rangesFor: (String) -> EngineRanges) -> SweepSpec? {
        guard root.entries != nil else {
            diagnostics.add(
                root, "",
                "a sweep spec is a YAML mapping with keys such as `name`, `data`, `grid` and `stages`, but this file holds \(root.found); see sweeps/smoke.yaml for an example."
            )
            return nil
        }
        guard let top = fields(root, "", allowed: Self.topKeys, owner: "a sweep spec") else { return nil }

        var name = ""
        if let node = require(top, "name", "every sweep needs a name, e.g. `name: my-sweep`.") {
            name = self.name(node, "name", what: "sweep name", example: "`name: my-sweep`") ?? ""
        }
        var engine = KnownEngines.sparsity
        if let node = top["engine"] {
            // YAML reads a bare `null` as "no value"; here it can only mean the built-in null engine.
            if node.isNull, node.text?.lowercased() == "null" {
                engine = KnownEngines.null
            } else {
                engine = self.name(node, "engine", what: "engine name", example: "`engine: sparsity`") ?? engine
            }
        }
        if engine == KnownEngines.sparsity { ranges = rangesFor(engine) }
        let description = top["description"].flatMap {
            string($0, "description", example: "`description: what this sweep asks`")
        }

        let data = top["data"].flatMap { self.data($0, "data") }
        if engine == KnownEngines.sparsity, top["data"] == nil {
            diagnostics.add(
                root, "data",
                "missing; the sparsity engine needs a dataset, e.g. `data: {dataset: synthetic, train: 1024, test: 512}` or `data: {dataset: cifar10, root: ~/data/cifar-10-batches-py}`."
            )
        }
        let grid = top["grid"].map { self.grid($0, "grid") } ?? []
        let methods = top["methods"].map { self.methods($0, "methods", engine: engine) } ?? []
        let declaredMethods = top["methods"]?.entries?.map(\.key) ?? []
        var stages: [StageSpec] = []
        if let node = require(
            top, "stages", "a sweep needs at least one stage, e.g. `stages: {train: {params: {epochs: 1}}}`.")
        {
            stages = self.stages(node, "stages")
        }
        let measure = top["measure"].flatMap { self.measure($0, "measure") }

        var device = "any"
        var exclusiveStages: [String]? = nil
        var isolatedStages: [String]? = nil
        if let node = top["resources"],
            let resources = fields(
                node, "resources", allowed: ["device", "exclusive", "isolate"], owner: "`resources`")
        {
            if let d = resources["device"] {
                device = choice(d, resources.path("device"), among: ["gpu", "cpu", "any"]) ?? device
            }
            if let e = resources["exclusive"] {
                exclusiveStages = exclusive(e, resources.path("exclusive"), stages: stages)
            }
            if let i = resources["isolate"] {
                isolatedStages = exclusive(
                    i, resources.path("isolate"), stages: stages,
                    example: "`isolate: true` (every task runs in an engine process of its own) or `isolate: [measure]`"
                )
            }
        }
        var retries = 2
        if let node = top["retries"] {
            retries = int(node, "retries", min: 0, example: "`retries: 2`") ?? retries
        }
        var deadAfter: Double?
        if let node = top["dead_after"] {
            deadAfter = number(
                node, "dead_after", rule: "greater than 0 and at most 86400 (a day)",
                example: "`dead_after: 300` (seconds)"
            ) { $0 > 0 && $0 <= Self.maxDeadAfter }
        }
        var reports: [ReportSpec]?
        var reportAxes: [ReportAxis] = []
        var reportMetrics: [ReportAxis] = []
        if let node = top["report"] {
            reports = self.reports(node, "report", axes: &reportAxes, metrics: &reportMetrics)
        }
        return SweepSpec(
            name: name, engine: engine, description: description, data: data, grid: grid,
            gridPosition: top.keyPosition("grid"), stages: stages, methods: methods,
            declaredMethods: declaredMethods,
            measure: measure, device: device, exclusiveStages: exclusiveStages, isolatedStages: isolatedStages,
            retries: retries,
            deadAfter: deadAfter, reports: reports,
            reportAxes: reportAxes, reportMetrics: reportMetrics)
    }

    /// `resources.exclusive`: `true` (every stage), `false` (none), or a list of stage names.
    /// The stages whose tasks need a device no other task shares; nil for none.
    /// (Also `resources.isolate`, with its own `example`.)
    mutating func exclusive(
        _ node: SpecNode, _ path: String, stages: [StageSpec],
        example: String =
            "`exclusive: true` (every stage runs on a device it does not share) or `exclusive: [finetune]`"
    ) -> [String]? {
        let names = stages.map(\.name)
        if case .bool(let b) = node.kind { return b && !names.isEmpty ? names : nil }
        guard node.items != nil else {
            diagnostics.add(
                node, path,
                "expected true, false or a list of stage names, found \(node.found); e.g. \(example).")
            return nil
        }
        let listed = list(node, path, allowSingle: false, what: "stage names") { reader, item, itemPath -> String? in
            guard case .string(let s, _) = item.kind, !s.isEmpty else {
                reader.diagnostics.add(item, itemPath, "expected a stage name, found \(item.found).")
                return nil
            }
            // Checked against the stages only when they were read (their own problems are reported).
            if !names.isEmpty, !names.contains(s) {
                reader.diagnostics.add(
                    item, itemPath,
                    "`\(s)` is not a stage of this sweep;"
                        + Suggestions.tail(for: s, in: names, label: "Stages", list: names.joined(separator: ", ")))
                return nil
            }
            return s
        }
        guard let listed else { return nil }
        // In stage order, whatever the order written.
        return names.filter { listed.contains($0) }
    }

    /// One of a few fixed words.
    mutating func choice(_ node: SpecNode, _ path: String, among options: [String]) -> String? {
        if case .string(let s, _) = node.kind, options.contains(s) { return s }
        var message = "expected \(Suggestions.list(options.map { "`\($0)`" })), found \(node.found)"
        if case .string(let s, _) = node.kind, let hint = Suggestions.closest(to: s, in: options) {
            message += "; did you mean `\(hint)`?"
        } else {
            message += "."
        }
        diagnostics.add(node, path, message)
        return nil
    }

    // MARK: grid

    /// An ordered mapping key → values. A single scalar stands for a list of one.
    mutating func grid(_ node: SpecNode, _ path: String) -> [GridAxis] {
        guard let entries = node.entries else {
            diagnostics.add(
                node, path,
                "expected a mapping of keys to lists of values, e.g. `{model: [resnet18], seed: [0, 1]}`; found \(node.found)."
            )
            return []
        }
        return entries.compactMap { entry in
            let axisPath = KeyPath.child(path, entry.key)
            guard let values = gridValues(entry.value, axisPath) else { return nil }
            return GridAxis(key: entry.key, keyPosition: entry.keyPosition, path: axisPath, values: values)
        }
    }

    private mutating func gridValues(_ node: SpecNode, _ path: String) -> [GridValue]? {
        let items: [(SpecNode, String)]
        switch node.kind {
        case .list(let list):
            guard !list.isEmpty else {
                diagnostics.add(
                    node, path,
                    "is an empty list, which would make no tasks; give at least one value or remove the key.")
                return nil
            }
            items = list.enumerated().map { ($1, KeyPath.index(path, $0)) }
        case .map:
            diagnostics.add(node, path, "expected a list of values, e.g. `[0, 1, 2]`, found a mapping.")
            return nil
        default:
            items = [(node, path)]
        }
        var values: [GridValue] = []
        var firstIndex: [JSONValue: Int] = [:]  // a hash lookup: grids can hold thousands of values
        for (item, itemPath) in items {
            switch item.kind {
            case .null, .list, .map:
                diagnostics.add(item, itemPath, "a grid value must be a name, number or boolean, found \(item.found).")
                continue
            default:
                break
            }
            let json = item.json
            if let index = firstIndex[json] {
                let first = values[index]
                let line = first.node.position.map { " (first at line \($0.line))" } ?? ""
                diagnostics.add(item, itemPath, "\(item.json.displayText) appears twice\(line); list each value once.")
                continue
            }
            firstIndex[json] = values.count
            values.append(GridValue(value: json, node: item, path: itemPath))
        }
        return values
    }

    // MARK: stages

    /// The stages in the order written; each stage's params pass through as written.
    mutating func stages(_ node: SpecNode, _ path: String) -> [StageSpec] {
        guard let entries = node.entries else {
            diagnostics.add(
                node, path,
                "expected a mapping of stage names to stages, e.g. `{train: {params: {epochs: 1}}}`; found \(node.found)."
            )
            return []
        }
        guard !entries.isEmpty else {
            diagnostics.add(node, path, "has no stages; add at least one, e.g. `train: {params: {epochs: 1}}`.")
            return []
        }
        var stages: [StageSpec] = []
        for entry in entries {
            let stagePath = KeyPath.child(path, entry.key)
            guard Self.isName(entry.key), !entry.key.contains(".") else {
                diagnostics.add(
                    at: entry.keyPosition, stagePath,
                    "\"\(entry.key)\" is not a valid stage name; use only letters, digits, `_` and `-`, e.g. `finetune`."
                )
                continue
            }
            var stage = StageSpec(
                name: entry.key, position: entry.keyPosition, path: stagePath, after: nil,
                grid: [], params: [])
            // `train:` with nothing under it is a stage with no grid and default params.
            if !entry.value.isNull,
                let body = fields(
                    entry.value, stagePath, allowed: ["after", "grid", "params", "timeout"],
                    owner: "a stage")
            {
                if let after = body["after"],
                    let target = name(after, body.path("after"), what: "stage name", example: "`after: train`")
                {
                    stage.after = StageRef(name: target, node: after, path: body.path("after"))
                }
                if let grid = body["grid"] {
                    stage.grid = self.grid(grid, body.path("grid"))
                    stage.gridPosition = body.keyPosition("grid")
                }
                if let params = body["params"] {
                    if let paramEntries = params.entries {
                        stage.params = paramEntries.map {
                            StageParam(
                                key: $0.key, keyPosition: $0.keyPosition, node: $0.value,
                                path: KeyPath.child(body.path("params"), $0.key))
                        }
                    } else {
                        diagnostics.add(
                            params, body.path("params"),
                            "expected a mapping of parameter names to values, e.g. `{epochs: 3, lr: 0.05}`; found \(params.found)."
                        )
                    }
                }
                if let timeout = body["timeout"] {
                    stage.timeout = number(
                        timeout, body.path("timeout"),
                        rule: "of seconds greater than 0 and at most 2592000 (30 days)",
                        example: "`timeout: 3600` (an hour)"
                    ) { $0 > 0 && $0 <= Self.maxStageTimeout }
                }
            }
            stages.append(stage)
        }
        return stages
    }

    // MARK: report

    mutating func reports(
        _ node: SpecNode, _ path: String,
        axes: inout [ReportAxis], metrics: inout [ReportAxis]
    ) -> [ReportSpec]? {
        guard let items = node.items else {
            diagnostics.add(
                node, path,
                "expected a list of tables, e.g. `- {title: Accuracy, rows: model, columns: method, values: [accuracy]}`; found \(node.found)."
            )
            return nil
        }
        var reports: [ReportSpec] = []
        for (i, item) in items.enumerated() {
            let itemPath = KeyPath.index(path, i)
            guard
                let table = fields(
                    item, itemPath, allowed: ["title", "rows", "columns", "values", "speedup_percent"],
                    owner: "a report table")
            else { continue }
            var title: String?, rows: String?, columns: String?, values: [String]?
            if let n = require(table, "title", "give the table a title, e.g. `title: Accuracy and latency`.") {
                title = string(n, table.path("title"), example: "`title: Accuracy and latency`")
            }
            if let n = require(table, "rows", "say which grid key makes the rows, e.g. `rows: model`.") {
                rows = string(n, table.path("rows"), example: "`rows: model`")
                if let rows { axes.append(ReportAxis(key: rows, node: n, path: table.path("rows"))) }
            }
            if let n = require(table, "columns", "say which grid key makes the columns, e.g. `columns: method`.") {
                columns = string(n, table.path("columns"), example: "`columns: method`")
                if let columns { axes.append(ReportAxis(key: columns, node: n, path: table.path("columns"))) }
            }
            if let n = require(table, "values", "list the metrics to show, e.g. `values: [accuracy, latency_ms]`.") {
                values = list(n, table.path("values"), allowSingle: true, what: "metric names") { reader, node, p in
                    reader.string(node, p, example: "`accuracy`")
                }
                let written =
                    n.items.map { $0.enumerated().map { ($1, KeyPath.index(table.path("values"), $0)) } }
                    ?? [(n, table.path("values"))]
                for (item, p) in written {
                    if case .string(let s, _) = item.kind { metrics.append(ReportAxis(key: s, node: item, path: p)) }
                }
            }
            var speedupPercent = ReportSpec.SpeedupPercent.gain
            if let n = table["speedup_percent"] {
                speedupPercent = ReportRules.speedupPercent(n, table.path("speedup_percent"), &diagnostics) ?? .gain
            }
            if let title, let rows, let columns, let values {
                reports.append(
                    ReportSpec(
                        title: title, rows: rows, columns: columns, values: values, speedupPercent: speedupPercent))
            }
        }
        return reports
    }
}
