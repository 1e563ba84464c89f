/// Expands a checked spec into tasks: each stage's cells are the product of the top-level grid
/// and the stage's grid (keys in the order written, the first varying slowest), and a stage
/// with `after: X` consumes the X task whose grid values equal its own for X's keys.
/// `TaskCount` computes how many tasks this makes without making them; keep the two in step.
enum Planner {
    static func plan(_ spec: SweepSpec, specText: String) -> SweepPlan {
        let data = spec.data ?? .null
        let measure = spec.measure ?? .null
        var methods: [String: JSONValue] = [:]
        for m in spec.methods { methods[m.name] = m.definition }

        /// Per stage: the canonical text of a task's values for that stage's grid keys → its id.
        var producers: [String: [String: String]] = [:]
        var tasks: [PlannedTask] = []
        var stageByName: [String: StageSpec] = [:]
        for stage in spec.stages where stageByName[stage.name] == nil { stageByName[stage.name] = stage }
        for (index, stage) in spec.stages.enumerated() {
            let axes = spec.grid + stage.grid
            let fixed = Dictionary(stage.params.map { ($0.key, $0.node.json) }, uniquingKeysWith: { a, _ in a })
            var byCell: [String: String] = [:]
            // The producing stage and the keys a task shares with its producer, found once per stage.
            let producer = stage.after.flatMap { stageByName[$0.name] }
            let producerKeys = producer.map { (spec.grid + $0.grid).map(\.key) } ?? []
            for cell in product(axes) {
                var params = fixed
                for (key, value) in cell { params[key] = value }
                var inputs: [String: String] = [:]
                if let producer {
                    // StageGraph has checked that exactly one producer matches.
                    if let id = producers[producer.name]?[cellKey(params, producerKeys)] { inputs[producer.name] = id }
                }
                let method = params["method"]?.stringValue.flatMap { methods[$0] } ?? .null
                let id = TaskIdentity.id(
                    sweep: spec.name, stage: stage.name, params: params, inputs: inputs,
                    engine: spec.engine, data: data, method: method, measure: measure)
                byCell[cellKey(params, axes.map(\.key))] = id
                tasks.append(
                    PlannedTask(
                        id: id, stage: stage.name, params: params, inputs: inputs,
                        priority: spec.stages.count - index))
            }
            producers[stage.name] = byCell
        }
        let context: JSONValue = ["data": data, "methods": .object(methods), "measure": measure]
        var timeouts: [String: Double] = [:]
        for stage in spec.stages { if let t = stage.timeout { timeouts[stage.name] = t } }
        return SweepPlan(
            name: spec.name, engine: spec.engine, context: context, tasks: tasks, retries: spec.retries,
            device: spec.device, reports: spec.reports ?? defaultReports, specText: specText,
            stageTimeouts: timeouts.isEmpty ? nil : timeouts, deadAfter: spec.deadAfter,
            exclusiveStages: spec.exclusiveStages, isolatedStages: spec.isolatedStages)
    }

    /// The tables of the study, used when a spec has no `report:`.
    static let defaultReports = [
        ReportSpec(
            title: "Accuracy and latency", rows: "model", columns: "method", values: ["accuracy", "latency_ms"]),
        ReportSpec(
            title: "FLOPs and memory", rows: "model", columns: "method", values: ["gmacs", "weight_mib", "peak_mib"]),
    ]

    /// Every combination of the axes' values, first axis varying slowest.
    static func product(_ axes: [GridAxis]) -> [[(String, JSONValue)]] {
        var cells: [[(String, JSONValue)]] = [[]]
        for axis in axes {
            cells = cells.flatMap { cell in axis.values.map { cell + [(axis.key, $0.value)] } }
        }
        return cells
    }

    private static func cellKey(_ params: [String: JSONValue], _ keys: [String]) -> String {
        var object: [String: JSONValue] = [:]
        for key in keys { object[key] = params[key] ?? .null }
        return JSONValue.object(object).canonicalText
    }
}
