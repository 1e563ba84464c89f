import Foundation
import Testing

@testable import SweepKit

/// Applies one textual edit to the two-stage fixture; the edit must match.
private func edit(_ from: String, _ to: String) -> String {
    let text = Fixtures.twoStage.replacingOccurrences(of: from, with: to)
    precondition(text != Fixtures.twoStage, "edit did not apply: \(from)")
    return text
}

@Suite("A mistyped key is named with its place and the key it was meant to be")
struct MistypedKeyTests {
    @Test("`modle` in the grid points at its line and suggests `model`")
    func gridKey() {
        #expect(
            Fixtures.problems(edit("  model: [", "  modle: ["), file: "sweeps/x.yaml") == [
                "sweeps/x.yaml:4:3: `grid.modle`: `modle` is not a key of `grid`; did you mean `model`? Grid keys of the sparsity engine: model, seed, method and the stage parameters (epochs, batch_size, lr, lr_final, momentum, weight_decay, scheduler, val_split, max_steps, eval_batch_size, channels_last, num_threads)."
            ])
    }

    @Test("a mistyped top-level key lists the valid ones")
    func topLevelKey() {
        #expect(
            Fixtures.problems(edit("measure:", "mesure:")) == [
                "spec.yaml:17:1: `mesure`: `mesure` is not a key of a sweep spec; did you mean `measure`? Valid keys: name, description, engine, data, grid, stages, methods, measure, resources, retries, dead_after, report."
            ])
    }

    @Test("a key nobody could have meant gets the list without a guess")
    func noGuess() {
        #expect(
            Fixtures.problems(edit("warmup: 2,", "warmup: 2, zzz: 1,")) == [
                "spec.yaml:18:42: `measure.latency.zzz`: `zzz` is not a key of `measure.latency`; valid keys: batch_sizes, warmup, iterations, precision, max_seconds, block."
            ])
    }

    @Test("an unknown stage parameter is reported with the parameters there are")
    func stageParam() {
        #expect(
            Fixtures.problems(edit("{epochs: 1, lr: 0.01}", "{epochs: 1, lr: 0.01, weight_decy: 0.1}")) == [
                "spec.yaml:13:35: `stages.finetune.params.weight_decy`: `weight_decy` is not a parameter of the sparsity engine; did you mean `weight_decay`? Parameters: epochs, batch_size, lr, lr_final, momentum, weight_decay, scheduler, val_split, max_steps, eval_batch_size, channels_last, num_threads."
            ])
    }
}

@Suite("Unknown models and methods are listed against what exists")
struct UnknownNameTests {
    @Test("an unknown model lists the five")
    func model() {
        #expect(
            Fixtures.problems(edit("mobilenet_v2]", "resnet19]")) == [
                "spec.yaml:4:21: `grid.model[1]`: `resnet19` is not a model of the sparsity engine; did you mean `resnet18`? Models: resnet18, resnet50, mobilenet_v2, densenet121, efficientnet_b0."
            ])
    }

    @Test("an unknown method lists the defined ones")
    func method() {
        #expect(
            Fixtures.problems(edit("[nm_2_4, block_4x4]", "[nm_2_4, nm24, magic]")) == [
                "spec.yaml:12:24: `stages.finetune.grid.method[1]`: `nm24` is not defined under `methods`; did you mean `nm_2_4`? Defined methods: nm_2_4, block_4x4.",
                "spec.yaml:12:30: `stages.finetune.grid.method[2]`: `magic` is not defined under `methods`; defined methods: nm_2_4, block_4x4.",
            ])
    }

    @Test("a method used without any `methods` section says how to define one")
    func noMethods() {
        let text = Fixtures.twoStage.components(separatedBy: "methods:")[0] + "measure: {flops: true}\n"
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:12:16: `stages.finetune.grid.method[0]`: `nm_2_4` is not defined: the spec has no `methods`; define it there, e.g. `methods: {nm_2_4: {kind: n_m, n: 2, m: 4, skip: [first, last]}}`.",
                "spec.yaml:12:24: `stages.finetune.grid.method[1]`: `block_4x4` is not defined: the spec has no `methods`; define it there, e.g. `methods: {nm_2_4: {kind: n_m, n: 2, m: 4, skip: [first, last]}}`.",
            ])
    }

    @Test("a missing model key is reported per stage")
    func noModel() {
        #expect(
            Fixtures.problems(edit("  model: [resnet18, mobilenet_v2]\n", "")) == [
                "spec.yaml:6:3: `stages.train`: has no `model`; the sparsity engine needs one per task: add `model: [resnet18, …]` to the top-level `grid` or to this stage's `grid`.",
                "spec.yaml:8:3: `stages.finetune`: has no `model`; the sparsity engine needs one per task: add `model: [resnet18, …]` to the top-level `grid` or to this stage's `grid`.",
            ])
    }
}

@Suite("Values of the wrong type say what was expected and how to write it")
struct WrongTypeTests {
    @Test("every wrong value of a stage is reported, in file order")
    func allAtOnce() {
        let text = edit(
            "params: {epochs: 1, max_steps: 2}",
            "params: {epochs: ten, max_steps: 2.5, lr: \"5e-4\", momentum: 1.5, scheduler: cosine, channels_last: 1}")
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:8:22: `stages.train.params.epochs`: expected a whole number from 0 to 10000, found the string \"ten\"; e.g. `epochs: 10`.",
                "spec.yaml:8:38: `stages.train.params.max_steps`: expected a whole number from 1 to 10000000 or null (the engine decides), found the number 2.5; e.g. `max_steps: 20`.",
                "spec.yaml:8:47: `stages.train.params.lr`: expected a number, found the string \"5e-4\"; write 5.0e-4 without quotes so that YAML reads it as a number.",
                "spec.yaml:8:65: `stages.train.params.momentum`: must be a number in [0, 1) (the engine's range), found 1.5; e.g. `momentum: 0.9`.",
                "spec.yaml:8:81: `stages.train.params.scheduler`: expected `none` or a plateau schedule, found the string \"cosine\"; write `scheduler: none` or `scheduler: {plateau: {patience: 5, factor: 0.1}}`.",
                "spec.yaml:8:104: `stages.train.params.channels_last`: expected true or false, found the integer 1.",
            ])
    }

    @Test("numbers written with an exponent are numbers, with or without a decimal point")
    func exponents() throws {
        let plan = try Fixtures.plan(edit("{epochs: 1, lr: 0.01}", "{epochs: 1, lr: 5e-4, weight_decay: 5.0e-4}"))
        let task = plan.tasks.first { $0.stage == "finetune" }!
        #expect(task.params["lr"] == 0.0005 && task.params["weight_decay"] == 0.0005)
    }

    @Test("method definitions are checked field by field")
    func methodFields() {
        let text = edit("{kind: n_m, n: 2, m: 4, skip: [first, last]}", "{kind: n_m, n: 4, m: 4}")
            .replacingOccurrences(of: "select: random, probability: 0.5", with: "select: rand, probability: 0")
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:15:26: `methods.nm_2_4.n`: must be smaller than `m` (4) so that some weights are pruned, found 4; e.g. `n: 2, m: 4`.",
                "spec.yaml:16:51: `methods.block_4x4.select`: expected `random` or `magnitude`, found the string \"rand\"; did you mean `random`?",
                "spec.yaml:16:70: `methods.block_4x4.probability`: must be a number in (0, 1) (the engine's range), found 0.0; e.g. `probability: 0.5`.",
            ])
    }

    @Test("a value listed twice in a grid is reported where it repeats")
    func duplicateValue() {
        #expect(
            Fixtures.problems(edit("seed: [0, 1]", "seed: [0, 1, 0]")) == [
                "spec.yaml:5:16: `grid.seed[2]`: 0 appears twice (first at line 5); list each value once."
            ])
    }

    @Test("required keys that are missing are named, with an example")
    func missing() {
        #expect(
            Fixtures.problems(edit("name: demo\n", "").replacingOccurrences(of: ", test: 32", with: "")) == [
                "spec.yaml:1:1: `name`: missing; every sweep needs a name, e.g. `name: my-sweep`.",
                "spec.yaml:1:7: `data.test`: missing; give the number of test images, e.g. `test: 512`.",
            ])
    }

    @Test("a name with spaces is refused with the characters allowed")
    func badName() {
        #expect(
            Fixtures.problems(edit("name: demo", "name: my demo")) == [
                "spec.yaml:1:7: `name`: \"my demo\" is not a valid sweep name; use only letters, digits, `.`, `_` and `-`, e.g. `name: my-sweep`."
            ])
    }

    @Test("a file that is not a mapping says what a spec looks like")
    func notAMapping() {
        #expect(
            Fixtures.problems("- a\n- b\n") == [
                "spec.yaml:1:1: a sweep spec is a YAML mapping with keys such as `name`, `data`, `grid` and `stages`, but this file holds a list; see sweeps/smoke.yaml for an example."
            ])
    }
}

@Suite("YAML syntax errors and unreadable files")
struct SyntaxErrorTests {
    @Test("an unclosed bracket is reported at the line where YAML noticed, naming where it opened")
    func unclosed() {
        #expect(
            Fixtures.problems(edit("  seed: [0, 1]", "  seed: [0, 1")) == [
                "spec.yaml:6:7: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 5, column 9); fix the YAML here (indentation, a missing `:` or an unclosed bracket or quote are the usual causes)."
            ])
    }

    @Test("a missing colon is reported with its line")
    func missingColon() {
        #expect(
            Fixtures.problems(edit("stages:\n", "stages\n")) == [
                "spec.yaml:7:8: invalid YAML: could not find expected ':' (while scanning a simple key at line 6, column 1); fix the YAML here (indentation, a missing `:` or an unclosed bracket or quote are the usual causes)."
            ])
    }

    @Test("a key written twice in one mapping")
    func duplicateKey() {
        #expect(
            Fixtures.problems(edit("  seed: [0, 1]", "  seed: [0, 1]\n  seed: [2]")) == [
                "spec.yaml:5:3: `seed` appears more than once in the same mapping; keep one."
            ])
    }

    @Test("an empty file")
    func empty() {
        #expect(
            Fixtures.problems("# nothing yet\n") == [
                "spec.yaml:1:1: the file has no YAML document; a sweep spec needs at least `name`, `data`, `grid` and `stages` (see sweeps/smoke.yaml)."
            ])
    }

    @Test("a missing file says what to pass instead")
    func missingFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString).yaml")
            .path
        let error = #expect(throws: SpecError.self) { try SpecLoader.load(path: path) }
        #expect(
            error?.description
                == "cannot read sweep spec '\(path)': no such file; pass the path of a YAML sweep spec, e.g. sweeps/smoke.yaml"
        )
    }

    @Test("a spec is read from a real file, and its problems name that file")
    func fromFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sweepkit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.yaml"), bad = dir.appendingPathComponent("bad.yaml")
        try Fixtures.twoStage.write(to: good, atomically: true, encoding: .utf8)
        #expect(try SpecLoader.load(path: good.path).tasks.count == 12)
        try edit("mobilenet_v2]", "resnet19]").write(to: bad, atomically: true, encoding: .utf8)
        let error = #expect(throws: SpecError.self) { try SpecLoader.load(path: bad.path) }
        #expect(error?.issues.map(\.file) == [bad.path])
        #expect(error?.issues.first?.line == 4)
    }
}
