import Foundation
import Testing
import Yams

@testable import SweepKit

/// The paths of the repository's sweeps and bad-spec corpus.
private enum Paths {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let sweeps = root.appendingPathComponent("sweeps")
    static let badSpecs = root.appendingPathComponent("Tests/Fixtures/bad-specs")

    static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }
}

/// The schema-level spec of a text, as the planner and the task count see it.
private func sweepSpec(_ yaml: String, limits: SpecLimits = .default) throws -> SweepSpec {
    try SpecLoader.sweepSpec(yaml: yaml, file: "spec.yaml", limits: limits).0
}

/// A spec for an unchecked engine with the given grids: `top` keys of the top-level grid and,
/// per stage, its own grid; every axis has `values` values.
private func gridSpec(top: Int, stages: [(name: String, after: String?, keys: [String])], values: Int) -> String {
    let list = "[" + (0..<values).map(String.init).joined(separator: ", ") + "]"
    var text = "name: g\nengine: test\n"
    if top > 0 { text += "grid:\n" + (0..<top).map { "  t\($0): \(list)\n" }.joined() }
    text += "stages:\n"
    for stage in stages {
        text += "  \(stage.name):\n"
        if let after = stage.after { text += "    after: \(after)\n" }
        if !stage.keys.isEmpty { text += "    grid:\n" + stage.keys.map { "      \($0): \(list)\n" }.joined() }
        text += "    params: {value: 1}\n"
    }
    return text
}

@Suite("The task count is computed from the axis lengths, before anything is expanded")
struct TaskCountTests {
    @Test(
        "for every shipped sweep the count equals the tasks the planner really makes, per stage",
        arguments: ["smoke.yaml", "quick.yaml", "paper.yaml", "recommended.yaml"])
    func shippedSweeps(file: String) throws {
        let text = try Paths.text(Paths.sweeps.appendingPathComponent(file))
        let count = TaskCount(try sweepSpec(text))
        let plan = try SpecLoader.plan(yaml: text, file: file)
        #expect(count.total == plan.tasks.count)
        let planned = Dictionary(uniqueKeysWithValues: plan.countsByStage.map { ($0.stage, $0.count) })
        #expect(Dictionary(uniqueKeysWithValues: count.stages.map { ($0.name, $0.tasks!) }) == planned)
    }

    @Test("for the test fixtures and grids of several shapes the count equals the expansion")
    func fixtures() throws {
        let texts = [
            Fixtures.twoStage,
            gridSpec(top: 0, stages: [("a", nil, [])], values: 3),
            gridSpec(top: 3, stages: [("a", nil, [])], values: 4),
            gridSpec(top: 2, stages: [("a", nil, ["x"]), ("b", "a", ["x", "y"]), ("c", nil, [])], values: 3),
            gridSpec(top: 1, stages: [("a", nil, ["x", "y", "z"]), ("b", "a", ["x", "y", "z"])], values: 5),
        ]
        for text in texts {
            let count = TaskCount(try sweepSpec(text))
            let plan = try SpecLoader.plan(yaml: text, file: "spec.yaml")
            #expect(count.total == plan.tasks.count, "\(text)")
            for stage in count.stages {
                #expect(stage.tasks == plan.tasks.filter { $0.stage == stage.name }.count, "\(stage.name) of\n\(text)")
            }
        }
    }

    @Test("a count past Int.max is reported as overflow, not trapped on")
    func overflow() throws {
        #expect(TaskCount.product([10, 10]) == 100)
        #expect(TaskCount.product([Int.max, 2]) == nil)
        #expect(TaskCount.product([3, nil]) == nil)
        #expect(TaskCount.sum([Int.max, 1]) == nil)
        // 10^20 cells from twenty keys of ten values.
        let count = TaskCount(
            try sweepSpec(try Paths.text(Paths.badSpecs.appendingPathComponent("grid-overflow.yaml"))))
        #expect(count.total == nil)
        // Two stages of 10^18 each: each fits, their sum does not.
        let keys = (0..<18).map { "k\($0)" }
        let two = TaskCount(
            try sweepSpec(
                gridSpec(top: 0, stages: [("a", nil, keys), ("b", nil, keys)], values: 10),
                limits: SpecLimits(maxNodes: 1_000_000)))
        #expect(two.stages.map(\.tasks) == [1_000_000_000_000_000_000, 1_000_000_000_000_000_000])
        #expect(two.total == 2_000_000_000_000_000_000)
        let eleven = TaskCount(
            try sweepSpec(
                gridSpec(top: 0, stages: (0..<10).map { ("s\($0)", nil, keys) }, values: 10),
                limits: SpecLimits(maxNodes: 1_000_000)))
        #expect(eleven.total == nil)
    }

    @Test("a 10^9-task grid is refused at the grid's line, with the count and the limit in words")
    func refusedAtLimit() throws {
        let text = try Paths.text(Paths.badSpecs.appendingPathComponent("grid-1e9.yaml"))
        #expect(
            Fixtures.problems(text, file: "sweeps/x.yaml") == [
                "sweeps/x.yaml:4:1: the grid expands to 1,000,000,000 tasks, more than the limit of 100,000; shrink the grid or pass --max-tasks N."
            ])
    }

    @Test("an overflowing grid is refused without trapping, and so is a stage after one")
    func refusedOverflow() throws {
        let text = try Paths.text(Paths.badSpecs.appendingPathComponent("grid-overflow.yaml"))
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:5:1: the grid expands to more than 9,223,372,036,854,775,807 tasks (more than a 64-bit count holds), more than the limit of 100,000; shrink the grid or pass --max-tasks N."
            ])
        let after = Fixtures.problems(try Paths.text(Paths.badSpecs.appendingPathComponent("after-overflow.yaml")))
        #expect(after.count == 2)
        #expect(
            after.first?.hasPrefix("spec.yaml:9:5: the grid expands to more than 9,223,372,036,854,775,807 tasks")
                == true)
        #expect(after.last?.contains("would match more than 9,223,372,036,854,775,807 train tasks") == true)
    }

    @Test("the limit is a parameter: exactly at it plans, one over is refused, and it can be raised")
    func limitIsAParameter() throws {
        let text = gridSpec(top: 2, stages: [("a", nil, []), ("b", "a", [])], values: 10)  // 2 × 100 tasks
        #expect(try SpecLoader.plan(yaml: text, file: "s.yaml", limits: SpecLimits(maxTasks: 200)).tasks.count == 200)
        let refused = #expect(throws: SpecError.self) {
            try SpecLoader.plan(yaml: text, file: "s.yaml", limits: SpecLimits(maxTasks: 199))
        }
        #expect(
            refused?.description
                == "s.yaml:3:1: the grid expands to 200 tasks (a 100, b 100), more than the limit of 199; shrink the grid or pass --max-tasks N."
        )
        let big = try Paths.text(Paths.badSpecs.appendingPathComponent("grid-1e6.yaml"))
        #expect(throws: SpecError.self) { try SpecLoader.plan(yaml: big, file: "s.yaml") }
        #expect(SpecLimits.default.maxTasks == 100_000)
    }

    @Test("a stage's own grid is named when it is the larger factor")
    func stageGridNamed() throws {
        let text = gridSpec(top: 1, stages: [("a", nil, ["x", "y", "z"])], values: 10)
        let error = #expect(throws: SpecError.self) {
            try SpecLoader.plan(yaml: text, file: "s.yaml", limits: SpecLimits(maxTasks: 100))
        }
        #expect(
            error?.description
                == "s.yaml:7:5: the grid expands to 10,000 tasks, more than the limit of 100; shrink the grid or pass --max-tasks N."
        )
    }
}

@Suite("YAML aliases are bounded by what they expand to, before Yams composes them")
struct ExpansionBudgetTests {
    /// Nodes of a composed Yams tree, mapping keys included: what the composer really built.
    static func composedNodes(_ node: Node) -> Int {
        switch node {
        case .scalar, .alias: return 1
        case .sequence(let s): return 1 + s.reduce(0) { $0 + composedNodes($1) }
        case .mapping(let m): return 1 + m.reduce(0) { $0 + composedNodes($1.key) + composedNodes($1.value) }
        }
    }

    static func size(_ yaml: String, limits: SpecLimits = .default) -> ExpansionBudget.Size? {
        if case .within(let size) = ExpansionBudget.measure(yaml: yaml, limits: limits) { return size }
        return nil
    }

    @Test(
        "the expanded count equals the nodes Yams composes, for the shipped sweeps and nested aliases",
        arguments: ["smoke.yaml", "quick.yaml", "paper.yaml", "recommended.yaml", "(nested aliases)"])
    func countMatchesComposer(file: String) throws {
        let text =
            file.hasPrefix("(")
            ? "a: &a [1, 2, {k: v}]\nb: &b [*a, *a, x]\nc: &c {p: *b, q: *a, <<: {m: *b}}\nd: [*c, *c, *b]\n"
            : try Paths.text(Paths.sweeps.appendingPathComponent(file))
        let size = try #require(Self.size(text))
        let composed = try #require(try Yams.compose(yaml: text))
        #expect(size.nodes == Self.composedNodes(composed))
    }

    @Test("nine levels of nine aliases (a billion laughs) are refused at the alias that passes the limit")
    func aliasBomb() throws {
        let text = try Paths.text(Paths.badSpecs.appendingPathComponent("alias-bomb.yaml"))
        let started = Date()
        let problems = Fixtures.problems(text)
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(
            problems == [
                "spec.yaml:15:14: `*e` repeats a node of 66,430 values, which makes the spec hold more than 100,000 values once its aliases are expanded (the limit); aliases that repeat aliases grow exponentially, so write the values out instead of nesting aliases."
            ])
    }

    @Test(
        "an alias inside its own anchor, in a list or as a merge key, is refused as a cycle",
        arguments: ["alias-cycle.yaml", "alias-self-map.yaml"])
    func cycles(file: String) throws {
        let problems = Fixtures.problems(try Paths.text(Paths.badSpecs.appendingPathComponent(file)))
        #expect(problems.count == 1)
        #expect(problems.first?.contains("would contain itself without end") == true, "\(problems)")
    }

    @Test("an alias to no anchor is named with its line")
    func undefined() throws {
        #expect(
            Fixtures.problems(try Paths.text(Paths.badSpecs.appendingPathComponent("undefined-alias.yaml"))) == [
                "spec.yaml:8:21: `*nowhere` refers to no anchor above it; mark the value to repeat with `&nowhere` before this line, or write the value here."
            ])
    }

    @Test("more aliases than the limit are refused at the first one past it")
    func aliasCount() throws {
        let problems = Fixtures.problems(try Paths.text(Paths.badSpecs.appendingPathComponent("many-aliases.yaml")))
        #expect(
            problems == [
                "spec.yaml:1012:9: `*one` is alias number 1,001 in this spec, more than the limit of 1,000; a sweep spec needs only a few (e.g. `<<: *protocol` to share params); write the values out or share fewer."
            ])
    }

    @Test("nesting is bounded, aliases expanded, and a 10,000-level file gets a sentence, not libyaml's wording")
    func depth() throws {
        let limits = SpecLimits(maxDepth: 4)
        #expect(Self.size("a: [[[1]]]", limits: limits)?.depth == 4)
        #expect(Self.size("a: [[[[1]]]]", limits: limits) == nil)
        // Within the limit where written, past it once the alias is expanded.
        #expect(Self.size("x: &x [[1]]\na: [*x]", limits: limits)?.depth == 4)
        #expect(Self.size("x: &x [[1]]\na: [[*x]]", limits: limits) == nil)
        let deep = Fixtures.problems(try Paths.text(Paths.badSpecs.appendingPathComponent("deep-nesting.yaml")))
        #expect(
            deep == [
                "spec.yaml:9:15: lists and mappings are nested deeper here than the YAML reader accepts; a sweep spec needs fewer than ten levels."
            ])
        let seventy =
            "name: d\nengine: test\nstages: {a: {params: {v: " + String(repeating: "[", count: 70) + "1"
            + String(repeating: "]", count: 70) + "}}}\n"
        #expect(
            Fixtures.problems(seventy) == [
                "spec.yaml:3:86: lists and mappings are nested more than 64 levels deep here (the limit, aliases expanded); a sweep spec needs fewer than ten."
            ])
    }

    @Test("a document of plain values past the node limit is refused too")
    func plainValues() {
        let text =
            "name: n\nengine: test\nstages: {a: {params: {v: ["
            + Array(repeating: "0", count: 100_001).joined(separator: ",") + "]}}}\n"
        #expect(Fixtures.problems(text).first?.hasPrefix("spec.yaml:3:") == true)
        #expect(Fixtures.problems(text).first?.contains("more than 100,000 YAML values") == true)
    }
}

@Suite("A spec file's size is bounded before it is read")
struct SpecSizeTests {
    @Test("a file over the limit is refused naming the file, its size and the limit")
    func oversizedFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sweepkit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("big.yaml").path
        try Data(repeating: UInt8(ascii: "#"), count: 2 << 20).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SpecError.self) { try SpecLoader.load(path: path) }
        #expect(
            error?.description
                == "'\(path)' is 2 MiB (2,097,152 bytes), more than the 1 MiB (1,048,576 bytes) a sweep spec may be; a spec lists values to sweep, not data (the shipped ones are under 5 KiB), so check that this is the file you meant."
        )
        // The limit is a parameter: raised, the same file is read (and found to hold no document).
        let raised = #expect(throws: SpecError.self) {
            try SpecLoader.load(path: path, limits: SpecLimits(maxFileBytes: 4 << 20))
        }
        #expect(raised?.description.contains("no YAML document") == true)
    }

    @Test("a device that never ends is read only up to the limit")
    func endlessDevice() throws {
        guard FileManager.default.fileExists(atPath: "/dev/zero") else { return }
        let error = #expect(throws: SpecError.self) { try SpecLoader.load(path: "/dev/zero") }
        #expect(
            error?.description
                == "'/dev/zero' holds more than the 1 MiB (1,048,576 bytes) a sweep spec may be; a spec lists values to sweep, not data (the shipped ones are under 5 KiB), so check that this is the file you meant."
        )
    }

    @Test("text over the limit is refused the same way")
    func oversizedText() {
        let text = String(repeating: "#", count: 2_000)
        let error = #expect(throws: SpecError.self) {
            try SpecLoader.plan(yaml: text, file: "t.yaml", limits: SpecLimits(maxFileBytes: 1_000))
        }
        #expect(
            error?.description
                == "'t.yaml' is 2 KiB (2,000 bytes), more than the 1,000 bytes a sweep spec may be; a spec lists values to sweep, not data (the shipped ones are under 5 KiB), so check that this is the file you meant."
        )
    }
}

@Suite("A spec with thousands of mistakes reports the first few hundred")
struct IssueCapTests {
    @Test("past 200 issues the rest are counted in one closing line naming the file")
    func capped() {
        let text = "name: c\nengine: test\nstages: {a: }\n" + (0..<500).map { "key\($0): 1\n" }.joined()
        let problems = Fixtures.problems(text)
        #expect(problems.count == 201)
        #expect(problems.last == "'spec.yaml' has 300 more problems than the 200 shown; fix these and validate again.")
    }
}
