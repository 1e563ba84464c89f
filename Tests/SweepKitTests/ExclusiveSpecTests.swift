import Testing

@testable import SweepKit

/// `resources: {exclusive: …}` in a spec: which stages need a device of their own.
@Suite("Spec: resources.exclusive")
struct ExclusiveSpecTests {
    func spec(_ resources: String) -> String { Fixtures.twoStage + "\nresources: " + resources + "\n" }

    @Test("true names every stage, a list names some (in stage order), false and absent name none")
    func values() throws {
        #expect(try Fixtures.plan(spec("{device: gpu, exclusive: true}")).exclusiveStages == ["train", "finetune"])
        #expect(try Fixtures.plan(spec("{exclusive: [finetune]}")).exclusiveStages == ["finetune"])
        #expect(try Fixtures.plan(spec("{exclusive: [finetune, train]}")).exclusiveStages == ["train", "finetune"])
        #expect(try Fixtures.plan(spec("{exclusive: false}")).exclusiveStages == nil)
        #expect(try Fixtures.plan(Fixtures.twoStage).exclusiveStages == nil)
    }

    @Test("exclusive changes no task id (resources say where a task runs, not what it computes)")
    func ids() throws {
        #expect(
            Fixtures.ids(try Fixtures.plan(spec("{device: gpu, exclusive: true}")))
                == Fixtures.ids(try Fixtures.plan(Fixtures.twoStage)))
    }

    @Test("a stage that does not exist, a repeat, or a wrong type is named with file, line and key")
    func errors() {
        #expect(
            Fixtures.problems(spec("{exclusive: [finetnue]}"), file: "s.yaml") == [
                "s.yaml:19:25: `resources.exclusive[0]`: `finetnue` is not a stage of this sweep; did you mean `finetune`?"
                    + " Stages: train, finetune."
            ])
        #expect(
            Fixtures.problems(spec("{exclusive: [train, train]}"), file: "s.yaml") == [
                "s.yaml:19:32: `resources.exclusive[1]`: repeats an earlier value (first at line 19); list each value once."
            ])
        let wrongType = Fixtures.problems(spec("{exclusive: yes please}"), file: "s.yaml")
        #expect(
            wrongType.first?.hasPrefix(
                "s.yaml:19:24: `resources.exclusive`: expected true, false or a list of stage names") == true,
            "\(wrongType)")
        #expect(
            Fixtures.problems(spec("{exclusiv: true}"), file: "s.yaml").first?.contains("did you mean `exclusive`?")
                == true)
    }

    @Test("the plan summary says which stages run on exclusive devices")
    func summary() throws {
        let summary = try SpecLoader.validate(yaml: spec("{device: gpu, exclusive: [finetune]}"), file: "s.yaml")
            .summary
        #expect(
            summary.contains("resources device gpu; 2 retries per task; exclusive devices for finetune"), "\(summary)")
    }
}
