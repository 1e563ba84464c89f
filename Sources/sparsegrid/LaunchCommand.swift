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
            if plan.tasks.count > LaunchTasks.partSize {
                printErr(
                    "sweep \(plan.name): \(plan.tasks.count.grouped) tasks planned in "
                        + String(format: "%.1f", Date().timeIntervalSince(started)) + " s; sending them")
            }
            let reply = try client.launch(plan, progress: LaunchProgress(plan: plan))
            let n = { (key: String) in reply.body[key]?.intValue ?? 0 }
            print(
                "sweep \(plan.name): \(n("new")) new, \(n("reused")) reused, \(n("rerun")) to run again, \(n("total")) total"
            )
        }
    }
}

extension LaunchCommand {
    /// How long `launch` waits for the coordinator's answer to `launch_end` (the merge of
    /// every task into the database): 10 minutes plus 1 ms per task (a whole launch took 0.3 ms
    /// per task with a debug build at load 6–9; bench/RESULTS.md, "A million tasks"). Each
    /// part has a wait of its own (`ControlClient.partTimeout`).
    static func replyTimeout(tasks: Int) -> Double { 600 + Double(tasks) / 1000 }
}

extension ControlClient {
    /// A part of `LaunchTasks.partSize` tasks is decoded and staged in one turn of the
    /// coordinator's loop: seconds at most, unless another launch is being merged.
    static let partTimeout = 600.0

    /// Sends `plan` as a launch in parts (`launch_begin`, a `launch_tasks` per
    /// `LaunchTasks.partSize` tasks, `launch_end`) and returns the answer to `launch_end`.
    /// `progress` is told after each part.
    func launch(_ plan: SweepPlan, progress: LaunchProgress? = nil) throws -> ControlReply {
        let begun = try request(.launchBegin, LaunchBegin(plan: plan, tasks: plan.tasks.count), timeout: 60)
        guard let session = begun.body["session"]?.stringValue else {
            throw UserError(
                "the coordinator began the launch without a session id; is it the same version as this CLI?")
        }
        var first = 0
        while first < plan.tasks.count {
            let end = min(first + LaunchTasks.partSize, plan.tasks.count)
            _ = try request(
                .launchTasks, LaunchTasks(session: session, first: first, tasks: Array(plan.tasks[first..<end])),
                timeout: Self.partTimeout)
            first = end
            progress?.sent(first)
        }
        progress?.storing()
        return try request(
            .launchEnd, LaunchEnd(session: session), timeout: LaunchCommand.replyTimeout(tasks: plan.tasks.count))
    }
}

/// What `launch` and `run` print on stderr while a big plan goes to the coordinator: a line at
/// most every 2 s while parts go out, and one when the coordinator starts storing them. Quiet
/// for a plan of one part.
final class LaunchProgress {
    private let total: Int
    private let name: String
    private var lastPrint = Date()

    init(plan: SweepPlan) {
        total = plan.tasks.count
        name = plan.name
    }

    private var quiet: Bool { total <= LaunchTasks.partSize }

    func sent(_ count: Int) {
        guard !quiet, count < total, Date().timeIntervalSince(lastPrint) >= 2 else { return }
        lastPrint = Date()
        printErr("sweep \(name): \(count.grouped) of \(total.grouped) tasks sent")
    }

    func storing() {
        guard !quiet else { return }
        printErr(
            "sweep \(name): all \(total.grouped) tasks sent; the coordinator is storing them "
                + "(waiting up to \(Int(LaunchCommand.replyTimeout(tasks: total))) s)")
    }
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
