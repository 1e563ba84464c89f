import Testing

@testable import SweepKit

@Suite("`after` must name an earlier stage and match exactly one of its tasks")
struct StageGraphTests {
    /// A null-engine spec, so only the stage rules are in play.
    func spec(_ stages: String) -> String {
        "name: g\nengine: null\ngrid: {model: [a, b]}\nstages:\n" + stages
    }

    @Test("a stage whose producer varies a key it does not is ambiguous")
    func ambiguous() {
        let text = spec(
            """
              train: {grid: {lr: [0.1, 0.2], width: [1, 2, 3]}}
              finetune: {after: train, grid: {width: [1]}}
            """)
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:6:21: `stages.finetune.after`: `finetune` comes after `train`, whose own grid varies `lr`, so each finetune task would match 2 train tasks; add `lr` to `stages.finetune.grid` to say which one each consumes."
            ])
    }

    @Test("a value the producer never had leaves a task without input")
    func noProducer() {
        let text = spec(
            """
              train: {grid: {lr: [0.1, 0.2]}}
              finetune: {after: train, grid: {lr: [0.2, 0.3]}}
            """)
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:6:45: `stages.finetune.grid.lr[1]`: no `train` task has lr 0.3, so this one would have no input; use one of stages.train.grid.lr's values (0.1, 0.2) or add it there."
            ])
    }

    @Test("a mistyped, later or self-referencing stage")
    func badReferences() {
        let text = spec(
            """
              train: {after: pretrain}
              finetune: {after: trian}
              again: {after: again}
            """)
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:5:18: `stages.train.after`: no stage is named `pretrain`, and `train` is the first stage, so it cannot come after another; remove `after` or move the stage below the one it consumes.",
                "spec.yaml:6:21: `stages.finetune.after`: no stage is named `trian`; did you mean `train`? Earlier stages: train.",
                "spec.yaml:7:18: `stages.again.after`: a stage cannot come after itself; name the stage whose checkpoint `again` starts from.",
            ])
    }

    @Test("a stage that names one written below it is told to reorder")
    func later() {
        let text = spec(
            """
              finetune: {after: train}
              train: {}
            """)
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:5:21: `stages.finetune.after`: `train` is written below `finetune`; a stage can only come after an earlier one, so move `train` above `finetune`."
            ])
    }

    @Test("a key cannot be both swept and fixed, nor swept twice")
    func overlaps() {
        let text = spec(
            """
              train: {grid: {model: [c], lr: [0.1]}, params: {lr: 0.2, epochs: 1}}
            """)
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:5:18: `stages.train.grid.model`: `model` is already a key of the top-level `grid`; a stage's grid can only add keys, so remove it from one of the two.",
                "spec.yaml:5:51: `stages.train.params.lr`: `lr` is also a key of `stages.train.grid`; a parameter is either swept or fixed, so remove it from one of the two.",
            ])
    }

    @Test("a sparsity stage param that is also a grid key is reported once")
    func sweptAndFixedOnce() {
        let text = Fixtures.twoStage.replacingOccurrences(
            of: "params: {epochs: 1, lr: 0.01}",
            with: "params: {epochs: 1, lr: 0.01, seed: 3}")
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:13:35: `stages.finetune.params.seed`: `seed` is also a key of the top-level `grid`; a parameter is either swept or fixed, so remove it from one of the two."
            ])
    }

    @Test("a YAML `null` engine is the built-in null engine")
    func nullEngine() throws {
        let plan = try Fixtures.plan(spec("  work: {}\n"))
        #expect(plan.engine == "null")
        #expect(plan.tasks.map(\.params) == [["model": "a"], ["model": "b"]])
    }
}

@Suite("Report tables are checked against the grid and the engine's metrics")
struct ReportCheckTests {
    @Test("a mistyped pivot key and a mistyped metric are both named")
    func typos() {
        let text =
            Fixtures.twoStage
            + "\nreport:\n  - {title: x, rows: modle, columns: method, values: [acuracy, latency_ms_bs64]}\n"
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:20:22: `report[0].rows`: `modle` is not a key of the grid; did you mean `model`? Tables can pivot on: model, seed, method, stage.",
                "spec.yaml:20:55: `report[0].values[0]`: `acuracy` is not a metric of the sparsity engine; did you mean `accuracy`? Metrics: accuracy, val_accuracy, loss, latency_ms, latency_p10_ms, latency_p90_ms, latency_dense_ms, latency_sparse_ms, gmacs, gmacs_effective, params_m, sparsity, weight_mib, weight_compressed_mib, peak_mib, train_seconds, images_per_s, and latency_ms_bs64 etc. per batch size.",
            ])
    }
}

@Suite("Did-you-mean suggestions")
struct SuggestionTests {
    @Test("close names within two edits or by prefix are suggested, distant ones are not")
    func closest() {
        #expect(Suggestions.closest(to: "modle", in: ["model", "seed", "method"]) == "model")
        #expect(Suggestions.closest(to: "lat", in: ["latency", "flops"]) == "latency")
        #expect(Suggestions.closest(to: "resnet19", in: KnownEngines.sparsityModels) == "resnet18")
        #expect(Suggestions.closest(to: "zzz", in: ["batch_sizes", "warmup"]) == nil)
        #expect(Suggestions.closest(to: "ab", in: ["lr"]) == nil)
        #expect(Suggestions.editDistance("kitten", "sitting") == 3)
    }
}
