import Foundation
import Yams

/// Reads a sweep spec (docs/spec-reference.md), validates it and expands it into a plan.
///
/// A spec is untrusted input: `limits` bounds the file's size, what its YAML aliases expand
/// to, its nesting and the number of tasks, each checked before the work it bounds is done.
public enum SpecLoader {
    /// Reads, validates and plans a spec file. Throws `SpecError`.
    /// `rangesFor`: what the sparsity engine accepts, asked only for a spec of that engine.
    public static func load(
        path: String, limits: SpecLimits = .default,
        rangesFor: (_ engine: String) -> EngineRanges = { _ in .builtin }
    ) throws -> SweepPlan {
        try validate(path: path, limits: limits, rangesFor: rangesFor).plan
    }

    /// Same from text; `file` is the name used in messages.
    public static func plan(
        yaml: String, file: String, limits: SpecLimits = .default, ranges: EngineRanges = .builtin
    ) throws -> SweepPlan {
        try validate(yaml: yaml, file: file, limits: limits, ranges: ranges).plan
    }

    /// The plan plus the outline `sparsegrid validate` prints (which keys each stage varies).
    /// `ranges`: what the sparsity engine accepts (`EngineRanges`); the built-in table by default.
    public static func validate(
        path: String, limits: SpecLimits = .default, ranges: EngineRanges = .builtin
    ) throws -> ValidatedSweep {
        try validate(path: path, limits: limits, rangesFor: { _ in ranges })
    }

    /// Same, asking `rangesFor` for the engine's table only when the spec is for the sparsity
    /// engine (so a spec for another engine never makes the caller describe the sparsity one).
    public static func validate(
        path: String, limits: SpecLimits = .default, expand: Bool = true,
        rangesFor: (_ engine: String) -> EngineRanges
    ) throws -> ValidatedSweep {
        try validate(
            yaml: read(path: path, maxBytes: limits.maxFileBytes), file: path, limits: limits, expand: expand,
            rangesFor: rangesFor)
    }

    public static func validate(
        yaml: String, file: String, limits: SpecLimits = .default, ranges: EngineRanges = .builtin
    ) throws -> ValidatedSweep {
        try validate(yaml: yaml, file: file, limits: limits, rangesFor: { _ in ranges })
    }

    /// `expand: false` checks and counts without expanding: the plan comes without tasks, and
    /// `ValidatedSweep.forEachTask` makes them one at a time (what `sparsegrid validate` prints
    /// needs no list of a million tasks).
    public static func validate(
        yaml: String, file: String, limits: SpecLimits = .default, expand: Bool = true,
        rangesFor: (_ engine: String) -> EngineRanges
    ) throws -> ValidatedSweep {
        let (spec, read) = try sweepSpec(yaml: yaml, file: file, limits: limits, rangesFor: rangesFor)
        var reader = read
        // Counted from the axis lengths before anything is expanded.
        let count = TaskCount(spec)
        count.check(maxTasks: limits.maxTasks, &reader.diagnostics)
        if spec.isSparsity { SparsityRules.check(spec, &reader) }
        StageGraph.check(spec, &reader.diagnostics)
        ReportRules.check(spec, &reader.diagnostics)
        if let error = reader.diagnostics.error { throw error }

        let plan = Planner.plan(spec, specText: yaml, expand: expand)
        // The counts were checked to fit the limit above, so none is nil here.
        let stages = zip(spec.stages, count.stages).map { stage, counted in
            ValidatedSweep.Stage(
                name: stage.name, after: stage.after?.name,
                axes: (spec.grid + stage.grid).map(\.key),
                tasks: counted.tasks ?? 0)
        }
        return ValidatedSweep(
            plan: plan, stages: stages, methods: spec.methods.map(\.name), description: spec.description,
            spec: spec)
    }

    /// The spec's schema read from the text, within `limits` (size, aliases, nesting), before
    /// the checks that span sections; the reader holds the issues found so far.
    static func sweepSpec(
        yaml: String, file: String, limits: SpecLimits,
        rangesFor: (String) -> EngineRanges = { _ in .builtin }
    ) throws -> (SweepSpec, SpecReader) {
        let size = yaml.utf8.count
        if size > limits.maxFileBytes {
            throw SpecError(issues: [tooLarge(file, size: size, limit: limits.maxFileBytes)])
        }
        // Before composing: Yams copies the anchored node at every alias.
        try ExpansionBudget.check(yaml: yaml, file: file, limits: limits)
        var reader = SpecReader(file: file)
        let root: SpecNode
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                reader.diagnostics.add(
                    at: Position(line: 1, column: 1), "",
                    "the file has no YAML document; a sweep spec needs at least `name`, `data`, `grid` and `stages` (see sweeps/smoke.yaml)."
                )
                throw reader.diagnostics.error!
            }
            root = SpecNode(yaml: node, path: "", diagnostics: &reader.diagnostics)
        } catch let error as YamlError {
            throw SpecError(issues: [syntaxIssue(error, file: file)])
        }
        guard let spec = reader.sweep(root, rangesFor: rangesFor) else { throw reader.diagnostics.error! }
        return (spec, reader)
    }

    /// `size`: nil when only "more than the limit" is known (a device, a growing file).
    private static func tooLarge(_ file: String, size: Int?, limit: Int) -> SpecError.Issue {
        func text(_ n: Int) -> String { n < 1024 ? "\(n.grouped) bytes" : "\(n.byteSize) (\(n.grouped) bytes)" }
        let what = size.map { "is \(text($0)), more than" } ?? "holds more than"
        return SpecError.Issue(
            file: file, line: nil, column: nil, keyPath: "",
            message:
                "'\(file)' \(what) the \(text(limit)) a sweep spec may be; a spec lists values to sweep, not data (the shipped ones are under 5 KiB), so check that this is the file you meant."
        )
    }

    /// The file's text, refused unread when larger than `maxBytes`. Reads at most `maxBytes + 1`
    /// bytes, so a file that grows, or a device such as /dev/zero, cannot exhaust memory either.
    static func read(path: String, maxBytes: Int = SpecLimits.defaultMaxFileBytes) throws -> String {
        let problem: String
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            problem = "no such file"
        } else if isDirectory.boolValue {
            problem = "it is a directory"
        } else if let handle = FileHandle(forReadingAtPath: path) {
            defer { try? handle.close() }
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            if attributes?[.type] as? FileAttributeType == .typeRegular,
                let size = (attributes?[.size] as? NSNumber)?.intValue, size > maxBytes
            {
                throw SpecError(issues: [tooLarge(path, size: size, limit: maxBytes)])
            }
            let data: Data
            do {
                data = try handle.read(upToCount: maxBytes + 1) ?? Data()
            } catch {
                throw SpecError(issues: [
                    SpecError.Issue(
                        file: path, line: nil, column: nil, keyPath: "",
                        message:
                            "cannot read sweep spec '\(path)': \(error.localizedDescription); pass the path of a YAML sweep spec, e.g. sweeps/smoke.yaml"
                    )
                ])
            }
            if data.count > maxBytes {
                throw SpecError(issues: [tooLarge(path, size: nil, limit: maxBytes)])
            }
            if let text = String(data: data, encoding: .utf8) { return text }
            problem = "it is not UTF-8 text"
        } else {
            problem = "permission denied"
        }
        throw SpecError(issues: [
            SpecError.Issue(
                file: path, line: nil, column: nil, keyPath: "",
                message:
                    "cannot read sweep spec '\(path)': \(problem); pass the path of a YAML sweep spec, e.g. sweeps/smoke.yaml"
            )
        ])
    }

    /// A YAML syntax error as one issue at its line, in words rather than libyaml's layout.
    static func syntaxIssue(_ error: YamlError, file: String) -> SpecError.Issue {
        func issue(_ mark: Mark?, _ text: String) -> SpecError.Issue {
            SpecError.Issue(file: file, line: mark?.line, column: mark?.column, keyPath: "", message: text)
        }
        let fix = "fix the YAML here (indentation, a missing `:` or an unclosed bracket or quote are the usual causes)."
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            // libyaml's own bound on nesting, met in its look-ahead before `ExpansionBudget` sees the levels.
            if problem.hasPrefix("Maximum nesting level reached") {
                return issue(
                    context?.mark ?? mark,
                    "lists and mappings are nested deeper here than the YAML reader accepts; a sweep spec needs fewer than ten levels."
                )
            }
            let while_ = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return issue(mark, "invalid YAML: \(problem)\(while_); \(fix)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = Suggestions.list(duplicates.map { "`\($0)`" })
            return issue(context.mark, "\(keys) appears more than once in the same mapping; keep one.")
        case .reader(let problem, _, _, _):
            return issue(nil, "cannot read '\(file)' as YAML: \(problem); save it as UTF-8 text.")
        default:
            return issue(nil, "'\(file)' is not valid YAML: \(error); \(fix)")
        }
    }
}

/// A validated spec: its plan and, per stage, which grid keys it varies.
public struct ValidatedSweep: Sendable {
    public struct Stage: Sendable, Hashable {
        public var name: String
        public var after: String?
        /// The grid keys the stage's tasks vary, top-level grid first.
        public var axes: [String]
        public var tasks: Int
    }

    /// With `validate(…, expand: false)`, without its tasks.
    public var plan: SweepPlan
    public var stages: [Stage]
    /// Method names in the order the spec defines them.
    public var methods: [String]
    /// The spec's `description`, if any.
    public var description: String?
    var spec: SweepSpec

    /// Tasks in the plan, all stages together.
    public var taskCount: Int { stages.reduce(0) { $0 + $1.tasks } }

    /// Calls `body` with each task of the plan in order, one at a time (the same tasks as
    /// `plan.tasks` of an expanded plan).
    public func forEachTask(_ body: (PlannedTask) throws -> Void) rethrows {
        try Planner.forEachTask(spec, body)
    }
}
