/// Checks that only the sparsity engine needs: known models, defined methods, known stage
/// parameters of the right types. Other engines get their grid and params unchecked.
enum SparsityRules {
    static func check(_ spec: SweepSpec, _ reader: inout SpecReader) {
        var allKnown = true
        for axis in spec.grid { allKnown = checkAxis(axis, spec, &reader) && allKnown }
        for stage in spec.stages {
            let gridKeys = Set(spec.grid.map(\.key) + stage.grid.map(\.key))
            for axis in stage.grid { allKnown = checkAxis(axis, spec, &reader) && allKnown }
            for param in stage.params {
                guard let rule = paramRules[param.key] else {
                    // A key that is also a grid key is reported by StageGraph, as swept and fixed at once.
                    if gridKeys.contains(param.key) { continue }
                    reader.diagnostics.add(
                        at: param.keyPosition, param.path,
                        "`\(param.key)` is not a parameter of the sparsity engine;"
                            + Suggestions.tail(
                                for: param.key, in: KnownEngines.stageParamOrder, label: "Parameters",
                                list: KnownEngines.stageParamOrder.joined(separator: ", ")))
                    continue
                }
                rule.check(param.node, param.path, &reader)
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

    private static let validGridKeys = KnownEngines.sparsityAxes + KnownEngines.stageParamOrder

    /// False when the key itself is unknown.
    private static func checkAxis(_ axis: GridAxis, _ spec: SweepSpec, _ reader: inout SpecReader) -> Bool {
        switch axis.key {
        case "model":
            for v in axis.values { checkModel(v, &reader) }
        case "seed":
            for v in axis.values { _ = reader.int(v.node, v.path, min: 0, example: "`seed: [0, 1, 2]`") }
        case "method":
            let declared = Set(spec.declaredMethods)
            for v in axis.values { checkMethod(v, spec, declared, &reader) }
        default:
            if let rule = paramRules[axis.key] {
                for v in axis.values { rule.check(v.node, v.path, &reader) }
            } else {
                reader.diagnostics.add(
                    at: axis.keyPosition, axis.path,
                    "`\(axis.key)` is not a key of `grid`;"
                        + Suggestions.tail(
                            for: axis.key, in: validGridKeys, label: "Grid keys of the sparsity engine",
                            list:
                                "model, seed, method and the stage parameters (\(KnownEngines.stageParamOrder.joined(separator: ", ")))"
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

    // MARK: parameter types

    enum ParamRule {
        case int(min: Int, example: String)
        case number(rule: String, example: String, valid: @Sendable (Double) -> Bool)
        case bool
        case scheduler

        func check(_ node: SpecNode, _ path: String, _ reader: inout SpecReader) {
            switch self {
            case .int(let min, let example):
                _ = reader.int(node, path, min: min, example: example)
            case .number(let rule, let example, let valid):
                _ = reader.number(node, path, rule: rule, example: example, valid: valid)
            case .bool:
                _ = reader.bool(node, path)
            case .scheduler:
                SparsityRules.checkScheduler(node, path, &reader)
            }
        }
    }

    static let paramRules: [String: ParamRule] = [
        "epochs": .int(min: 1, example: "`epochs: 10`"),
        "batch_size": .int(min: 1, example: "`batch_size: 64`"),
        "lr": .number(rule: "greater than 0", example: "`lr: 0.05`") { $0 > 0 },
        "lr_final": .number(rule: "greater than 0", example: "`lr_final: 1.0e-5`") { $0 > 0 },
        "momentum": .number(rule: "in [0, 1)", example: "`momentum: 0.9`") { $0 >= 0 && $0 < 1 },
        "weight_decay": .number(rule: "≥ 0", example: "`weight_decay: 5.0e-4`") { $0 >= 0 },
        "scheduler": .scheduler,
        // A count of training images held out for validation; 0 evaluates on the test split.
        "val_split": .int(min: 0, example: "`val_split: 5000`"),
        "max_steps": .int(min: 1, example: "`max_steps: 20`"),
        "eval_batch_size": .int(min: 1, example: "`eval_batch_size: 256`"),
        "channels_last": .bool,
        "num_threads": .int(min: 1, example: "`num_threads: 2`"),
    ]

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
        if plateau.isNull { return }
        guard let p = reader.fields(plateau, f.path("plateau"), allowed: ["patience", "factor"], owner: "`plateau`")
        else { return }
        if let n = p["patience"] { _ = reader.int(n, p.path("patience"), min: 0, example: "`patience: 5`") }
        if let n = p["factor"] {
            _ = reader.number(n, p.path("factor"), rule: "in (0, 1)", example: "`factor: 0.1`") { $0 > 0 && $0 < 1 }
        }
    }
}
