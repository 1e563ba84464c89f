import ArgumentParser
import Foundation
import Reports
import Store
import SweepKit

struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "List tasks with their parameters, state and final metrics.",
        discussion: """
            Reads the state directory's database directly (no coordinator needed). One row per task, \
            of every sweep unless one is named (as the argument or with --sweep). Filter with \
            --where KEY=VALUE on any parameter (model, method, seed, …; the train stage's method is \
            `dense`), --stage, and --status (or --where state=failed). A key or value that no task \
            of the sweep has is an error that lists the ones there are; filters that each match \
            tasks but together match none print an empty table and a warning on stderr.

            Examples:
              sparsegrid results quick --where model=resnet50 --where method=nm_2_4
              sparsegrid results quick --sort -accuracy
              sparsegrid results --status failed
              sparsegrid results --format csv > results.csv
              sparsegrid results --format json | jq '.[].metrics.accuracy'
            """)

    @OptionGroup var sweep: SweepName

    @Option(
        name: .long,
        help:
            "State directory. (A task state such as `failed` here filters by state instead, with the default directory.)"
    )
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "Only this stage (e.g. train, finetune).")
    var stage: String?

    @Option(
        name: .long, help: "Only tasks in this state: \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")).")
    var status: String?

    @Option(
        name: .customLong("where"), parsing: .singleValue,
        help: ArgumentHelp("A filter on a parameter, or state=STATE (repeatable).", valueName: "key=value"))
    var filters: [String] = []

    @Option(name: .long, help: "table, csv, json or markdown.")
    var format: String = "table"

    // `.unconditional`: the value may start with "-" (descending), as in --sort -accuracy.
    @Option(
        name: .customLong("sort"), parsing: .unconditional,
        help: "Sort by this column or metric, e.g. accuracy; a leading '-' sorts descending: --sort -accuracy.")
    var sortBy: String?

    func validate() throws {
        guard let f = OutputFormat(rawValue: format), [.table, .csv, .json, .markdown].contains(f) else {
            throw ValidationError(
                "--format must be table, csv, json or markdown (not '\(format)'); for LaTeX and HTML use `sparsegrid report`."
            )
        }
        for filter in filters where !filter.contains("=") {
            throw ValidationError("--where takes KEY=VALUE, e.g. --where model=resnet18 (not '\(filter)').")
        }
        if let status, TaskState(rawValue: status) == nil {
            throw ValidationError(
                "--status must be one of \(TaskState.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    func run() async throws {
        try await userFacing {
            var stateDir = state
            var states: [TaskState]? = status.flatMap(TaskState.init(rawValue:)).map { [$0] }
            // The filters as given, for the warning when together they match nothing.
            var given = (stage.map { ["--stage \($0)"] } ?? []) + (status.map { ["--status \($0)"] } ?? [])
            // `--state failed` (a task state, and no such directory) filters by state.
            if let asState = TaskState(rawValue: state), !FileManager.default.fileExists(atPath: state) {
                stateDir = defaultStateDirectory
                states = [asState]
                given.append("--state \(state)")
            }
            var params: [(key: String, value: String)] = []
            for filter in filters {
                let parts = filter.split(separator: "=", maxSplits: 1).map(String.init)
                given.append("--where \(filter)")
                if parts[0] == "state" {
                    guard let s = TaskState(rawValue: parts.count > 1 ? parts[1] : "") else {
                        throw UserError(
                            "--where state=… takes one of \(TaskState.allCases.map(\.rawValue).joined(separator: ", "))."
                        )
                    }
                    states = [s]
                } else {
                    params.append((parts[0], parts.count > 1 ? parts[1] : ""))
                }
            }
            let store = try openReadOnlyStore(state: stateDir)
            let name = sweep.name
            if let name { try checkSweep(name, in: store, state: stateDir) }
            // Every task the filters choose from: a key or value none of them has is a mistake.
            var scope: [ResultRow]? = nil
            if stage != nil || !params.isEmpty {
                let all = try store.resultRows(sweep: name)
                if let problem = ResultsFilters.problem(stage: stage, filters: params, among: all) {
                    throw UserError(problem)
                }
                scope = all
            }
            let rows = try store.resultRows(sweep: name, stage: stage, states: states, where: params)
            print(
                try Reports.renderResults(rows, format: OutputFormat(rawValue: format)!, sortBy: sortBy),
                terminator: "")
            if rows.isEmpty {
                let total = try scope?.count ?? store.resultRows(sweep: name).count
                let place = name.map { "sweep \(ResultsFilters.plain($0))" } ?? stateDir
                printErr(
                    total == 0
                        ? "warning: there are no tasks in \(place) yet."
                        : "warning: no task matches \(given.map(ResultsFilters.plain).joined(separator: " ")) "
                            + "(of \(total) task(s) in \(place)).")
            }
        }
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a sweep's comparison tables and figures.",
        discussion: """
            The tables come from the spec's `report:` section (default: the study's Table I, accuracy and \
            latency, and Table II, MACs and memory), aggregated over seeds as mean ± std (n). With --out, \
            writes report.html (tables and four SVG figures inline, no network), the tables in every \
            format, and figures/*.svg. With --reference, the paper's numbers stand beside the measured ones.

            Example:
              sparsegrid report quick --reference sweeps/reference/tatarnikova-raskopina.csv --out report/
            """)

    @OptionGroup var sweep: SweepName

    @Option(name: .long, help: "State directory.")
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "table, markdown, csv, json, latex or html.")
    var format: String = "table"

    @Option(name: .long, help: "Write the full report (HTML, every table format, SVG figures) into this directory.")
    var out: String?

    @Option(
        name: .long, help: "A CSV of claimed numbers to compare with (e.g. sweeps/reference/tatarnikova-raskopina.csv)."
    )
    var reference: String?

    @Option(
        name: .long,
        help: """
            How speedups are written as percentages, overriding every table's `speedup_percent`: gain = \
            (speedup - 1) x 100, reduction = (1 - 1/speedup) x 100 (the study's latency reduction).
            """)
    var speedupPercent: String?

    func validate() throws {
        if OutputFormat(rawValue: format) == nil {
            throw ValidationError(
                "--format must be one of \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        if let speedupPercent, ReportSpec.SpeedupPercent(rawValue: speedupPercent) == nil {
            throw ValidationError(
                "--speedup-percent must be gain or reduction (not '\(speedupPercent)'): gain = (speedup - 1) x 100, reduction = (1 - 1/speedup) x 100."
            )
        }
    }

    func run() async throws {
        try await userFacing {
            let name = try sweep.required(command: "report", state: state)
            let store = try openReadOnlyStore(state: state)
            let plan = try checkSweep(name, in: store, state: state)
            let rows = try store.resultRows(sweep: name)
            let ref = try reference.map { try ReferenceTable.load(csvPath: $0) }
            let specs = Reports.specs(
                plan.reports, speedupPercent: speedupPercent.flatMap(ReportSpec.SpeedupPercent.init(rawValue:)))
            if let out {
                let paths = try Reports.writeReport(sweep: name, rows: rows, specs: specs, reference: ref, to: out)
                for path in paths { print(path) }
            } else {
                print(
                    Reports.renderReport(
                        sweep: name, rows: rows, specs: specs, format: OutputFormat(rawValue: format)!,
                        reference: ref), terminator: "")
            }
        }
    }
}
