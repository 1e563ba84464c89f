/// Collects issues while a spec is read, so one run reports every problem, up to
/// `maxIssues`: a generated spec can hold a hundred thousand mistakes, and past the first few
/// hundred each costs time and output while helping nobody. The rest are counted, not built
/// (messages are autoclosures).
struct Diagnostics: Sendable {
    static let maxIssues = 200

    let file: String
    private(set) var issues: [SpecError.Issue] = []
    /// Issues found beyond `maxIssues`.
    private(set) var omitted = 0

    init(file: String) {
        self.file = file
    }

    var isEmpty: Bool { issues.isEmpty }

    mutating func add(at position: Position?, _ keyPath: String, _ message: @autoclosure () -> String) {
        guard issues.count < Self.maxIssues else { omitted += 1; return }
        issues.append(
            SpecError.Issue(
                file: file, line: position?.line, column: position?.column,
                keyPath: keyPath, message: message()))
    }

    mutating func add(_ node: SpecNode, _ keyPath: String, _ message: @autoclosure () -> String) {
        add(at: node.position, keyPath, message())
    }

    /// The error to throw: issues in file order (unplaced ones last), or nil when there are none.
    var error: SpecError? {
        guard !issues.isEmpty else { return nil }
        let ordered = issues.enumerated().sorted { a, b in
            let la = a.element.line ?? Int.max, lb = b.element.line ?? Int.max
            if la != lb { return la < lb }
            let ca = a.element.column ?? Int.max, cb = b.element.column ?? Int.max
            if ca != cb { return ca < cb }
            return a.offset < b.offset
        }
        var out = ordered.map(\.element)
        if omitted > 0 {
            out.append(
                SpecError.Issue(
                    file: file, line: nil, column: nil, keyPath: "",
                    message:
                        "'\(file)' has \(omitted.grouped) more \(omitted == 1 ? "problem" : "problems") than the \(Self.maxIssues) shown; fix these and validate again."
                ))
        }
        return SpecError(issues: out)
    }
}

/// Key paths as messages show them: `stages.finetune.grid.method[1]`.
enum KeyPath {
    static func child(_ parent: String, _ key: String) -> String {
        parent.isEmpty ? key : "\(parent).\(key)"
    }

    static func index(_ parent: String, _ i: Int) -> String {
        "\(parent)[\(i)]"
    }
}
