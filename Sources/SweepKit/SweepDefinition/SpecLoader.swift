import Foundation
import Yams

/// Reads a sweep spec (DESIGN.md §2), validates it and expands it into a plan.
public enum SpecLoader {
    /// Reads, validates and plans a spec file. Throws `SpecError`.
    public static func load(path: String) throws -> SweepPlan {
        try plan(yaml: read(path: path), file: path)
    }

    /// Same from text; `file` is the name used in messages.
    public static func plan(yaml: String, file: String) throws -> SweepPlan {
        try validate(yaml: yaml, file: file).plan
    }

    /// The plan plus the outline `sparsegrid validate` prints (which keys each stage varies).
    public static func validate(path: String) throws -> ValidatedSweep {
        try validate(yaml: read(path: path), file: path)
    }

    public static func validate(yaml: String, file: String) throws -> ValidatedSweep {
        var reader = SpecReader(file: file)
        let root: SpecNode
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                reader.diagnostics.add(at: Position(line: 1, column: 1), "",
                    "the file has no YAML document; a sweep spec needs at least `name`, `data`, `grid` and `stages` (see sweeps/smoke.yaml).")
                throw reader.diagnostics.error!
            }
            root = SpecNode(yaml: node, path: "", diagnostics: &reader.diagnostics)
        } catch let error as YamlError {
            throw SpecError(issues: [syntaxIssue(error, file: file)])
        }
        guard let spec = reader.sweep(root) else { throw reader.diagnostics.error! }
        if spec.isSparsity { SparsityRules.check(spec, &reader) }
        StageGraph.check(spec, &reader.diagnostics)
        ReportRules.check(spec, &reader.diagnostics)
        if let error = reader.diagnostics.error { throw error }

        let plan = Planner.plan(spec, specText: yaml)
        let stages = spec.stages.map { stage in
            ValidatedSweep.Stage(name: stage.name, after: stage.after?.name,
                                 axes: (spec.grid + stage.grid).map(\.key),
                                 tasks: plan.tasks.filter { $0.stage == stage.name }.count)
        }
        return ValidatedSweep(plan: plan, stages: stages, methods: spec.methods.map(\.name), description: spec.description)
    }

    static func read(path: String) throws -> String {
        let problem: String
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            problem = "no such file"
        } else if isDirectory.boolValue {
            problem = "it is a directory"
        } else if let data = FileManager.default.contents(atPath: path) {
            if let text = String(data: data, encoding: .utf8) { return text }
            problem = "it is not UTF-8 text"
        } else {
            problem = "permission denied"
        }
        throw SpecError(issues: [SpecError.Issue(file: path, line: nil, column: nil, keyPath: "",
            message: "cannot read sweep spec '\(path)': \(problem); pass the path of a YAML sweep spec, e.g. sweeps/smoke.yaml")])
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

    public var plan: SweepPlan
    public var stages: [Stage]
    /// Method names in the order the spec defines them.
    public var methods: [String]
    /// The spec's `description`, if any.
    public var description: String?
}
