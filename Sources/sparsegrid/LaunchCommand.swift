import ArgumentParser
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
            """)

    @Argument(help: "The sweep spec (YAML), e.g. sweeps/quick.yaml.")
    var spec: String

    @Option(name: .long, help: "The coordinator's control address.")
    var coordinator: String = defaultControlEndpoint

    func run() async throws {
        try await userFacing {
            let plan = try loadPlan(spec)
            let client = try ControlClient(endpoint: coordinator)
            let reply = try client.request(.launch, LaunchRequest(plan: plan), timeout: 10)
            let n = { (key: String) in reply.body[key]?.intValue ?? 0 }
            print("sweep \(plan.name): \(n("new")) new, \(n("reused")) reused, \(n("rerun")) to run again, \(n("total")) total")
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a sweep: running attempts are stopped, waiting tasks will not run.")

    @Argument(help: "The sweep's name.")
    var name: String

    @Option(name: .long, help: "State directory (used to find its running coordinator, or edited directly when none runs).")
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "The coordinator's control address (default: the one running on --state).")
    var coordinator: String?

    func run() async throws {
        try await userFacing {
            if let endpoint = coordinator ?? CoordinatorInfo.read(state: state)?.controlEndpoint {
                _ = try ControlClient(endpoint: endpoint).request(.cancelSweep, SweepRequest(sweep: name))
                print("sweep \(name) cancelled")
            } else {
                let store = try openStore(state: state)
                let n = try store.cancel(sweep: name, now: Date().timeIntervalSince1970)
                print("sweep \(name) cancelled (\(n) task(s) will not run)")
            }
        }
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run a sweep's failed, lost and cancelled tasks again, with a fresh retry budget.")

    @Argument(help: "The sweep's name.")
    var name: String

    @Option(name: .long, help: "State directory (used to find its running coordinator, or edited directly when none runs).")
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "The coordinator's control address (default: the one running on --state).")
    var coordinator: String?

    func run() async throws {
        try await userFacing {
            if let endpoint = coordinator ?? CoordinatorInfo.read(state: state)?.controlEndpoint {
                let reply = try ControlClient(endpoint: endpoint).request(.retrySweep, SweepRequest(sweep: name))
                print("sweep \(name): \(reply.body["retried"]?.intValue ?? 0) task(s) will run again")
            } else {
                let store = try openStore(state: state)
                let n = try store.retryFailed(sweep: name, now: Date().timeIntervalSince1970)
                print("sweep \(name): \(n) task(s) will run again when a coordinator runs it "
                    + "(`sparsegrid run` or `sparsegrid coordinator`)")
            }
        }
    }
}
