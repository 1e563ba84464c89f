import ArgumentParser
import Coordinator
import Foundation
import SweepKit
import Wire

struct LaunchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "Submit a sweep spec to a running coordinator.",
        discussion: """
            Launching is idempotent: finished cells are reused, failed or missing cells run, new grid \
            values add only new cells. Prints the sweep name and the task counts (new / reused / total).

            The coordinator is the one running on --state (default ./.sparsegrid), or the one at \
            --coordinator ADDR (e.g. another host's, with --curve-key and --server-key).
            """)

    @Argument(help: "The sweep spec (YAML), e.g. sweeps/quick.yaml.")
    var spec: String

    @OptionGroup var access: CoordinatorAccess

    @Option(name: .customLong("max-tasks"), help: "Refuse a spec that expands to more tasks than this.")
    var maxTasks: Int = SpecLimits.defaultMaxTasks

    @Flag(
        name: .customLong("builtin-ranges"),
        help: "Check values against this build's table of the sparsity engine's ranges instead of asking the engine.")
    var builtinRanges = false

    func run() async throws {
        try await userFacing {
            let started = Date()
            let plan = try loadPlan(spec, maxTasks: maxTasks, ranges: SpecRanges(builtinOnly: builtinRanges))
            let client = try access.client(try access.requiredEndpoint())
            // A quick question first, so an absent coordinator is reported in seconds; the launch
            // itself may take minutes (it commits every task of a big sweep before it answers),
            // so its wait grows with the sweep rather than being one figure a big launch can pass.
            _ = try client.request(.status, StatusRequest(), timeout: 8)
            let timeout = Self.replyTimeout(tasks: plan.tasks.count)
            if plan.tasks.count >= 10_000 {
                printErr(
                    "sweep \(plan.name): \(plan.tasks.count) tasks planned in "
                        + String(format: "%.1f", Date().timeIntervalSince(started))
                        + " s; the coordinator is storing them (waiting up to \(Int(timeout)) s)")
            }
            let reply = try client.request(.launch, LaunchRequest(plan: plan), timeout: timeout)
            let n = { (key: String) in reply.body[key]?.intValue ?? 0 }
            print(
                "sweep \(plan.name): \(n("new")) new, \(n("reused")) reused, \(n("rerun")) to run again, \(n("total")) total"
            )
        }
    }
}

extension LaunchCommand {
    /// How long `launch` waits for the coordinator's answer: 10 minutes plus 1 ms per task
    /// (a whole launch took 0.3 ms per task with a debug build at load 6–9; bench/RESULTS.md,
    /// "A million tasks").
    static func replyTimeout(tasks: Int) -> Double { 600 + Double(tasks) / 1000 }
}

/// The sweep `cancel` and `retry` act on, and how to reach it: its running coordinator (found
/// through --state or given with --coordinator), or, when none runs, its database directly.
struct SweepTarget: ParsableArguments {
    @OptionGroup var sweep: SweepName

    @OptionGroup var access: CoordinatorAccess

    var state: String { access.state }

    /// Sends `type` about sweep `name` to the running coordinator and returns its reply, or nil
    /// when none runs.
    func askCoordinator(_ type: MessageType, name: String) throws -> ControlReply? {
        guard let endpoint = access.endpoint else { return nil }
        return try access.client(endpoint).request(type, SweepRequest(sweep: name))
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a sweep: running attempts are stopped, waiting tasks will not run.")

    @OptionGroup var target: SweepTarget

    func run() async throws {
        try await userFacing {
            let name = try target.sweep.required(command: "cancel", state: target.state)
            if try target.askCoordinator(.cancelSweep, name: name) != nil {
                print("sweep \(name) cancelled")
            } else {
                _ = try openStore(state: target.state)  // a clear error when there is no state here
                let n = try OfflineControl.cancel(
                    databasePath: databasePath(state: target.state), sweep: name,
                    now: Date().timeIntervalSince1970)
                print("sweep \(name) cancelled (\(n) task(s) will not run)")
            }
        }
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run a sweep's failed, lost and cancelled tasks again, with a fresh retry budget.")

    @OptionGroup var target: SweepTarget

    func run() async throws {
        try await userFacing {
            let name = try target.sweep.required(command: "retry", state: target.state)
            if let reply = try target.askCoordinator(.retrySweep, name: name) {
                print("sweep \(name): \(reply.body["retried"]?.intValue ?? 0) task(s) will run again")
            } else {
                _ = try openStore(state: target.state)
                let n = try OfflineControl.retry(
                    databasePath: databasePath(state: target.state), sweep: name,
                    now: Date().timeIntervalSince1970)
                print(
                    "sweep \(name): \(n) task(s) will run again when a coordinator runs it "
                        + "(`sparsegrid run` or `sparsegrid coordinator`)")
            }
        }
    }
}
