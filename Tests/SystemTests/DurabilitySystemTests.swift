import Foundation
import Testing

/// `--durability full|normal` on `coordinator` and `run`, through the real binary: the start
/// line reports the `PRAGMA synchronous` the coordinator's store reads back (so a flag that is
/// parsed but not passed on shows up as the wrong pragma), and a bad value is refused with the
/// values there are.
@Suite("--durability on coordinator and run")
struct DurabilitySystemTests {
    /// Starts `coordinator` with `extra`, returns its start block's durability line.
    static func coordinatorLine(_ extra: [String]) async throws -> String {
        let dir = Harness.tempDir("durability")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "\(dir)/coordinator.log"
        let coordinator = try Harness.start(
            ["coordinator", "--state", "\(dir)/state", "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*"]
                + extra, log: log)
        defer { Harness.kill9(coordinator) }
        try await Harness.waitFor("the coordinator's durability line") {
            Harness.read(log).contains("  durability ") || !coordinator.isRunning
        }
        await Harness.stop(coordinator)
        let text = Harness.read(log)
        return try #require(
            text.split(separator: "\n").first { $0.hasPrefix("  durability ") }.map(String.init), "\(text)")
    }

    @Test("coordinator: full by default, normal when asked, each the PRAGMA in effect")
    func coordinatorStartLine() async throws {
        let byDefault = try await Self.coordinatorLine([])
        #expect(byDefault.contains("full (PRAGMA synchronous = FULL: a commit survives an OS crash"), "\(byDefault)")
        let full = try await Self.coordinatorLine(["--durability", "full"])
        #expect(full.contains("full (PRAGMA synchronous = FULL"), "\(full)")
        let normal = try await Self.coordinatorLine(["--durability", "normal"])
        #expect(
            normal.contains("normal (PRAGMA synchronous = NORMAL: a commit survives a process crash only"), "\(normal)")
    }

    @Test("run --durability normal: the in-process coordinator's store has NORMAL, and the sweep completes")
    func runFlag() async throws {
        let dir = Harness.tempDir("durability-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = try Harness.writeSpec(
            """
            name: durable
            engine: null
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
              i: [0, 1, 2]
            stages:
              work:
                params: {}
            retries: 0

            """, in: dir)
        for (flag, pragma) in [("normal", "NORMAL"), ("full", "FULL")] {
            let state = "\(dir)/state-\(flag)"
            let out = try await Harness.run(
                ["run", spec, "--state", state, "--workers", "1", "--plain", "--no-http", "--durability", flag])
            #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
            #expect(out.stdout.contains("(durability \(flag))"), "\(out.stdout)")
            let log = Harness.read("\(state)/logs/coordinator.log")
            #expect(log.contains("durability \(flag) (PRAGMA synchronous = \(pragma)"), "\(log)")
            let store = try Harness.store(state)
            #expect(try store.resultRows(sweep: "durable").count == 3)
        }
    }

    @Test("a bad value is refused before anything starts, naming the values there are")
    func badValue() async throws {
        for command in [["coordinator"], ["run", "no-such-spec.yaml"]] {
            let dir = Harness.tempDir("durability-bad")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let out = try await Harness.run(
                command + ["--state", "\(dir)/state", "--durability", "sometimes"], timeout: 30)
            #expect(out.status != 0)
            #expect(out.stderr.contains("'sometimes'"), "\(command): \(out.stderr)")
            #expect(out.stderr.contains("--durability"), "\(command): \(out.stderr)")
            #expect(out.stderr.contains("'full'") && out.stderr.contains("'normal'"), "\(command): \(out.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"), "nothing was created")
        }
    }
}
