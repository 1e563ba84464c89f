/// Checks how stages relate: `after` names an earlier stage, each consuming task finds exactly
/// one producing task, and no key is both swept and fixed. Engine-independent.
enum StageGraph {
    static func check(_ spec: SweepSpec, _ diagnostics: inout Diagnostics) {
        // Sets and an index, not list searches: a generated spec can have thousands of keys or stages.
        let topKeys = Set(spec.grid.map(\.key))
        var stageIndex: [String: Int] = [:]
        for (index, stage) in spec.stages.enumerated() where stageIndex[stage.name] == nil {
            stageIndex[stage.name] = index
        }
        for (index, stage) in spec.stages.enumerated() {
            for axis in stage.grid where topKeys.contains(axis.key) {
                diagnostics.add(
                    at: axis.keyPosition, axis.path,
                    "`\(axis.key)` is already a key of the top-level `grid`; a stage's grid can only add keys, so remove it from one of the two."
                )
            }
            let stageKeys = Set(stage.grid.map(\.key))
            for param in stage.params where topKeys.contains(param.key) || stageKeys.contains(param.key) {
                let grid = topKeys.contains(param.key) ? "the top-level `grid`" : "`\(stage.path).grid`"
                diagnostics.add(
                    at: param.keyPosition, param.path,
                    "`\(param.key)` is also a key of \(grid); a parameter is either swept or fixed, so remove it from one of the two."
                )
            }
            if let after = stage.after { checkAfter(after, stage, index, stageIndex, spec, &diagnostics) }
        }
    }

    private static func checkAfter(
        _ after: StageRef, _ stage: StageSpec, _ index: Int, _ stageIndex: [String: Int],
        _ spec: SweepSpec, _ diagnostics: inout Diagnostics
    ) {
        guard let producerIndex = stageIndex[after.name] else {
            diagnostics.add(
                after.node, after.path, unknownStage(after, stage, earlier: spec.stages[..<index].map(\.name)))
            return
        }
        guard producerIndex < index else {
            let message =
                producerIndex == index
                ? "a stage cannot come after itself; name the stage whose checkpoint `\(stage.name)` starts from."
                : "`\(after.name)` is written below `\(stage.name)`; a stage can only come after an earlier one, so move `\(after.name)` above `\(stage.name)`."
            diagnostics.add(after.node, after.path, message)
            return
        }
        let producer = spec.stages[producerIndex]
        let consumerKeys = Set(stage.grid.map(\.key))
        let missing = producer.grid.filter { !consumerKeys.contains($0.key) }
        if !missing.isEmpty {
            let keys = Suggestions.list(missing.map { "`\($0.key)`" })
            let matches =
                TaskCount.product(missing.map(\.values.count)).map(\.grouped) ?? "more than \(Int.max.grouped)"
            diagnostics.add(
                after.node, after.path,
                "`\(stage.name)` comes after `\(producer.name)`, whose own grid varies \(keys), so each \(stage.name) task would match \(matches) \(producer.name) tasks; add \(keys) to `\(stage.path).grid` to say which one each consumes."
            )
        }
        for axis in stage.grid {
            guard let produced = producer.grid.first(where: { $0.key == axis.key }) else { continue }
            // Both grids can hold thousands of values: a hash lookup, and the list shown once.
            let available = Set(produced.values.map(\.value))
            var shown: String?
            for v in axis.values where !available.contains(v.value) {
                let list =
                    shown
                    ?? Suggestions.sample(
                        produced.values.prefix(13).map(\.value.displayText), total: produced.values.count)
                shown = list
                diagnostics.add(
                    v.node, v.path,
                    "no `\(producer.name)` task has \(axis.key) \(v.value.displayText), so this one would have no input; use one of \(producer.path).grid.\(axis.key)'s values (\(list)) or add it there."
                )
            }
        }
    }

    private static func unknownStage(_ after: StageRef, _ stage: StageSpec, earlier: [String]) -> String {
        earlier.isEmpty
            ? "no stage is named `\(after.name)`, and `\(stage.name)` is the first stage, so it cannot come after another; remove `after` or move the stage below the one it consumes."
            : "no stage is named `\(after.name)`;"
                + Suggestions.tail(
                    for: after.name, in: earlier, label: "Earlier stages", list: Suggestions.sample(earlier))
    }
}
