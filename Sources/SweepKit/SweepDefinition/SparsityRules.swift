/// Checks that only the sparsity engine needs: known models, defined methods, known stage
/// parameters of the right types. Other engines get their grid and params unchecked.
enum SparsityRules {
    static func check(_ spec: SweepSpec, _ reader: inout SpecReader) {
        var allKnown = true
        for axis in spec.grid { allKnown = checkAxis(axis, spec, &reader) && allKnown }
        for stage in spec.stages {
            let gridKeys = Set(spec.grid.map(\.key) + stage.grid.map(\.key))
            for axis in stage.grid { allKnown = checkAxis(axis, spec, &reader) && allKnown }
            let params = paramNames(reader.ranges)
            for param in stage.params {
                guard let range = reader.ranges.stageParams[param.key] else {
                    // A key that is also a grid key is reported by StageGraph, as swept and fixed at once.
                    if gridKeys.contains(param.key) { continue }
                    reader.diagnostics.add(
                        at: param.keyPosition, param.path,
                        "`\(param.key)` is not a parameter of the sparsity engine;"
                            + Suggestions.tail(
                                for: param.key, in: params, label: "Parameters",
                                list: params.joined(separator: ", ")))
                    continue
                }
                reader.ranged(param.node, param.path, range, key: param.key)
            }
            // After a mistyped grid key (`modle`) the missing model is that typo, already reported.
            if allKnown, !gridKeys.contains("model") {
                reader.diagnostics.add(
                    at: stage.position, stage.path,
                    "has no `model`; the sparsity engine needs one per task: add `model: [resnet18, …]` to the top-level `grid` or to this stage's `grid`."
                )
            }
        }
    }

    /// False when the key itself is unknown.
    private static func checkAxis(_ axis: GridAxis, _ spec: SweepSpec, _ reader: inout SpecReader) -> Bool {
        switch axis.key {
        case "model":
            for v in axis.values { checkModel(v, &reader) }
        case "seed":
            let range = reader.ranges.seed
            for v in axis.values { reader.rangedInt(v.node, v.path, range, key: "seed") }
        case "method":
            let declared = Set(spec.declaredMethods)
            for v in axis.values { checkMethod(v, spec, declared, &reader) }
        default:
            if let range = reader.ranges.stageParams[axis.key] {
                for v in axis.values { reader.ranged(v.node, v.path, range, key: axis.key) }
            } else {
                let params = paramNames(reader.ranges)
                reader.diagnostics.add(
                    at: axis.keyPosition, axis.path,
                    "`\(axis.key)` is not a key of `grid`;"
                        + Suggestions.tail(
                            for: axis.key, in: KnownEngines.sparsityAxes + params,
                            label: "Grid keys of the sparsity engine",
                            list: "model, seed, method and the stage parameters (\(params.joined(separator: ", ")))"
                        ))
                return false
            }
        }
        return true
    }

    private static func checkModel(_ v: GridValue, _ reader: inout SpecReader) {
        let models = KnownEngines.sparsityModels.joined(separator: ", ")
        guard case .string(let name, _) = v.node.kind else {
            reader.diagnostics.add(v.node, v.path, "expected a model name, found \(v.node.found); models: \(models).")
            return
        }
        guard !KnownEngines.sparsityModels.contains(name) else { return }
        reader.diagnostics.add(
            v.node, v.path,
            "`\(name)` is not a model of the sparsity engine;"
                + Suggestions.tail(for: name, in: KnownEngines.sparsityModels, label: "Models", list: models))
    }

    private static func checkMethod(
        _ v: GridValue, _ spec: SweepSpec, _ declared: Set<String>,
        _ reader: inout SpecReader
    ) {
        guard case .string(let name, _) = v.node.kind else {
            reader.diagnostics.add(
                v.node, v.path, "expected the name of a method defined under `methods`, found \(v.node.found).")
            return
        }
        guard !declared.contains(name) else { return }
        if spec.declaredMethods.isEmpty {
            reader.diagnostics.add(
                v.node, v.path,
                "`\(name)` is not defined: the spec has no `methods`; define it there, e.g. `methods: {nm_2_4: {kind: n_m, n: 2, m: 4, skip: [first, last]}}`."
            )
        } else {
            reader.diagnostics.add(
                v.node, v.path,
                "`\(name)` is not defined under `methods`;"
                    + Suggestions.tail(
                        for: name, in: spec.declaredMethods, label: "Defined methods",
                        list: Suggestions.sample(spec.declaredMethods)))
        }
    }

    /// The stage parameters of the table, in the order the docs list them (any the docs do
    /// not know last, sorted).
    static func paramNames(_ ranges: EngineRanges) -> [String] {
        let known = KnownEngines.stageParamOrder.filter { ranges.stageParams[$0] != nil }
        return known + ranges.stageParams.keys.filter { !known.contains($0) }.sorted()
    }

    /// `none` or `{plateau: {patience: N, factor: F}}`.
    static func checkScheduler(_ node: SpecNode, _ path: String, _ reader: inout SpecReader) {
        let advice = "write `scheduler: none` or `scheduler: {plateau: {patience: 5, factor: 0.1}}`"
        if case .string("none", _) = node.kind { return }
        guard let entries = node.entries else {
            reader.diagnostics.add(node, path, "expected `none` or a plateau schedule, found \(node.found); \(advice).")
            return
        }
        guard let f = reader.fields(node, path, allowed: ["plateau"], owner: "`scheduler`") else { return }
        guard let plateau = f["plateau"] else {
            if !entries.isEmpty { return }  // the unknown key is already reported
            reader.diagnostics.add(node, path, "is empty; \(advice).")
            return
        }
        // The engine refuses `{plateau: null}`; `{plateau: {}}` takes both defaults.
        if plateau.isNull {
            reader.diagnostics.add(
                plateau, f.path("plateau"),
                "expected a mapping such as `{patience: 5, factor: 0.1}`, or `{}` for those defaults; found \(plateau.found)."
            )
            return
        }
        guard let p = reader.fields(plateau, f.path("plateau"), allowed: ["patience", "factor"], owner: "`plateau`")
        else { return }
        if let n = p["patience"] {
            _ = reader.int(n, p.path("patience"), min: 0, max: 10_000, example: "`patience: 5`")
        }
        if let n = p["factor"] {
            _ = reader.number(n, p.path("factor"), rule: "in (0, 1)", example: "`factor: 0.1`") { $0 > 0 && $0 < 1 }
        }
    }
}
