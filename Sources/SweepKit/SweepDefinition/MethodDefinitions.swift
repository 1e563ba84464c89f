/// `methods:` — named sparsity methods a grid's `method` values refer to.
extension SpecReader {
    static let methodKinds = ["n_m", "block"]

    /// For the sparsity engine each definition is checked; for other engines any mapping
    /// passes through. Either way the engine receives it with its `name` added.
    mutating func methods(_ node: SpecNode, _ path: String, engine: String) -> [MethodSpec] {
        guard let entries = node.entries else {
            diagnostics.add(
                node, path,
                "expected a mapping of method names to definitions, e.g. `{nm_2_4: {kind: n_m, n: 2, m: 4}}`; found \(node.found)."
            )
            return []
        }
        var methods: [MethodSpec] = []
        for entry in entries {
            let methodPath = KeyPath.child(path, entry.key)
            guard Self.isName(entry.key) else {
                diagnostics.add(
                    at: entry.keyPosition, methodPath,
                    "\"\(entry.key)\" is not a valid method name; use only letters, digits, `.`, `_` and `-`, e.g. `nm_2_4`."
                )
                continue
            }
            // Reports label tasks without a method "dense"; a method of that name would be confused with them.
            guard entry.key != "dense" else {
                diagnostics.add(
                    at: entry.keyPosition, methodPath,
                    "`dense` is reserved for tasks without a sparsity method; give this method another name.")
                continue
            }
            let definition: JSONValue?
            if engine == KnownEngines.sparsity {
                definition = sparsityMethod(entry.value, methodPath)
            } else if entry.value.entries != nil {
                definition = entry.value.json
            } else {
                diagnostics.add(
                    entry.value, methodPath, "expected a mapping that defines the method, found \(entry.value.found).")
                definition = nil
            }
            guard case .object(var object)? = definition else { continue }
            object["name"] = .string(entry.key)
            methods.append(MethodSpec(name: entry.key, definition: .object(object)))
        }
        return methods
    }

    /// `{kind: n_m, n, m, skip}` or `{kind: block, shape, select, probability, probability_start, seed, skip}`.
    private mutating func sparsityMethod(_ node: SpecNode, _ path: String) -> JSONValue? {
        guard let entries = node.entries else {
            diagnostics.add(
                node, path,
                "expected a mapping such as `{kind: n_m, n: 2, m: 4, skip: [first, last]}`; found \(node.found).")
            return nil
        }
        let kindPath = KeyPath.child(path, "kind")
        guard let kindNode = entries.first(where: { $0.key == "kind" })?.value else {
            diagnostics.add(
                node, kindPath,
                "missing; say which pattern: `kind: n_m` (keep n of every m weights) or `kind: block` (zero whole blocks)."
            )
            return nil
        }
        guard let kind = choice(kindNode, kindPath, among: Self.methodKinds) else { return nil }
        if kind == "n_m" {
            guard let f = fields(node, path, allowed: ["kind", "n", "m", "skip"], owner: "an n_m method") else {
                return nil
            }
            let n = require(f, "n", "give how many weights of each group stay nonzero, e.g. `n: 2`.")
                .flatMap { rangedInt($0, f.path("n"), methodRange(\.nM, "n"), key: "n") }
            let m = require(f, "m", "give the group size, e.g. `m: 4`.")
                .flatMap { rangedInt($0, f.path("m"), methodRange(\.nM, "m"), key: "m") }
            let skip = self.skip(f)
            guard let n, let m else { return nil }
            guard n < m else {
                diagnostics.add(
                    f["n"]!, f.path("n"),
                    "must be smaller than `m` (\(m)) so that some weights are pruned, found \(n); e.g. `n: 2, m: 4`.")
                return nil
            }
            guard let skip else { return nil }
            return ["kind": "n_m", "n": .number(Double(n)), "m": .number(Double(m)), "skip": skip]
        }
        guard
            let f = fields(
                node, path, allowed: ["kind", "shape", "select", "probability", "probability_start", "seed", "skip"],
                owner: "a block method")
        else { return nil }
        let shape = require(f, "shape", "give the block height and width, e.g. `shape: [4, 4]`.")
            .flatMap {
                rangedIntList(
                    $0, f.path("shape"), methodRange(\.block, "shape"), key: "shape", allowSingle: false,
                    distinct: false)
            }
        let select = require(f, "select", "say how blocks are chosen: `select: random` or `select: magnitude`.")
            .flatMap { ranged($0, f.path("select"), methodRange(\.block, "select"), key: "select")?.stringValue }
        let probability = require(f, "probability", "give the fraction of blocks zeroed, e.g. `probability: 0.5`.")
            .flatMap {
                rangedNumber($0, f.path("probability"), methodRange(\.block, "probability"), key: "probability")
            }
        let seed = f["seed"].map { rangedInt($0, f.path("seed"), methodRange(\.block, "seed"), key: "seed") }
        let skip = self.skip(f)
        var start: Double??
        if let startNode = f["probability_start"] {
            start = rangedNumber(
                startNode, f.path("probability_start"), methodRange(\.block, "probability_start"),
                key: "probability_start")
            // The engine only ever zeroes more blocks during a ramp.
            if case .some(.some(let s)) = start, let probability, s > probability {
                diagnostics.add(
                    startNode, f.path("probability_start"),
                    "must be at most `probability` (\(probability)): a ramp only ever zeroes more blocks; found \(s), e.g. `probability_start: 0.3`."
                )
                start = .some(nil)
            }
        }
        guard let shape, let select, let probability, let skip else { return nil }
        var definition: [String: JSONValue] = [
            "kind": "block", "shape": .array(shape.map { .number(Double($0)) }), "select": .string(select),
            "probability": .number(probability), "skip": skip,
        ]
        switch start {
        case .some(.some(let s)): definition["probability_start"] = .number(s)
        case .some(.none): return nil
        case .none: break
        }
        switch seed {
        case .some(.some(let s)): definition["seed"] = .number(Double(s))
        case .some(.none): return nil
        case .none: break
        }
        return .object(definition)
    }

    /// A method key's range from the engine's table, or the built-in one when the engine's
    /// table leaves the key out.
    private func methodRange(_ table: Swift.KeyPath<EngineRanges.Methods, [String: EngineRange]>, _ key: String)
        -> EngineRange
    {
        ranges.methods[keyPath: table][key] ?? EngineRanges.builtin.methods[keyPath: table][key]!
    }

    /// Layers left dense: the engine's aliases (`first`, `last`, `shortcuts`: residual
    /// shortcut convolutions) or module names as torch names them (`features.0.0`). An alias
    /// this build knows that the engine in use does not take is refused. Absent means none.
    private mutating func skip(_ f: Fields) -> JSONValue? {
        guard let node = f["skip"] else { return .array([]) }
        if let items = node.items, items.isEmpty { return .array([]) }
        let aliases = ranges.methods.skipAliases
        let names = list(node, f.path("skip"), allowSingle: true, what: "layer names") {
            (r: inout SpecReader, n: SpecNode, p: String) -> String? in
            guard let name = r.string(n, p, example: "`skip: [first, last]` or a module name such as `fc`") else {
                return nil
            }
            if EngineRanges.builtin.methods.skipAliases.contains(name), !aliases.contains(name) {
                r.diagnostics.add(
                    n, p,
                    "`\(name)` is not an alias this engine takes (it takes \(Suggestions.list(aliases.map { "`\($0)`" }))); name the layers instead, e.g. `skip: [fc]`."
                )
                return nil
            }
            return name
        }
        return names.map { .array($0.map { .string($0) }) }
    }
}
