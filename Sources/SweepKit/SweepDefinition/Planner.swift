/// Expands a checked spec into tasks: each stage's cells are the product of the top-level grid
/// and the stage's grid (keys in the order written, the first varying slowest), and a stage
/// with `after: X` consumes the X task whose grid values equal its own for X's keys.
/// `TaskCount` computes how many tasks this makes without making them; keep the two in step.
enum Planner {
    /// `expand: false`: the plan without its tasks (`forEachTask` makes them).
    static func plan(_ spec: SweepSpec, specText: String, expand: Bool = true) -> SweepPlan {
        var tasks: [PlannedTask] = []
        if expand {
            tasks.reserveCapacity(TaskCount(spec).total ?? 0)
            forEachTask(spec) { tasks.append($0) }
        }
        let context: JSONValue = [
            "data": spec.data ?? .null, "methods": .object(methods(spec)), "measure": spec.measure ?? .null,
        ]
        var timeouts: [String: Double] = [:]
        for stage in spec.stages { if let t = stage.timeout { timeouts[stage.name] = t } }
        return SweepPlan(
            name: spec.name, engine: spec.engine, context: context, tasks: tasks, retries: spec.retries,
            device: spec.device, reports: spec.reports ?? defaultReports, specText: specText,
            stageTimeouts: timeouts.isEmpty ? nil : timeouts, deadAfter: spec.deadAfter,
            exclusiveStages: spec.exclusiveStages, isolatedStages: spec.isolatedStages)
    }

    /// Method name → definition (a later definition of a name wins).
    static func methods(_ spec: SweepSpec) -> [String: JSONValue] {
        var methods: [String: JSONValue] = [:]
        for m in spec.methods { methods[m.name] = m.definition }
        return methods
    }

    /// Calls `body` with each task in plan order (stage by stage, cells first axis slowest),
    /// holding only the ids of the stages some `after:` consumes, never the list of tasks.
    ///
    /// Each id is `TaskIdentity.id` of the task; the identity's canonical text is assembled here
    /// from pieces written once per sweep, stage and grid value (the keys of an object sorted as
    /// `canonicalText` sorts them), not by writing a `JSONValue` per task (bench/RESULTS.md,
    /// "A million tasks", has the before and after). `PlannerIdentityTests` checks the tasks
    /// against a plain expansion with `TaskIdentity.id` on every shipped sweep and on specs
    /// built to catch a slip.
    static func forEachTask(_ spec: SweepSpec, _ body: (PlannedTask) throws -> Void) rethrows {
        let methods = methods(spec)
        var methodTexts: [String: [UInt8]] = [:]
        for (name, definition) in methods { methodTexts[name] = Array(definition.canonicalText.utf8) }
        let null = Array("null".utf8)
        let consumed = Set(spec.stages.compactMap { $0.after?.name })

        /// Per stage some stage consumes: the canonical text of a task's values for that stage's
        /// grid keys → its id.
        var producers: [String: [String: String]] = [:]
        var stageByName: [String: StageSpec] = [:]
        for stage in spec.stages where stageByName[stage.name] == nil { stageByName[stage.name] = stage }
        // The identity's keys in canonical (sorted) order: data, engine, inputs, measure, method,
        // params, stage, sweep. The fixed parts, per sweep:
        let head =
            Array(#"{"data":"#.utf8) + text(spec.data ?? .null) + Array(#","engine":"#.utf8)
            + text(.string(spec.engine)) + Array(#","inputs":"#.utf8)
        let afterInputs = Array(#","measure":"#.utf8) + text(spec.measure ?? .null) + Array(#","method":"#.utf8)
        let afterMethod = Array(#","params":"#.utf8)
        let noInputs = Array("{}".utf8)
        var buffer: [UInt8] = []
        for (index, stage) in spec.stages.enumerated() {
            let axes = spec.grid + stage.grid
            let fixed = Dictionary(stage.params.map { ($0.key, $0.node.json) }, uniquingKeysWith: { a, _ in a })
            // Where each parameter's value comes from: the last axis with that key, else the fixed params.
            var axisOf: [String: Int] = [:]
            for (i, axis) in axes.enumerated() { axisOf[axis.key] = i }
            let keys = Set(fixed.keys).union(axisOf.keys).sorted()
            let keyTexts = keys.enumerated().map { i, key in
                Array(((i == 0 ? "" : ",") + JSONValue.quoted(key) + ":").utf8)
            }
            let fixedTexts = keys.map { fixed[$0].map(text) ?? null }
            let keyAxes = keys.map { axisOf[$0] }
            let valueTexts = axes.map { $0.values.map { text($0.value) } }
            let tail =
                Array(#","stage":"#.utf8) + text(.string(stage.name)) + Array(#","sweep":"#.utf8)
                + text(.string(spec.name)) + [UInt8(ascii: "}")]
            // The producing stage and the keys a task shares with its producer, found once per stage.
            let producer = stage.after.flatMap { stageByName[$0.name] }
            let producerKeys = producer.map { Array(Set((spec.grid + $0.grid).map(\.key)).sorted()) } ?? []
            let inputsHead = producer.map { Array(("{" + JSONValue.quoted($0.name) + ":").utf8) } ?? []
            let ownKeys = Array(Set(axes.map(\.key)).sorted())
            let isConsumed = consumed.contains(stage.name)
            var byCell: [String: String] = [:]
            let methodAxis = axisOf["method"]
            let fixedMethod = fixed["method"]?.stringValue

            /// The canonical text of the current cell's values for `keys` (null where absent).
            func cellKey(_ keys: [String], _ cell: [Int]) -> String {
                var out: [UInt8] = []
                for key in keys {
                    if let a = axisOf[key] {
                        out += valueTexts[a][cell[a]]
                    } else {
                        out += fixed[key].map(text) ?? null
                    }
                    out.append(1)  // never in canonical JSON, which escapes control characters
                }
                return String(decoding: out, as: UTF8.self)
            }

            if axes.contains(where: { $0.values.isEmpty }) { continue }
            var cell = [Int](repeating: 0, count: axes.count)
            while true {
                var params = fixed
                for (a, axis) in axes.enumerated() { params[axis.key] = axis.values[cell[a]].value }
                var inputs: [String: String] = [:]
                buffer.removeAll(keepingCapacity: true)
                buffer += head
                if let producer, let id = producers[producer.name]?[cellKey(producerKeys, cell)] {
                    // StageGraph has checked that exactly one producer matches.
                    inputs[producer.name] = id
                    buffer += inputsHead
                    buffer += text(.string(id))
                    buffer.append(UInt8(ascii: "}"))
                } else {
                    buffer += noInputs
                }
                buffer += afterInputs
                let methodName = methodAxis.map { axes[$0].values[cell[$0]].value.stringValue } ?? fixedMethod
                buffer += methodName.flatMap { methodTexts[$0] } ?? null
                buffer += afterMethod
                buffer.append(UInt8(ascii: "{"))
                for k in keys.indices {
                    buffer += keyTexts[k]
                    if let a = keyAxes[k] { buffer += valueTexts[a][cell[a]] } else { buffer += fixedTexts[k] }
                }
                buffer.append(UInt8(ascii: "}"))
                buffer += tail
                let id = TaskIdentity.id(canonical: buffer)
                if isConsumed { byCell[cellKey(ownKeys, cell)] = id }
                try body(
                    PlannedTask(
                        id: id, stage: stage.name, params: params, inputs: inputs,
                        priority: spec.stages.count - index))
                // Next cell: the last axis varies fastest.
                var a = axes.count - 1
                while a >= 0 {
                    cell[a] += 1
                    if cell[a] < axes[a].values.count { break }
                    cell[a] = 0
                    a -= 1
                }
                if a < 0 { break }
            }
            if isConsumed { producers[stage.name] = byCell }
        }
    }

    private static func text(_ value: JSONValue) -> [UInt8] { Array(value.canonicalText.utf8) }

    /// The tables of the study, used when a spec has no `report:`.
    static let defaultReports = [
        ReportSpec(
            title: "Accuracy and latency", rows: "model", columns: "method", values: ["accuracy", "latency_ms"]),
        ReportSpec(
            title: "FLOPs and memory", rows: "model", columns: "method", values: ["gmacs", "weight_mib", "peak_mib"]),
    ]
}
