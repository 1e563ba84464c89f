import ArgumentParser
import Foundation
import Reports
import Store
import SweepKit

/// Where a running coordinator can be found; written by `coordinator` and `run` into the
/// state directory so `status`, `cancel` and `retry` find it without flags.
struct CoordinatorInfo: Codable {
    var pid: Int32
    var workerEndpoint: String
    var dataEndpoint: String
    var controlEndpoint: String
    var startedAt: Double

    static func path(state: String) -> String { "\(state)/coordinator.json" }

    func write(state: String) throws {
        let data = try JSONEncoder().encode(self)
        try data.write(to: URL(fileURLWithPath: CoordinatorInfo.path(state: state)), options: .atomic)
    }

    /// The running coordinator of a state directory, if its process is alive.
    static func read(state: String) -> CoordinatorInfo? {
        guard let data = FileManager.default.contents(atPath: path(state: state)),
            let info = try? JSONDecoder().decode(CoordinatorInfo.self, from: data), kill(info.pid, 0) == 0
        else { return nil }
        return info
    }

    static func remove(state: String) { try? FileManager.default.removeItem(atPath: path(state: state)) }
}

func databasePath(state: String) -> String { "\(state)/sparsegrid.db" }

/// The state directory's database for reading; a clear error when there is none.
func openReadOnlyStore(state: String) throws -> SweepStore {
    guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
        throw UserError(
            "no sparsegrid state at \(state): run `sparsegrid run SPEC` (or a coordinator) first, "
                + "or pass --state DIR with the directory it used.")
    }
    return try SweepStore.openReadOnly(path: databasePath(state: state))
}

/// The state directory's database for writing, when no coordinator is running on it.
func openStore(state: String) throws -> SweepStore {
    guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
        throw UserError("no sparsegrid state at \(state): pass --state DIR with the directory your sweep used.")
    }
    return try SweepStore(path: databasePath(state: state))
}

/// How every command names a sweep: as its argument or with `--sweep NAME` (the same thing;
/// both at once must agree).
struct SweepName: ParsableArguments {
    @Argument(help: "The sweep's name (the spec's `name:`); --sweep NAME says the same.")
    var sweep: String?

    @Option(
        name: .customLong("sweep"),
        help: ArgumentHelp("The sweep's name, as an option instead of the argument.", valueName: "sweep"))
    var sweepOption: String?

    func validate() throws {
        if let sweep, let sweepOption, sweep != sweepOption {
            throw ValidationError(
                "the sweep is named twice, '\(sweep)' and --sweep '\(sweepOption)': name it once, as the argument or with --sweep."
            )
        }
    }

    /// The sweep named, or nil when none is.
    var name: String? { sweepOption ?? sweep }

    /// The sweep named, for a command that acts on one; an error naming the sweeps in `state`
    /// (when its database can be read) when none is named.
    func required(command: String, state: String) throws -> String {
        if let name { return name }
        let known = (try? openReadOnlyStore(state: state).sweepSummaries().map(\.name)) ?? []
        throw UserError(
            "name the sweep: `sparsegrid \(command) SWEEP` (or --sweep SWEEP)"
                + (known.isEmpty ? "." : "; sweeps in \(state): \(Suggestions.sample(known))."))
    }
}

/// The plan of sweep `name`; an error naming the sweeps in the state directory (with the
/// closest as a suggestion) when it is none of them.
@discardableResult
func checkSweep(_ name: String, in store: SweepStore, state: String) throws -> SweepPlan {
    if let plan = try store.plan(sweep: name) { return plan }
    let known = try store.sweepSummaries().map(\.name)
    let shown = ResultsFilters.plain(name)
    guard !known.isEmpty else {
        throw UserError("there is no sweep named '\(shown)' in \(state): it has no sweeps yet.")
    }
    throw UserError(
        "there is no sweep named '\(shown)' in \(state);"
            + Suggestions.tail(for: name, in: known, label: "Sweeps there", list: Suggestions.sample(known)))
}
