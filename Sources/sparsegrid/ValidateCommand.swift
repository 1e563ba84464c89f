import ArgumentParser
import Foundation
import SweepKit

/// `sparsegrid validate SPEC`: check a spec and show what it would run, without running it.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a sweep spec and show the tasks it expands to, without running anything.",
        discussion: """
            Reads the YAML spec, reports every problem with its file, line and key (exit \
            status 1), or prints the sweep: its data, methods and measurements, then the \
            tasks per stage with the grid keys they vary. `--json` prints the full plan \
            instead: each task's id, stage, parameters and inputs, as the coordinator \
            would store them.

            Values are checked against the ranges the sparsity engine publishes in its \
            `describe` (read once and cached with the workers' describe cache), or, when the \
            engine's code is not found or with --builtin-ranges, against the table built into \
            this binary; one line on stderr says which.

            For the sparsity engine it ends with a rough compute estimate: per task, the images             it trains on divided by a per-model training throughput, plus its evaluations and             latency timing at a third of that cost per image, plus a start-up of 10 s (CPU) or             15 s (GPU); summed over the tasks, for one slot. Training images/s per slot, CPU / GPU:             resnet18 33 / 4000, densenet121 12 / 1000, resnet50 12 / 1500, mobilenet_v2 30 / 3000,             efficientnet_b0 20 / 2000. The CPU figures for resnet18 and densenet121 were measured             by `make demo` on a 2-core host (two workers at once); the other CPU figures are             guesses from model size, and the GPU ones are assumed for an A100-class GPU, not             measured. Expect it to be off by a factor of two or more.

            A CIFAR-10 data.root that does not exist on this host gets a warning on stderr (exit             status 0): workers resolve it on their own hosts.

            Task ids are content hashes: validating the same spec twice gives the same ids, \
            and a launch reuses the cells that already finished.
            """
    )

    @Argument(help: ArgumentHelp("The sweep spec to check.", valueName: "spec.yaml"))
    var spec: String

    @Flag(name: .long, help: "Print the full plan as JSON instead of the summary.")
    var json = false

    @Option(name: .customLong("max-tasks"), help: "Refuse a spec that expands to more tasks than this.")
    var maxTasks: Int = SpecLimits.defaultMaxTasks

    @Flag(
        name: .customLong("builtin-ranges"),
        help: "Check values against this build's table of the sparsity engine's ranges instead of asking the engine.")
    var builtinRanges = false

    func run() async throws {
        let validated: ValidatedSweep
        let ranges = SpecRanges(builtinOnly: builtinRanges)
        defer { ranges.report() }
        do {
            // The summary needs counts, not a list of every task: it is made one task at a time.
            validated = try SpecLoader.validate(
                path: spec, limits: SpecLimits(maxTasks: maxTasks), expand: json, rangesFor: ranges.ranges(for:))
        } catch let error as SpecError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(validated.plan)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(validated.summary)
            if let estimate = ComputeEstimate(outline: validated.plan, forEachTask: { validated.forEachTask($0) }) {
                print("")
                print(estimate.text)
            }
        }
        if let warning = DataRootCheck.warning(
            plan: validated.plan, exists: { FileManager.default.fileExists(atPath: $0) })
        {
            FileHandle.standardError.write(Data((warning + "\n").utf8))
        }
    }
}
