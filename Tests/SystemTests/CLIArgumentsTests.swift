import Foundation
import Testing

/// The CLI's arguments work the same way everywhere: one way to name a sweep, `--state` and
/// `--coordinator` for every command that talks to a coordinator, `--sort -accuracy`,
/// `--where` checked against the tasks there are, `--version`. Runs the real binary.
@Suite("CLI arguments are consistent", .serialized)
struct CLIArgumentsTests {
    /// A finished sweep `args` of four test-engine tasks (models resnet18 and resnet50 ×
    /// accuracy 10 and 70), made once by `sparsegrid run`; its state directory.
    static let finished = Task<String, Error> {
        let dir = Harness.tempDir("args")
        let spec = try Harness.writeSpec(Self.spec(name: "args"), in: dir)
        let state = "\(dir)/state"
        let out = try await Harness.run(
            ["run", spec, "--state", state, "--workers", "1", "--engine", Harness.testEngine, "--plain"])
        guard out.status == 0 else { throw HarnessError("run failed: \(out.stdout)\n\(out.stderr)") }
        return state
    }

    static func spec(name: String) -> String {
        """
        name: \(name)
        engine: test
        data: {dataset: synthetic, train: 8, test: 8}
        grid:
          model: [resnet18, resnet50]
          value: [10, 70]
        stages:
          train:
            params: {sleep: 0}
        retries: 0

        """
    }

    /// `results … --format json`, parsed.
    static func tasks(_ arguments: [String]) async throws -> [[String: Any]] {
        let out = try await Harness.run(["results"] + arguments + ["--format", "json"])
        #expect(out.status == 0, "results \(arguments): \(out.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
    }

    static func accuracies(_ tasks: [[String: Any]]) -> [Double] {
        tasks.compactMap { ($0["metrics"] as? [String: Any])?["accuracy"] as? Double }
    }

    @Test("--sort -accuracy sorts descending, like --sort=-accuracy; --sort accuracy ascending")
    func sortDescending() async throws {
        let state = try await Self.finished.value
        let spaced = try await Self.tasks(["--sweep", "args", "--state", state, "--sort", "-accuracy"])
        #expect(Self.accuracies(spaced) == [70, 70, 10, 10])
        let joined = try await Self.tasks(["--sweep", "args", "--state", state, "--sort=-accuracy"])
        #expect(Self.accuracies(joined) == [70, 70, 10, 10])
        let ascending = try await Self.tasks(["--sweep", "args", "--state", state, "--sort", "accuracy"])
        #expect(Self.accuracies(ascending) == [10, 10, 70, 70])
        let help = try await Harness.run(["results", "--help"])
        #expect(help.stdout.contains("--sort -accuracy"), "the help shows the form that works: \(help.stdout)")
        let typo = try await Harness.run(["results", "--sweep", "args", "--state", state, "--sort", "-acuracy"])
        #expect(typo.status != 0)
        #expect(typo.stderr.contains("Did you mean '-accuracy'?"), "\(typo.stderr)")
    }

    @Test("--where with a value no task has, or an unknown key, is a one-line error with suggestions")
    func whereChecked() async throws {
        let state = try await Self.finished.value
        let value = try await Harness.run(["results", "--sweep", "args", "--state", state, "--where", "model=resnet5"])
        #expect(value.status == 1)
        #expect(value.stdout.isEmpty, "no table: \(value.stdout)")
        #expect(value.stderr.hasPrefix("error: --where model=resnet5: no task has model `resnet5`;"), "\(value.stderr)")
        #expect(value.stderr.contains("did you mean `resnet50`?"))
        #expect(value.stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1)

        let key = try await Harness.run(["results", "--state", state, "--where", "foo=bar"])
        #expect(key.status == 1)
        #expect(key.stderr.contains("--where foo=bar: no task has a parameter `foo`;"), "\(key.stderr)")
        for valid in ["method", "model", "state", "value"] { #expect(key.stderr.contains(valid)) }
        let typo = try await Harness.run(["results", "--state", state, "--where", "modle=resnet50"])
        #expect(typo.stderr.contains("did you mean `model`?"), "\(typo.stderr)")
        let stage = try await Harness.run(["results", "--state", state, "--stage", "trian"])
        #expect(stage.status == 1)
        #expect(stage.stderr.contains("did you mean `train`?"), "\(stage.stderr)")
        let sweep = try await Harness.run(["results", "--sweep", "arsg", "--state", state])
        #expect(sweep.status == 1)
        #expect(sweep.stderr.contains("did you mean `args`?"), "\(sweep.stderr)")

        let match = try await Self.tasks([
            "--sweep", "args", "--state", state, "--where", "model=resnet50", "--where", "value=70",
        ])
        #expect(match.count == 1)
    }

    @Test("filters that each match tasks but together match none warn on stderr")
    func emptyMatchWarns() async throws {
        let state = try await Self.finished.value
        let out = try await Harness.run(
            ["results", "--sweep", "args", "--state", state, "--status", "failed", "--where", "model=resnet50"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(
            out.stderr.contains(
                "warning: no task matches --status failed --where model=resnet50 (of 4 task(s) in sweep args)"),
            "\(out.stderr)")
        let some = try await Harness.run(["results", "--sweep", "args", "--state", state, "--where", "model=resnet50"])
        #expect(some.status == 0)
        #expect(!some.stderr.contains("warning"), "\(some.stderr)")
    }

    @Test("every command names the sweep the same way: as the argument or with --sweep")
    func sweepNamedAlike() async throws {
        let state = try await Self.finished.value
        #expect(try await Self.tasks(["args", "--state", state]).count == 4)
        #expect(try await Self.tasks(["--sweep", "args", "--state", state]).count == 4)
        #expect(try await Self.tasks(["args", "--sweep", "args", "--state", state]).count == 4)
        for form in [["args"], ["--sweep", "args"]] {
            let report = try await Harness.run(["report"] + form + ["--state", state, "--format", "json"])
            #expect(report.status == 0, "report \(form): \(report.stderr)")
            #expect(report.stdout.contains("args"))
            // Retry on a finished sweep (no coordinator runs on it: the database directly) runs nothing.
            let retry = try await Harness.run(["retry"] + form + ["--state", state])
            #expect(retry.status == 0, "retry \(form): \(retry.stderr)")
            #expect(retry.stdout.contains("sweep args: 0 task(s) will run again"), "\(retry.stdout)")
        }
        for form in [["args"], ["--sweep", "args"]] {
            let status = try await Harness.run(["status"] + form + ["--state", state])
            #expect(status.status == 0, "status \(form): \(status.stderr)")
            #expect(status.stdout.contains("sweep args: 4/4 done"), "status \(form): \(status.stdout)")
        }
        for command in ["results", "report", "cancel", "retry", "status"] {
            let twice = try await Harness.run([command, "args", "--sweep", "other", "--state", state])
            #expect(twice.status != 0, "\(command)")
            #expect(twice.stderr.contains("the sweep is named twice"), "\(command): \(twice.stderr)")
            let help = try await Harness.run([command, "--help"])
            #expect(help.stdout.contains("--sweep <sweep>"), "\(command): \(help.stdout)")
            #expect(help.stdout.contains("<sweep>"), "\(command): \(help.stdout)")
        }
        for command in ["report", "cancel", "retry"] {
            let missing = try await Harness.run([command, "--state", state])
            #expect(missing.status == 1, "\(command)")
            #expect(
                missing.stderr.contains("name the sweep: `sparsegrid \(command) SWEEP` (or --sweep SWEEP); sweeps in"),
                "\(command): \(missing.stderr)")
        }
    }

    @Test("launch, cancel, retry and dashboard find the coordinator through --state, or take --coordinator")
    func coordinatorFoundAlike() async throws {
        let dir = Harness.tempDir("access")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Self.spec(name: "reached"), in: dir)
        // No coordinator on the state directory: launch says so at once, naming both options.
        let none = try await Harness.run(["launch", spec, "--state", state], timeout: 30)
        #expect(none.status == 1)
        #expect(none.stderr.contains("no coordinator is running on \(state)"), "\(none.stderr)")
        #expect(none.stderr.contains("--coordinator ADDR"))

        let coordinator = try Harness.start(
            ["coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*"],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        // On a port of its choosing: only --state can find it.
        let launched = try await Harness.run(["launch", spec, "--state", state], timeout: 60)
        #expect(launched.status == 0, "\(launched.stderr)")
        #expect(launched.stdout.contains("sweep reached: 4 new"), "\(launched.stdout)")
        let byAddress = try await Harness.run(
            ["launch", spec, "--state", state, "--coordinator", endpoints.control], timeout: 60)
        #expect(byAddress.status == 0, "\(byAddress.stderr)")
        #expect(byAddress.stdout.contains("0 new, 4 reused"), "\(byAddress.stdout)")
        let cancel = try await Harness.run(
            ["cancel", "--sweep", "reached", "--state", state, "--coordinator", endpoints.control], timeout: 30)
        #expect(cancel.status == 0, "\(cancel.stderr)")
        #expect(cancel.stdout.contains("sweep reached cancelled"))
        let retry = try await Harness.run(["retry", "reached", "--state", state], timeout: 30)
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(retry.stdout.contains("sweep reached: 4 task(s) will run again"), "\(retry.stdout)")
        // dashboard: live from the coordinator --state names, and --coordinator, when given,
        // is the one asked (a wrong address: not live, though the state directory names one).
        for (extra, live) in [
            ([], true), (["--coordinator", endpoints.control], true),
            (["--coordinator", "tcp://127.0.0.1:\(try Harness.unusedPort())"], false),
        ] {
            let (dashboard, http) = try await DashboardSystemTests.startDashboard(
                ["--state", state, "--http", "127.0.0.1:0"] + extra, log: "\(dir)/dashboard.log")
            defer { Harness.kill9(dashboard) }
            let sweeps = try await http.json("/api/sweeps")
            #expect(sweeps["live"] == .bool(live), "\(extra): \(sweeps)")
            #expect(sweeps["sweeps"]?.arrayValue?.first?["name"] == "reached", "\(sweeps)")
            await Harness.stop(dashboard)
        }
        await Harness.stop(coordinator)
    }

    @Test("--version prints the version in Sources/sparsegrid/Version.swift")
    func version() async throws {
        let out = try await Harness.run(["--version"])
        #expect(out.status == 0, "\(out.stderr)")
        let source = try String(contentsOfFile: "\(Harness.repoRoot)/Sources/sparsegrid/Version.swift", encoding: .utf8)
        let quoted = try #require(source.split(separator: "\"").dropFirst().first)
        #expect(out.stdout == "\(quoted)\n")
        #expect(quoted.split(separator: ".").count == 3)
    }
}
