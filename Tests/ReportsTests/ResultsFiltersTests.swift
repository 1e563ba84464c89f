import Reports
import SweepKit
import Testing

@Suite("`results --where` and `--stage` are checked against the tasks there are")
struct ResultsFiltersTests {
    static let rows: [ResultRow] = [
        ResultRow(
            sweep: "s", stage: "train", taskId: "t1", params: ["model": .string("resnet18"), "seed": .number(0)],
            state: .succeeded),
        ResultRow(
            sweep: "s", stage: "train", taskId: "t2", params: ["model": .string("resnet50"), "seed": .number(1)],
            state: .succeeded),
        ResultRow(
            sweep: "s", stage: "finetune", taskId: "t3",
            params: ["model": .string("resnet50"), "method": .string("nm_2_4"), "seed": .number(1)],
            state: .failed),
    ]

    func problem(stage: String? = nil, _ filters: [(String, String)]) -> String? {
        ResultsFilters.problem(stage: stage, filters: filters.map { (key: $0.0, value: $0.1) }, among: Self.rows)
    }

    @Test("keys and values that some task has pass, including method=dense and seed as written")
    func known() {
        #expect(problem([("model", "resnet50"), ("method", "nm_2_4"), ("seed", "1")]) == nil)
        #expect(problem([("method", "dense")]) == nil)
        #expect(problem(stage: "finetune", [("state", "anything: the caller checks states")]) == nil)
    }

    @Test("a value no task has is an error naming the option, with the closest value and the values there are")
    func unknownValue() throws {
        let message = try #require(problem([("model", "resnet5")]))
        #expect(message.hasPrefix("--where model=resnet5: no task has model `resnet5`;"))
        #expect(message.contains("did you mean `resnet50`?"))
        #expect(message.contains("Values of model: resnet18, resnet50."))
        #expect(!message.contains("\n"))
        let far = try #require(problem([("method", "magnitude")]))
        #expect(!far.contains("did you mean"))
        #expect(far.contains("values of method: dense, nm_2_4."))
    }

    @Test("an unknown key lists the keys (with state) and suggests the closest")
    func unknownKey() throws {
        let typo = try #require(problem([("modle", "resnet18")]))
        #expect(typo.hasPrefix("--where modle=resnet18: no task has a parameter `modle`;"))
        #expect(typo.contains("did you mean `model`?"))
        let foo = try #require(problem([("foo", "bar")]))
        #expect(foo.contains("keys: method, model, seed, state."))
        let stage = try #require(problem([("stage", "train")]))
        #expect(stage.contains("use --stage train"))
    }

    @Test("--stage with a stage no task has suggests the closest")
    func unknownStage() throws {
        let message = try #require(problem(stage: "fintune", []))
        #expect(message.hasPrefix("--stage fintune: no task has this stage;"))
        #expect(message.contains("did you mean `finetune`? Stages: train, finetune."))
    }

    @Test("names from the command line or a spec are shown on one line, control characters replaced, long ones cut")
    func plain() throws {
        let message = try #require(problem([("model", "x\n\u{1B}[2J")]))
        #expect(!message.contains("\n") && !message.contains("\u{1B}"))
        let long = ResultsFilters.plain(String(repeating: "a", count: 500))
        #expect(long.count == ResultsFilters.maxShown + 1)
        #expect(long.hasSuffix("…"))
    }

    @Test("with no tasks there is nothing to check against")
    func empty() {
        #expect(ResultsFilters.problem(stage: "x", filters: [(key: "foo", value: "bar")], among: []) == nil)
    }
}
