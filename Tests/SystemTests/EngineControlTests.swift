import Foundation
import Store
import SweepKit
import Testing

/// What only a real worker process shows about its engines: the signal state and the
/// descriptors it holds (ZeroMQ's sockets and eventfds) must not reach an engine, its shutdown
/// stops an engine's whole process group, and an engine that asks to die with it still does.
/// The misbehaving engines are in Tests/Fixtures/engines/; WorkerTests/EngineControlTests runs
/// the rest without a worker.
@Suite("A real worker keeps control of its engines", .serialized)
struct EngineControlSystemTests {
    private static let engines = "\(Harness.repoRoot)/Tests/Fixtures/engines"

    private static func spec(name: String, engine: String) -> String {
        """
        name: \(name)
        engine: \(engine)
        data: {dataset: synthetic, train: 8, test: 8}
        grid:
          x: [1]
        stages:
          train:
            params: {}
        retries: 0
        """
    }

    /// True once `pid` has exited (a zombie waiting to be reaped counts as gone).
    private static func isGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 { return errno == ESRCH }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let paren = stat.range(of: ") ", options: .backwards)
        else { return true }
        return stat[paren.upperBound...].hasPrefix("Z")
    }

    @Test(
        "an engine started by a worker has only descriptors 0, 1, 2, no blocked or ignored SIGTERM/SIGINT, and its own session (bound: 60 s)"
    )
    func inheritance() async throws {
        let dir = Harness.tempDir("probe")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Self.spec(name: "probe", engine: "probe"), in: dir)
        let out = try await Harness.run(
            [
                "run", spec, "--workers", "1", "--state", state, "--engine",
                "probe=python3 \(Self.engines)/probe.py", "--plain",
            ], timeout: 60)
        #expect(out.status == 0, "\(out.stdout)\n\(out.stderr)")
        let row = try #require(try Harness.store(state).resultRows(sweep: "probe").first)
        let fds = try #require(row.details["fds"]?.objectValue)
        #expect(fds.keys.sorted() == ["0", "1", "2"], "the engine inherited the worker's descriptors: \(fds)")
        #expect(fds["0"]?.stringValue == "/dev/null")
        let blocked = UInt64(row.details["sig_blocked"]?.stringValue ?? "", radix: 16)
        let ignored = try #require(UInt64(row.details["sig_ignored"]?.stringValue ?? "", radix: 16))
        #expect(blocked == 0, "the engine started with signals blocked: \(row.details["sig_blocked"] ?? .null)")
        let termOrInt: UInt64 = (1 << UInt64(SIGTERM - 1)) | (1 << UInt64(SIGINT - 1))
        #expect(
            ignored & termOrInt == 0, "the engine started with SIGTERM or SIGINT ignored: \(String(ignored, radix: 16))"
        )
        #expect(
            row.details["pgid"] == row.details["pid"] && row.details["sid"] == row.details["pid"],
            "the engine does not lead a process group and session of its own: \(row.details)")
    }

    @Test(
        "SIGTERM to a worker whose engine and its child ignore SIGTERM: the whole group is dead within grace (5 s) + 2 s"
    )
    func shutdownKillsTheGroup() async throws {
        let dir = Harness.tempDir("group")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Self.spec(name: "group", engine: "hang"), in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "2",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        // No drain grace: this test is about killing the group, not about letting attempts finish.
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W",
                "--drain-grace", "0",
                "--engine", "hang=python3 \(Self.engines)/hang_with_child.py", "--only", "hang",
            ],
            log: "\(dir)/W.log")
        defer { Harness.kill9(worker) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)

        // The engine writes its pid and its child's into its work directory.
        var pids: [String: Int32] = [:]
        try await Harness.waitFor("the engine and its child to start", timeout: 60) {
            let work = "\(dir)/W/work"
            for attempt in (try? FileManager.default.contentsOfDirectory(atPath: work)) ?? [] {
                guard let data = FileManager.default.contents(atPath: "\(work)/\(attempt)/pids.json"),
                    let json = try? JSONSerialization.jsonObject(with: data) as? [String: Int]
                else { continue }
                pids = json.mapValues { Int32($0) }
            }
            return pids.count == 2
        }
        let engine = try #require(pids["pid"]), child = try #require(pids["child"])
        defer { for pid in [engine, child] where !Self.isGone(pid) { kill(pid, SIGKILL) } }

        let stopped = Date()
        kill(worker.processIdentifier, SIGTERM)
        try await Harness.waitFor("the engine and its child to be killed", timeout: 7) {
            Self.isGone(child) && Self.isGone(engine)
        }
        #expect(Date().timeIntervalSince(stopped) < 7)
        await Harness.stop(worker)
        #expect(worker.terminationStatus == 0, "\(Harness.read("\(dir)/W.log").suffix(2000))")
    }

    /// Pids of the processes whose command line mentions `text`.
    private static func processes(mentioning text: String) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).contains(text)
        }
    }

    @Test(
        "an engine that asks to die with its parent (PR_SET_PDEATHSIG) still does when its worker is SIGKILLed (bound: 3 s)"
    )
    func engineDiesWithItsWorker() async throws {
        let dir = Harness.tempDir("pdeath")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Harness.testSpec(name: "pdeath", xs: [1], trainParams: "sleep: 30"), in: dir)
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.2", "--dead-after", "2",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W",
                "--engine", Harness.testEngine, "--only", "test",
            ], log: "\(dir)/W.log")
        defer { Harness.kill9(worker) }
        #expect(
            try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state]).status == 0)
        let store = try Harness.store(state)
        try await Harness.waitFor("the engine to run") {
            guard let task = try store.resultRows(sweep: "pdeath").first,
                try store.attempts(task: task.taskId).contains(where: { $0.outcome == .running })
            else { return false }
            return !Self.processes(mentioning: "\(dir)/W/work/").isEmpty
        }
        try await Task.sleep(nanoseconds: 500_000_000)  // past the engine's prctl
        let engines = Self.processes(mentioning: "\(dir)/W/work/")
        defer { for pid in engines where !Self.isGone(pid) { kill(pid, SIGKILL) } }
        await Harness.stop(worker, signal: SIGKILL)
        try await Harness.waitFor("the engine to die with its worker", timeout: 3) { engines.allSatisfy(Self.isGone) }
    }
}
