import Foundation
import Testing
import Wire

/// What a user sees when they get something wrong: one paragraph naming the problem and
/// what to do, and a non-zero exit status. Runs the real binary.
@Suite("CLI errors a user can act on", .serialized)
struct CLIErrorTests {
    @Test("a malformed spec names the file, the line and the key")
    func malformedSpec() async throws {
        let dir = Harness.tempDir("bad")
        let spec = try Harness.writeSpec(
            """
            name: bad
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
              modle: [resnet18]
            stages:
              train: {params: {epochs: 1}}
            """, in: dir)
        let out = try await Harness.run(["validate", spec])
        #expect(out.status != 0)
        #expect(out.stderr.contains("spec.yaml:4"), "stderr: \(out.stderr)")
        #expect(out.stderr.contains("modle"))
        #expect(out.stderr.contains("model"))
        #expect(!out.stderr.contains("Fatal error"))
    }

    @Test("an unknown model lists the models that exist")
    func unknownModel() async throws {
        let dir = Harness.tempDir("model")
        let spec = try Harness.writeSpec(
            """
            name: m
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
              model: [resnet19]
            stages:
              train: {params: {epochs: 1}}
            """, in: dir)
        let out = try await Harness.run(["run", spec, "--state", "\(dir)/state"])
        #expect(out.status != 0)
        for model in ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0"] {
            #expect(out.stderr.contains(model), "stderr should list \(model): \(out.stderr)")
        }
        #expect(out.stderr.contains("resnet19"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/state/sparsegrid.db"), "nothing may run")
    }

    @Test("an unreachable coordinator gets a paragraph saying what to check")
    func unreachableCoordinator() async throws {
        let dir = Harness.tempDir("unreach")
        let spec = try Harness.writeSpec(Harness.testSpec(name: "u", xs: [1], trainParams: "value: 1"), in: dir)
        // Without the control token (no coordinator ever ran on this state directory) it says so.
        let noToken = try await Harness.run(
            ["launch", spec, "--coordinator", "tcp://127.0.0.1:9", "--state", dir],
            timeout: 30)
        #expect(noToken.status != 0)
        #expect(noToken.stderr.contains("cannot read the control token"))
        _ = try ControlToken.loadOrCreate(state: dir)
        let out = try await Harness.run(
            ["launch", spec, "--coordinator", "tcp://127.0.0.1:9", "--state", dir],
            timeout: 30)
        #expect(out.status != 0)
        #expect(out.stderr.contains("no coordinator answered at tcp://127.0.0.1:9"))
        #expect(out.stderr.contains("sparsegrid coordinator"))
        let worker = try await Harness.run(
            [
                "worker", "--coordinator", "tcp://127.0.0.1:9", "--connect-timeout", "2",
                "--no-describe", "--cache", "\(dir)/w",
            ], timeout: 30)
        #expect(worker.status != 0)
        #expect(worker.stderr.contains("no coordinator answered at tcp://127.0.0.1:9 within 2 s"))
    }

    @Test("results without any state directory says how to get one")
    func noState() async throws {
        let dir = Harness.tempDir("nostate")
        let out = try await Harness.run(["results", "--state", "\(dir)/missing"])
        #expect(out.status != 0)
        #expect(out.stderr.contains("no sparsegrid state at \(dir)/missing"))
    }
}
