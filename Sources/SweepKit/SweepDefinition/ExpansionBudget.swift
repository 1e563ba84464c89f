// libyaml, as vendored by Yams. Yams' composer copies the anchored node for every alias
// (a `Node` is a value), and the spec reader walks every copy, so a document's size must be
// known before it is composed; Yams has no public event API, so this walks libyaml's events.
internal import CYaml

/// Checks, before the document is composed, how large it becomes once every alias is
/// expanded: a pass over libyaml's events that records, per anchor, how many values the
/// anchored node holds and how deep it is, and adds that much at each alias. It stops at the
/// first event past a limit of `SpecLimits` (values, aliases, depth), at an alias that refers
/// to a node containing it (a cycle) or to no anchor, so the cost is bounded by the limits
/// and the text, never by what the aliases would expand to.
///
/// YAML syntax errors are left to the composer, which reports them with their line.
enum ExpansionBudget {
    static func check(yaml: String, file: String, limits: SpecLimits) throws(SpecError) {
        if case .refused(let problem) = measure(yaml: yaml, limits: limits) {
            throw SpecError(issues: [
                SpecError.Issue(
                    file: file, line: problem.line, column: problem.column,
                    keyPath: "", message: problem.message)
            ])
        }
    }

    enum Outcome: Equatable {
        /// The whole document was read within the limits.
        case within(Size)
        /// A syntax error stopped the pass (everything before it was within the limits).
        case syntaxError
        case refused(Problem)
    }

    /// What the document amounts to once its aliases are expanded.
    struct Size: Equatable {
        /// Scalars, lists and mappings, mapping keys included, each alias counted as a copy.
        var nodes: Int
        var aliases: Int
        /// Lists and mappings nested inside each other, the deepest point.
        var depth: Int
    }

    struct Problem: Error, Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    static func measure(yaml: String, limits: SpecLimits) -> Outcome {
        var bytes = Array(yaml.utf8)
        return bytes.withUnsafeMutableBufferPointer { walk($0, limits: limits) }
    }

    /// An anchored node as later aliases expand it.
    private struct Anchored {
        var nodes: Int
        var height: Int
    }

    /// A list or mapping whose end has not been read yet.
    private struct Open {
        var anchor: String?
        var line: Int
        /// Values in it so far, itself included, aliases expanded.
        var nodes = 1
        /// 1 + the height of its tallest child so far.
        var height = 1
    }

    private static func walk(_ input: UnsafeMutableBufferPointer<UInt8>, limits: SpecLimits) -> Outcome {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return .syntaxError }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, input.baseAddress, input.count)

        var anchors: [String: Anchored] = [:]
        var open: [Open] = []
        var total = 0
        var aliases = 0
        var depth = 0
        var event = yaml_event_t()

        /// A finished node (scalar, alias or closed collection) joins its parent.
        func add(nodes: Int, height: Int, anchor: String?) {
            if let anchor { anchors[anchor] = Anchored(nodes: nodes, height: height) }
            guard !open.isEmpty else { return }
            open[open.count - 1].nodes = saturating(open[open.count - 1].nodes, nodes)
            open[open.count - 1].height = max(open[open.count - 1].height, height + 1)
        }

        while true {
            // A syntax error: the composer reports it, with its line, when it reaches it.
            guard yaml_parser_parse(&parser, &event) == 1 else { return .syntaxError }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1, column = Int(event.start_mark.column) + 1
            func problem(_ message: String) -> Outcome {
                .refused(Problem(line: line, column: column, message: message))
            }

            switch event.type {
            case YAML_STREAM_END_EVENT:
                return .within(Size(nodes: total, aliases: aliases, depth: depth))
            case YAML_SCALAR_EVENT:
                total = saturating(total, 1)
                if total > limits.maxNodes { return problem(tooManyValues(limits)) }
                depth = max(depth, open.count)
                add(nodes: 1, height: 1, anchor: name(event.data.scalar.anchor))
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                total = saturating(total, 1)
                if total > limits.maxNodes { return problem(tooManyValues(limits)) }
                if open.count + 1 > limits.maxDepth { return problem(tooDeep(limits)) }
                let anchor =
                    event.type == YAML_SEQUENCE_START_EVENT
                    ? name(event.data.sequence_start.anchor) : name(event.data.mapping_start.anchor)
                open.append(Open(anchor: anchor, line: line))
                depth = max(depth, open.count)
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = open.popLast() else { return .syntaxError }
                add(nodes: closed.nodes, height: closed.height, anchor: closed.anchor)
            case YAML_ALIAS_EVENT:
                let alias = name(event.data.alias.anchor) ?? ""
                aliases += 1
                if aliases > limits.maxAliases {
                    return problem(
                        "`*\(alias)` is alias number \(aliases.grouped) in this spec, more than the limit of \(limits.maxAliases.grouped); a sweep spec needs only a few (e.g. `<<: *protocol` to share params); write the values out or share fewer."
                    )
                }
                if let container = open.last(where: { $0.anchor == alias }) {
                    return problem(
                        "`*\(alias)` is inside the node anchored as `&\(alias)` (line \(container.line)), so that node would contain itself without end; an alias can only repeat a node that ends before it."
                    )
                }
                guard let target = anchors[alias] else {
                    return problem(
                        "`*\(alias)` refers to no anchor above it; mark the value to repeat with `&\(alias)` before this line, or write the value here."
                    )
                }
                total = saturating(total, target.nodes)
                if total > limits.maxNodes {
                    return problem(
                        "`*\(alias)` repeats a node of \(target.nodes.grouped) values, which makes the spec hold more than \(limits.maxNodes.grouped) values once its aliases are expanded (the limit); aliases that repeat aliases grow exponentially, so write the values out instead of nesting aliases."
                    )
                }
                // A scalar has height 1 and adds no level; a collection of height h adds h - 1.
                if open.count + target.height - 1 > limits.maxDepth { return problem(tooDeep(limits)) }
                depth = max(depth, open.count + target.height - 1)
                add(nodes: target.nodes, height: target.height, anchor: nil)
            default:
                break  // stream and document start/end
            }
        }
    }

    private static func tooManyValues(_ limits: SpecLimits) -> String {
        "the spec holds more than \(limits.maxNodes.grouped) YAML values (the limit); a sweep spec lists a few hundred at most, so this is likely data or generated text rather than a sweep."
    }

    private static func tooDeep(_ limits: SpecLimits) -> String {
        "lists and mappings are nested more than \(limits.maxDepth.grouped) levels deep here (the limit, aliases expanded); a sweep spec needs fewer than ten."
    }

    private static func name(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    private static func saturating(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : sum
    }
}
