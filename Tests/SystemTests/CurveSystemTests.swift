import Foundation
import Store
import Testing

/// A coordinator that requires CURVE: a worker with an authorized key runs tasks (and moves a
/// checkpoint over the encrypted artifact socket); a worker with any other key never gets in.
/// Loopback stands in for the network here.
@Suite("Workers authenticate with CURVE", .serialized)
struct CurveSystemTests {
    @Test("an authorized worker runs the sweep; an unknown key is refused")
    func curve() async throws {
        let dir = Harness.tempDir("curve")
        let state = "\(dir)/state"
        for name in ["coord", "good", "stranger"] {
            let made = try await Harness.run(["keygen", "\(dir)/\(name)"])
            #expect(made.status == 0, "\(made.stderr)")
        }
        #expect(try await Harness.run(["keygen", "\(dir)/coord"]).status != 0, "keys are never overwritten")
        try FileManager.default.copyItem(atPath: "\(dir)/good.pub", toPath: "\(dir)/authorized.txt")
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "sealed", xs: [1], trainParams: "artifact_bytes: 100000", finetune: "value: 2"),
            in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--curve-key", "\(dir)/coord.key",
                "--authorized-keys", "\(dir)/authorized.txt",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)

        let stranger = try await Harness.run(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "S",
                "--curve-key", "\(dir)/stranger.key", "--server-key", "\(dir)/coord.pub",
                "--engine", Harness.testEngine, "--only", "test", "--cache", "\(dir)/S",
                "--connect-timeout", "2",
            ], timeout: 30)
        #expect(stranger.status != 0)
        #expect(stranger.stderr.contains("refused this worker's CURVE key"), "\(stranger.stderr)")
        #expect(Harness.read("\(dir)/coordinator.log").contains("refused a connection"))

        let good = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "G",
                "--curve-key", "\(dir)/good.key", "--server-key", "\(dir)/coord.pub",
                "--engine", Harness.testEngine, "--only", "test", "--cache", "\(dir)/G",
            ],
            log: "\(dir)/G.log")
        defer { Harness.kill9(good) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("the sweep to finish over CURVE") {
            let rows = try store.resultRows(sweep: "sealed")
            return rows.count == 2 && rows.allSatisfy { $0.state == .succeeded }
        }
        #expect(try store.workers().map(\.id) == ["G"])
    }

    /// Fault injected: a control client with no token and no key, one with a worker's key, and
    /// one with a key not on the client list. Proves: only an allow-listed client key (or the
    /// local token) can launch, and a worker key does not open the control socket.
    @Test("the control socket takes CURVE clients from its own allow-list: a remote launch needs no token")
    func curveControl() async throws {
        let dir = Harness.tempDir("curve-control")
        let state = "\(dir)/state"
        for name in ["coord", "worker", "laptop", "stranger"] {
            #expect(try await Harness.run(["keygen", "\(dir)/\(name)"]).status == 0)
        }
        try FileManager.default.copyItem(atPath: "\(dir)/worker.pub", toPath: "\(dir)/workers.txt")
        try FileManager.default.copyItem(atPath: "\(dir)/laptop.pub", toPath: "\(dir)/clients.txt")
        let spec = try Harness.writeSpec(Harness.testSpec(name: "remote", xs: [1], trainParams: "value: 1"), in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--curve-key", "\(dir)/coord.key",
                "--authorized-keys", "\(dir)/workers.txt",
                "--authorized-clients", "\(dir)/clients.txt",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        // The "laptop" has no state directory of the coordinator's, so no token: only its key.
        let elsewhere = "\(dir)/laptop-state"
        let launched = try await Harness.run(
            [
                "launch", spec, "--coordinator", endpoints.control, "--state", elsewhere,
                "--curve-key", "\(dir)/laptop.key", "--server-key", "\(dir)/coord.pub",
            ],
            timeout: 30)
        #expect(launched.status == 0, "\(launched.stderr)")
        #expect(launched.stdout.contains("sweep remote: 1 new"))
        for key in ["worker", "stranger"] {
            let refused = try await Harness.run(
                [
                    "status", "--coordinator", endpoints.control, "--state", elsewhere,
                    "--curve-key", "\(dir)/\(key).key", "--server-key", "\(dir)/coord.pub",
                ],
                timeout: 30)
            #expect(refused.status != 0, "a \(key) key must not open the control socket")
        }
        let noKey = try await Harness.run(
            ["status", "--coordinator", endpoints.control, "--state", elsewhere],
            timeout: 30)
        #expect(noKey.status != 0)
        #expect(noKey.stderr.contains("control token"))
    }

    @Test("a non-loopback bind without CURVE is refused with what to do")
    func refusesPlainNetworkBind() async throws {
        let dir = Harness.tempDir("plain")
        let out = try await Harness.run(
            ["coordinator", "--state", "\(dir)/state", "--bind", "tcp://0.0.0.0:0"],
            timeout: 30)
        #expect(out.status != 0)
        #expect(out.stderr.contains("refusing to bind the worker socket to tcp://0.0.0.0:0"))
        #expect(out.stderr.contains("--curve-key"))
    }
}
