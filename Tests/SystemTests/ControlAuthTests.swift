import Foundation
import SweepKit
import Testing
import Wire
import ZeroMQ

/// The control socket takes commands (launch, cancel, retry). Any local process can connect to
/// it, so a command must prove that it comes from someone who can read the state directory
/// (the CLI reads a secret from there). These tests are what a client WITHOUT the secret can do:
/// connect to the control address the coordinator wrote into coordinator.json and send
/// well-formed commands. They must change nothing; the CLI must keep working.
@Suite("The control socket refuses commands from clients without the state directory's secret", .serialized)
struct ControlAuthTests {
    @Test(
        "a raw DEALER without credentials sends cancel_sweep to the control address: the sweep is not cancelled; `sparsegrid cancel` still cancels it"
    )
    func cancelWithoutCredentials() async throws {
        let scene = try await ControlScene(name: "auth-cancel")
        defer { scene.coordinator.stop() }
        let reply = await scene.rawRequest(.cancelSweep, SweepRequest(sweep: "guarded"))
        #expect(reply?.ok != true, "the coordinator accepted cancel_sweep from a client without credentials")
        #expect(try scene.cancelled() == false, "the sweep was cancelled by a client without credentials")
        let states = try scene.taskStates()
        #expect(states.allSatisfy { $0 != "cancelled" }, "tasks were cancelled: \(states)")

        let cli = try await Harness.run(["cancel", "guarded", "--state", scene.coordinator.state], timeout: 30)
        #expect(cli.status == 0, "the CLI could not cancel: \(cli.stderr)")
        #expect(try scene.cancelled() == true, "the CLI's cancel did not take effect")
    }

    @Test("a raw DEALER without credentials sends launch with a valid plan: no sweep is created and no task is queued")
    func launchWithoutCredentials() async throws {
        let scene = try await ControlScene(name: "auth-launch")
        defer { scene.coordinator.stop() }
        let plan = try SpecLoader.plan(yaml: ProofSpecs.null(name: "intruder", a: 2, b: 2), file: "intruder.yaml")
        let reply = await scene.rawRequest(.launch, LaunchRequest(plan: plan))
        #expect(reply?.ok != true, "the coordinator accepted launch from a client without credentials")
        let sweeps = try SQL.strings(scene.coordinator.state, "SELECT name FROM sweeps ORDER BY name")
        #expect(sweeps == ["guarded"], "sweeps after the unauthenticated launch: \(sweeps)")
    }

    @Test("a raw DEALER without credentials sends retry_sweep for a cancelled sweep: it stays cancelled")
    func retryWithoutCredentials() async throws {
        let scene = try await ControlScene(name: "auth-retry")
        defer { scene.coordinator.stop() }
        let cli = try await Harness.run(["cancel", "guarded", "--state", scene.coordinator.state], timeout: 30)
        #expect(cli.status == 0, "the CLI could not cancel: \(cli.stderr)")
        #expect(try scene.cancelled() == true)
        let reply = await scene.rawRequest(.retrySweep, SweepRequest(sweep: "guarded"))
        #expect(reply?.ok != true, "the coordinator accepted retry_sweep from a client without credentials")
        #expect(try scene.cancelled() == true, "the sweep was un-cancelled by a client without credentials")
        let states = try scene.taskStates()
        #expect(states.allSatisfy { $0 == "cancelled" }, "task states: \(states)")
    }
}

/// A coordinator with one launched sweep, `guarded` (null engine, no worker: its tasks wait).
final class ControlScene {
    let coordinator: CoordinatorUnderTest
    private let context: Context

    init(name: String) async throws {
        let dir = Harness.tempDir(name)
        coordinator = try await CoordinatorUnderTest(dir: dir)
        context = try Context()
        let spec = try Harness.writeSpec(ProofSpecs.null(name: "guarded", a: 2, b: 2), in: dir)
        try await coordinator.launch(spec)
    }

    /// Sends one command from a fresh DEALER with nothing but the address; the reply, if any.
    func rawRequest<T: Encodable>(_ type: MessageType, _ header: T) async -> ControlReply? {
        guard let dealer = try? RawDealer(context, coordinator.control) else { return nil }
        dealer.send(type, header)
        guard let envelope = await dealer.receive(.reply, timeout: 3) else { return nil }
        let reply = try? envelope.decode(ControlReply.self)
        print("control reply to a client without credentials: ok=\(reply?.ok.description ?? "?") \(reply?.error ?? "")")
        return reply
    }

    func cancelled() throws -> Bool {
        try SQL.int(coordinator.state, "SELECT cancelled FROM sweeps WHERE name = 'guarded'") != 0
    }

    func taskStates() throws -> [String] {
        try SQL.strings(coordinator.state, "SELECT state FROM tasks WHERE sweep = 'guarded' ORDER BY id")
    }
}
