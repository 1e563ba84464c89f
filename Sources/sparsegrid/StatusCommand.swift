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
            status; without one, reads the state directory's database.
            """)

    @Option(name: .long, help: "State directory.")
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "A coordinator's control address.")
    var coordinator: String?

    @OptionGroup var credentials: ControlCredentials

    @Flag(name: .long, help: "Refresh every 2 seconds until interrupted.")
    var watch = false

    func run() async throws {
        try await userFacing {
            repeat {
                let text = try render()
                if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(text, terminator: "")
                flushOutput()
                if watch { try await Task.sleep(nanoseconds: 2_000_000_000) }
            } while watch
        }
    }

    private func render() throws -> String {
        if let endpoint = coordinator ?? CoordinatorInfo.read(state: state)?.controlEndpoint {
            let reply = try ControlClient(endpoint: endpoint, state: state, credentials: credentials.auth)
                .request(.status, StatusRequest())
            let status = try Codec.decodeJSON(LiveStatus.self, from: Codec.encodeJSON(reply.body))
            return StatusView.live(status, endpoint: endpoint)
        }
        let store = try openReadOnlyStore(state: state)
        return try StatusView.offline(store, state: state)
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

    static func progressText(_ event: JSONValue?) -> String {
        guard let event else { return "" }
        var parts: [String] = []
        if let e = event["epoch"]?.intValue, let n = event["epochs"]?.intValue { parts.append("epoch \(e)/\(n)") }
        if let l = event["loss"]?.doubleValue { parts.append(String(format: "loss %.3f", l)) }
        if let a = event["test_acc"]?.doubleValue { parts.append(String(format: "test %.1f%%", a)) }
        return parts.joined(separator: ", ")
    }

    static func live(_ status: LiveStatus, endpoint: String) -> String {
        var out = "coordinator \(endpoint), up \(formatDuration(status.now - status.startedAt))\n"
        if status.sweeps.isEmpty { out += "no sweeps yet: `sparsegrid launch SPEC --coordinator \(endpoint)`\n" }
        for sweep in status.sweeps {
            out +=
                "sweep \(sweep.name)\(sweep.cancelled ? " (cancelled)" : ""): \(counts(sweep.counts, total: sweep.total))\n"
            if let why = sweep.waitingReason { out += "  waiting: \(why)\n" }
        }
        out += "workers: \(status.workers.filter(\.alive).count) alive\n"
        for worker in status.workers {
            let state = worker.alive ? "alive" : "dead"
            out += "  \(worker.id) (\(worker.host), \(worker.slots) slot(s), \(state))"
            if worker.running.isEmpty { out += worker.alive ? ": idle\n" : "\n" } else { out += "\n" }
            for attempt in worker.running {
                let progress = progressText(attempt.progress)
                out +=
                    "    \(attempt.label) for \(formatDuration(status.now - attempt.startedAt))"
                    + (progress.isEmpty ? "" : ", \(progress)") + "\n"
            }
        }
        return out
    }

    static func offline(_ store: SweepStore, state: String) throws -> String {
        var out = "no coordinator running on \(state); from its database:\n"
        let sweeps = try store.sweepSummaries()
        if sweeps.isEmpty { out += "no sweeps yet\n" }
        for sweep in sweeps {
            var byName: [String: Int] = [:]
            for (k, v) in sweep.counts { byName[k.rawValue] = v }
            out +=
                "sweep \(sweep.name)\(sweep.cancelled ? " (cancelled)" : ""): \(counts(byName, total: sweep.total))\n"
        }
        let workers = try store.workers()
        if !workers.isEmpty {
            out += "workers last seen:\n"
            for w in workers { out += "  \(w.id) (\(w.host)): \(w.state)\n" }
        }
        return out
    }
}
