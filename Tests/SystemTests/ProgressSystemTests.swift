import Foundation
import Testing

/// `status` as a user sees it with a coordinator and a worker running a task that reports
/// epochs (the test engine's `epochs` parameter prints progress then metric events, as the
/// real engine does): plain text into a file, colour only under a pseudo-terminal.
@Suite("Live progress in `status`", .serialized)
struct ProgressSystemTests {
    @Test("status into a file: no escape codes; bar, counts and ETA per sweep; the running task's epoch and loss")
    func statusToAFile() async throws {
        let dir = Harness.tempDir("progress")
        let state = "\(dir)/state"
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "5",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W",
                "--drain-grace", "0", "--engine", Harness.testEngine, "--only", "test",
            ],
            log: "\(dir)/W.log")
        defer { Harness.kill9(worker) }
        let slow = try Harness.writeSpec(
            Harness.testSpec(name: "slow", xs: [1, 2], trainParams: "sleep: 60, epochs: 4"), in: dir, name: "slow.yaml")
        let other = try Harness.writeSpec(
            Harness.testSpec(name: "other", xs: [1], trainParams: "sleep: 60"), in: dir, name: "other.yaml")
        func launch(_ spec: String) async throws {
            let launched = try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state])
            #expect(launched.status == 0, "\(launched.stderr)")
        }
        try await launch(slow)

        // Wait until the running task has reported an epoch (a metric event follows every
        // progress event: it must not hide the epoch and loss).
        try await Harness.waitFor("status to show a running task's epoch", timeout: 60) {
            try await runBlocking(["status", "--state", state]).contains("epoch ")
        }
        // The worker's one slot is taken: the other sweep's task waits.
        try await launch(other)
        let out = try await runBlocking(["status", "--state", state, "--sweep", "slow"])
        #expect(!out.contains("\u{1B}"), "escape codes in a redirected status: \(out)")
        let sweepLine = try #require(out.split(separator: "\n").first { $0.hasPrefix("slow ") })
        #expect(sweepLine.contains("0/2 done, 1 running, 1 ready, 0 pending, 0 failed"), "\(sweepLine)")
        #expect(sweepLine.contains("[--------------------]"), "\(sweepLine)")
        #expect(sweepLine.contains("ETA ? (no train task finished yet)"), "\(sweepLine)")
        let taskLine = try #require(out.split(separator: "\n").first { $0.contains("epoch ") })
        #expect(taskLine.hasPrefix("  W  train"), "\(taskLine)")
        #expect(taskLine.contains(try Regex(#"epoch [1-4]/4  loss \d+\.\d{4}  \d+s$"#)), "\(taskLine)")
        // --sweep shows only that sweep.
        #expect(!out.contains("other "), "\(out)")
        let all = try await runBlocking(["status", "--coordinator", endpoints.control, "--state", state])
        #expect(all.contains("other [") && all.contains("slow ["), "\(all)")

        let unknown = try await Harness.run(["status", "--state", state, "--sweep", "nope"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("there is no sweep named 'nope'; sweeps: other, slow"), "\(unknown.stderr)")

        // --watch into a file: plain blocks, no clear-screen or cursor codes.
        let watchLog = "\(dir)/watch.log"
        let watch = try Harness.start(["status", "--state", state, "--watch"], log: watchLog)
        try await Task.sleep(nanoseconds: 3_000_000_000)
        await Harness.stop(watch)
        let watched = Harness.read(watchLog)
        #expect(watched.contains("slow ["), "\(watched)")
        #expect(!watched.contains("\u{1B}"), "escape codes in a redirected status --watch: \(watched)")

        // Under a pseudo-terminal: colour, unless NO_COLOR is set.
        let tty = try await pseudoTerminal(
            ["status", "--state", state, "--sweep", "slow"], environment: ["TERM": "xterm"])
        #expect(tty.contains("\u{1B}["), "no colour on a terminal: \(tty)")
        let noColour = try await pseudoTerminal(
            ["status", "--state", state, "--sweep", "slow"], environment: ["TERM": "xterm", "NO_COLOR": "1"])
        #expect(noColour.contains("slow ["), "\(noColour)")
        #expect(!noColour.contains("\u{1B}"), "colour despite NO_COLOR: \(noColour)")
    }

    /// Runs the binary with stdout into a file and returns what it printed (status must be 0).
    func runBlocking(_ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        let out = try await Harness.exec(Harness.binary, arguments, environment: environment, removing: ["NO_COLOR"])
        guard out.status == 0 else {
            throw HarnessError("`sparsegrid \(arguments.joined(separator: " "))` exited \(out.status)")
        }
        return out.stdout
    }

    /// Runs the binary under `script` (util-linux), whose pseudo-terminal is its stdout.
    func pseudoTerminal(_ arguments: [String], environment: [String: String]) async throws -> String {
        let command = ([Harness.binary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        return try await Harness.exec(
            "/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment, removing: ["NO_COLOR"]
        ).stdout
    }
}
