import Foundation
import Store
import SweepKit
import Testing

/// `sparsegrid worker --gpus 0 --per-gpu 2` with real processes: a coordinator, one worker,
/// the test engine, ZeroMQ over loopback and the SQLite database. No GPU is needed: with
/// explicit indices the worker only sets CUDA_VISIBLE_DEVICES, which the test engine reports.
@Suite("Several tasks per GPU, with real processes", .serialized)
struct PerGPUSystemTests {
    @Test("two tasks run at once on cuda:0 and each attempt records the other; an exclusive sweep waits, saying why")
    func twoOnOneGPU() async throws {
        let dir = Harness.tempDir("pergpu")
        let state = "\(dir)/state"
        let (coordinator, endpoints, http) = try await HTTPProbe.startCoordinator(state: state, deadAfter: 30)
        defer { Harness.kill9(coordinator) }
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "gpu-w", "--cache", "\(dir)/gpu-w",
                "--drain-grace", "0", "--engine", Harness.testEngine, "--only", "test", "--gpus", "0",
                "--per-gpu", "2",
            ],
            log: "\(dir)/gpu-w.log", removing: ["CUDA_VISIBLE_DEVICES"])
        defer { Harness.kill9(worker) }

        // Two tasks of 2 s each: on two slots of one GPU they overlap.
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "shared", xs: [1, 2], trainParams: "sleep: 2"), in: dir)
        let launched = try await Harness.run(["launch", spec, "--state", state])
        #expect(launched.status == 0, "\(launched.stderr)")
        var rows: [ResultRow] = []
        try await Harness.waitFor("both tasks to succeed", timeout: 90) {
            rows = try Harness.store(state).resultRows(sweep: "shared")
            return rows.count == 2 && rows.allSatisfy { $0.state == .succeeded }
        }
        let ids = rows.map(\.taskId)
        for row in rows {
            #expect(row.device == "cuda:0")
            #expect(row.tasksAtOnce == 2, "\(row.taskId): \(String(describing: row.tasksAtOnce))")
            #expect(row.coTenants == ids.filter { $0 != row.taskId })
            #expect(row.details["task_device"] == "cuda")
            #expect(row.details["cuda_visible_devices"] == "0")
        }
        // Both started before either ended.
        let starts = rows.compactMap(\.startedAt), ends = rows.compactMap(\.finishedAt)
        #expect(starts.count == 2 && ends.count == 2 && starts.max()! < ends.min()!)
        let task = try await http.json("/api/tasks/\(ids[0])")
        #expect(task["device"] == "cuda:0")
        #expect(task["tasksAtOnce"] == 2)
        #expect(task["coTenants"] == [.string(ids[1])])
        // The report says its latencies were measured on a shared GPU.
        let report = try await Harness.run(["report", "shared", "--state", state, "--format", "markdown"])
        #expect(
            report.stdout.contains(
                "shared devices: 2 of 2 tasks ran on a GPU shared with other tasks (up to 2 tasks at once)"),
            "\(report.stdout)\n\(report.stderr)")

        // A sweep that asks for exclusive devices does not run on this worker, and says why.
        let exclusive = try Harness.writeSpec(
            Harness.testSpec(name: "alone", xs: [1], trainParams: "sleep: 0.1")
                + "resources: {exclusive: true}\n", in: dir, name: "alone.yaml")
        let second = try await Harness.run(["launch", exclusive, "--state", state])
        #expect(second.status == 0, "\(second.stderr)")
        var reason = ""
        try await Harness.waitFor("the exclusive sweep to say why it waits", timeout: 30) {
            let sweeps = try await http.json("/api/sweeps")
            let alone = sweeps["sweeps"]?.arrayValue?.first { $0["name"] == "alone" }
            reason = alone?["waitingReason"]?.stringValue ?? ""
            return reason.contains("exclusively")
        }
        #expect(reason.contains("--per-gpu"), "\(reason)")
        #expect(try Harness.store(state).resultRows(sweep: "alone").allSatisfy { $0.state != .succeeded })
        await Harness.stop(worker)
        await Harness.stop(coordinator)
    }

    @Test("--per-gpu is checked before anything starts: only with --gpus, 1 to 64, and no GPU listed twice")
    func flagErrors() async throws {
        for (arguments, message) in [
            (["--per-gpu", "2"], "--per-gpu goes with --gpus"),
            (["--slots", "2", "--per-gpu", "2"], "--per-gpu goes with --gpus"),
            (["--gpus", "0", "--per-gpu", "0"], "--per-gpu must be 1 to 64"),
            (["--gpus", "0", "--per-gpu", "65"], "--per-gpu must be 1 to 64"),
            (["--gpus", "0,0"], "--gpus lists GPU 0 twice"),
        ] {
            let out = try await Harness.run(
                ["worker", "--coordinator", "tcp://127.0.0.1:1", "--connect-timeout", "1", "--only", "null"]
                    + arguments, timeout: 30)
            #expect(out.status != 0, "\(arguments)")
            #expect(out.stderr.contains(message), "\(arguments): \(out.stderr)")
        }
    }
}
