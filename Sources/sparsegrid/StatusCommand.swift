import ArgumentParser
import Foundation
import Store
import SweepKit
import Wire

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show sweeps, tasks by state, workers and what they run.",
        discussion: """
            Asks the running coordinator (found through --state, or given with --coordinator) for live \
            status; without one, reads the state directory's database. Name a sweep (as the argument \
            or with --sweep) to show only that one.
            """)

    @OptionGroup var access: CoordinatorAccess

    @OptionGroup var sweepName: SweepName

    @Flag(
        name: .long,
        help:
            "Refresh every 2 seconds until interrupted (on a terminal in place; otherwise a block of lines when something changes, at least every 30 s)."
    )
    var watch = false

    @Flag(name: .long, help: "No colour or redrawing even on a terminal.")
    var plain = false

    func run() async throws {
        try await userFacing {
            let output = LiveOutput(mode: LiveOutput.detectMode(plain: plain), fullScreen: true)
            repeat {
                let (text, key) = try render(colour: output.mode.colour)
                if watch {
                    output.show(text, changeKey: key)
                    try await Task.sleep(nanoseconds: 2_000_000_000)
                } else {
                    for line in text { print(line) }
                    flushOutput()
                }
            } while watch
        }
    }

    /// The lines to show, and what plain `--watch` output compares to see a change.
    private func render(colour: Bool) throws -> ([String], String) {
        let state = access.state, sweep = sweepName.name
        if let endpoint = access.endpoint {
            let reply = try access.client(endpoint).request(.status, StatusRequest())
            let status = try Codec.decodeJSON(LiveStatus.self, from: Codec.encodeJSON(reply.body))
            try StatusView.check(sweep: sweep, among: status.sweeps.map(\.name))
            return (
                StatusView.live(status, endpoint: endpoint, only: sweep, colour: colour),
                LiveView.changeKey(status, only: sweep)
            )
        }
        let store = try openReadOnlyStore(state: state)
        let lines = try StatusView.offline(store, state: state, only: sweep)
        return (lines, lines.joined(separator: "\n"))
    }
}

/// Text for `status` and the live display of `run`.
enum StatusView {
    static let order: [TaskState] = [.succeeded, .running, .ready, .pending, .failed, .cancelled]

    static func counts(_ counts: [String: Int], total: Int) -> String {
        var parts = ["\(counts["succeeded"] ?? 0)/\(total) done"]
        for state in order.dropFirst() {
            if let n = counts[state.rawValue], n > 0 { parts.append("\(n) \(state.rawValue)") }
        }
        return parts.joined(separator: ", ")
    }

    /// An error naming the sweeps there are when `sweep` is not one of them.
    static func check(sweep: String?, among names: [String]) throws {
        guard let sweep, !names.contains(sweep) else { return }
        throw UserError(
            "there is no sweep named '\(sweep)'; "
                + (names.isEmpty ? "no sweep has been launched" : "sweeps: \(names.joined(separator: ", "))"))
    }

    static func live(_ status: LiveStatus, endpoint: String, only: String? = nil, colour: Bool = false) -> [String] {
        var out = ["coordinator \(endpoint), up \(formatDuration(status.now - status.startedAt))"]
        if status.sweeps.isEmpty { out.append("no sweeps yet: `sparsegrid launch SPEC --coordinator \(endpoint)`") }
        out += LiveView.sweepLines(status, only: only, colour: colour)
        let alive = status.workers.filter(\.alive)
        out.append("workers: \(alive.count) alive, \(LiveView.slots(status)) slot(s)")
        for worker in status.workers {
            let state = worker.alive ? "alive" : "dead"
            let busy = worker.running.isEmpty ? (worker.alive ? ": idle" : "") : ": \(worker.running.count) running"
            out.append("  \(worker.id) (\(worker.host), \(worker.slots) slot(s), \(state))\(busy)")
        }
        return out
    }

    static func offline(_ store: SweepStore, state: String, only: String? = nil) throws -> [String] {
        var out = ["no coordinator running on \(state); from its database:"]
        let sweeps = try store.sweepSummaries()
        try check(sweep: only, among: sweeps.map(\.name))
        if sweeps.isEmpty { out.append("no sweeps yet") }
        for sweep in sweeps where only == nil || sweep.name == only {
            var byName: [String: Int] = [:]
            for (k, v) in sweep.counts { byName[k.rawValue] = v }
            out.append(
                "sweep \(sweep.name)\(sweep.cancelled ? " (cancelled)" : ""): \(counts(byName, total: sweep.total))")
        }
        let workers = try store.workers()
        if !workers.isEmpty {
            out.append("workers last seen:")
            for w in workers { out.append("  \(w.id) (\(w.host)): \(w.state)") }
        }
        return out
    }
}
