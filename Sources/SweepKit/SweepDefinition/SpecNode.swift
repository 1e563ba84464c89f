import Yams

/// A place in the spec text (1-based, as editors count).
struct Position: Sendable, Hashable {
    var line: Int
    var column: Int
}

/// A YAML node resolved to the few types a spec uses, keeping where it was written so every
/// later check can point at the line. Built once from Yams' node tree; all checks read this.
struct SpecNode: Sendable {
    enum Kind: Sendable {
        case null
        case bool(Bool)
        case int(Int)
        case float(Double)
        /// `quoted` tells "5e-4" (a string on purpose) from a plain scalar YAML did not read as a number.
        case string(String, quoted: Bool)
        case list([SpecNode])
        case map([SpecEntry])
    }

    var kind: Kind
    var position: Position?
    /// A scalar's text as written (`null` and `~` are both `.null`; an engine named "null" needs the difference).
    var text: String?

    init(_ kind: Kind, at position: Position?, text: String? = nil) {
        self.kind = kind
        self.position = position
        self.text = text
    }
}

/// One key of a mapping, in the order written.
struct SpecEntry: Sendable {
    var key: String
    var keyPosition: Position?
    var value: SpecNode
}

extension SpecNode {
    var entries: [SpecEntry]? { if case .map(let e) = kind { return e }; return nil }
    var items: [SpecNode]? { if case .list(let i) = kind { return i }; return nil }
    var isNull: Bool { if case .null = kind { return true }; return false }

    /// The value as JSON, for parts of the spec that pass through to the engine unchanged.
    var json: JSONValue {
        switch kind {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .number(Double(i))
        case .float(let d): return .number(d)
        case .string(let s, _): return .string(s)
        case .list(let items): return .array(items.map(\.json))
        case .map(let entries):
            var object: [String: JSONValue] = [:]
            for e in entries { object[e.key] = e.value.json }
            return .object(object)
        }
    }

    /// How a message names what was found: "the string \"ten\"", "a list", …
    var found: String {
        switch kind {
        case .null: return "nothing (null)"
        case .bool(let b): return "the boolean \(b)"
        case .int(let i): return "the integer \(i)"
        case .float(let d): return "the number \(d)"
        case .string(let s, _): return "the string \"\(s)\""
        case .list: return "a list"
        case .map: return "a mapping"
        }
    }
}

extension SpecNode {
    /// Converts Yams' tree. Keys that are not scalars (YAML allows lists as keys) are reported,
    /// since a spec's keys are always names.
    init(yaml node: Node, path: String, diagnostics: inout Diagnostics) {
        let position = node.mark.map { Position(line: $0.line, column: $0.column) }
        switch node {
        case .scalar(let scalar):
            self.init(
                Self.resolve(scalar, tag: Resolver.default.resolveTag(of: node)), at: position, text: scalar.string)
        case .sequence(let sequence):
            let items = sequence.enumerated().map { index, item in
                SpecNode(yaml: item, path: "\(path)[\(index)]", diagnostics: &diagnostics)
            }
            self.init(.list(items), at: position)
        case .mapping(let mapping):
            let explicit = Set(mapping.compactMap { key, _ in Self.isMergeKey(key) ? nil : key.scalar?.string })
            var entries: [SpecEntry] = []
            var mergedKeys: Set<String> = []  // keys already taken from a merged mapping
            for (key, value) in mapping {
                let keyPosition = key.mark.map { Position(line: $0.line, column: $0.column) }
                // `<<: *defaults` (YAML merge key) copies the keys of an anchored mapping that this
                // mapping does not set itself, so specs can share params between stages.
                if Self.isMergeKey(key) {
                    let merged = SpecNode(yaml: value, path: path, diagnostics: &diagnostics)
                    let sources = merged.items ?? [merged]
                    for source in sources {
                        guard let sourceEntries = source.entries else {
                            diagnostics.add(
                                source, KeyPath.child(path, "<<"),
                                "`<<` merges a mapping (e.g. `<<: *defaults`), found \(source.found).")
                            continue
                        }
                        for entry in sourceEntries
                        where !explicit.contains(entry.key) && mergedKeys.insert(entry.key).inserted {
                            entries.append(entry)
                        }
                    }
                    continue
                }
                guard let name = key.scalar?.string else {
                    diagnostics.add(
                        at: keyPosition, path,
                        "a key here is a list or mapping; keys in a sweep spec are plain names.")
                    continue
                }
                let child = path.isEmpty ? name : "\(path).\(name)"
                entries.append(
                    SpecEntry(
                        key: name, keyPosition: keyPosition,
                        value: SpecNode(yaml: value, path: child, diagnostics: &diagnostics)))
            }
            self.init(.map(entries), at: position)
        case .alias:
            // Yams' composer replaces aliases by the anchored node, so this is not reached.
            // (`ExpansionBudget` has bounded what those copies add up to before composing.)
            self.init(.null, at: position)
        }
    }

    private static func isMergeKey(_ key: Node) -> Bool {
        guard let scalar = key.scalar else { return false }
        return scalar.string == "<<" && (scalar.style == .plain || scalar.style == .any)
    }

    private static func resolve(_ scalar: Node.Scalar, tag: Tag.Name) -> Kind {
        let plain = scalar.style == .plain || scalar.style == .any
        switch tag {
        case .null:
            return .null
        case .bool:
            if let b = Bool.construct(from: scalar) { return .bool(b) }
        case .int:
            if let i = Int.construct(from: scalar) { return .int(i) }
            // Too large for Int: keep it as a number rather than failing.
            if plain, let d = Double(scalar.string.replacingOccurrences(of: "_", with: "")) { return .float(d) }
        case .float:
            if let d = Double.construct(from: scalar) { return .float(d) }
        default:
            break
        }
        return .string(scalar.string, quoted: !plain)
    }
}
