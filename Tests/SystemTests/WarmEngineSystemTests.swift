import Foundation
import Store
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Warm engines through the real binaries: a worker whose engine declares `serve` (the test
/// engine with TEST_ENGINE_SERVE=1) runs a slot's tasks in one long-lived process, replaced
/// after `--engine-reuse` tasks, and none of them outlives the worker.
@Suite("Warm engines: real coordinator and worker", .serialized)
struct WarmEngineSystemTests {
    @Test("--engine-reuse 3 on one slot: 4 tasks in 2 serve processes (task_index 1,2,3,1); none left after SIGTERM")
    func warmWorker() async throws {
        let dir = Harness.tempDir("warm")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "warm", xs: [1, 2, 3, 4], trainParams: "sleep: 0"), in: dir)
        let (coordinator, worker) = try await Self.startAndLaunch(
            spec, dir: dir, state: state, workerArguments: ["--engine-reuse", "3"])
        defer {
            Harness.kill9(worker)
            Harness.kill9(coordinator)
        }
        let store = try Harness.store(state)
        try await Harness.waitFor("the sweep to finish", timeout: 90) {
            let rows = try store.resultRows(sweep: "warm")
            return rows.count == 4 && rows.allSatisfy { $0.state == .succeeded }
        }
        let rows = try store.resultRows(sweep: "warm")
        let processes = rows.compactMap { $0.details["engine_process"] }
        #expect(processes.count == 4)
        #expect(processes.allSatisfy { $0["mode"]?.stringValue == "serve" }, "\(processes)")
        let indices = processes.compactMap { $0["task_index"]?.doubleValue.map { Int($0) } }.sorted()
        #expect(indices == [1, 1, 2, 3], "\(processes)")
        let pids = Set(processes.compactMap { $0["pid"]?.doubleValue.map { Int32($0) } })
        #expect(pids.count == 2, "\(processes)")

        await Harness.stop(worker, signal: SIGTERM)
        #expect(worker.terminationStatus == 0, "\(Harness.read("\(dir)/W.log"))")
        for pid in pids {
            let alive = kill(pid, 0) == 0 && !isZombie(pid)
            #expect(!alive, "serve process \(pid) outlived its worker")
            if alive { kill(pid, SIGKILL) }
        }
        await Harness.stop(coordinator, signal: SIGTERM)
    }

    @Test("a SIGKILLed worker takes its busy warm engine down at once (parent-death signal from the spawn thread)")
    func killedWorker() async throws {
        let dir = Harness.tempDir("warm-kill")
        let state = "\(dir)/state"
        // One slot: train (instant) starts the warm process from its job's thread, which then
        // ends; finetune runs in the same process (task_index 2) and waits a minute without
        // printing (a write to the dead worker's pipe would end it anyway: only the signal can).
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "warmkill", xs: [1], trainParams: "sleep: 0", finetune: "silent_sleep: 60"), in: dir)
        let (coordinator, worker) = try await Self.startAndLaunch(spec, dir: dir, state: state)
        defer {
            Harness.kill9(worker)
            Harness.kill9(coordinator)
        }
        let store = try Harness.store(state)
        try await Harness.waitFor("train to succeed and finetune to start", timeout: 90) {
            let rows = try store.resultRows(sweep: "warmkill")
            return rows.contains { $0.stage == "train" && $0.state == .succeeded }
                && rows.contains { $0.stage == "finetune" && $0.state == .running }
        }
        let train = try #require(try store.resultRows(sweep: "warmkill").first { $0.stage == "train" })
        let pid = try #require(train.details["engine_process"]?["pid"]?.doubleValue.map { Int32($0) })
        #expect(train.details["engine_process"]?["mode"]?.stringValue == "serve", "\(train.details)")
        // The process that ran train is the one running finetune: its first job's thread has ended.
        try await Task.sleep(for: .milliseconds(300))
        #expect(kill(pid, 0) == 0 && !isZombie(pid), "the warm engine did not survive its first job")

        Harness.kill9(worker)
        var gone = false
        for _ in 0..<100 where !gone {
            gone = kill(pid, 0) != 0 || isZombie(pid)
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "serve process \(pid), busy with a 60 s task, outlived its SIGKILLed worker by 5 s")
        if !gone { kill(pid, SIGKILL) }
        await Harness.stop(coordinator, signal: SIGTERM)
    }

    /// A coordinator on `state` and a worker with one slot whose test engine declares `serve`
    /// (their logs in `dir`), and `spec` launched on them.
    static func startAndLaunch(_ spec: String, dir: String, state: String, workerArguments: [String] = [])
        async throws -> (coordinator: Process, worker: Process)
    {
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                "--heartbeat", "0.2", "--dead-after", "5",
            ], log: "\(dir)/coordinator.log")
        do {
            let endpoints = try await Harness.coordinatorEndpoints(state)
            let worker = try Harness.start(
                [
                    "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W", "--slots", "1",
                    "--engine", Harness.testEngine, "--only", "test",
                ] + workerArguments, log: "\(dir)/W.log", environment: ["TEST_ENGINE_SERVE": "1"])
            let launched = try await Harness.run(["launch", spec, "--coordinator", endpoints.control, "--state", state])
            #expect(launched.status == 0, "\(launched.stderr)")
            return (coordinator, worker)
        } catch {
            Harness.kill9(coordinator)
            throw error
        }
    }
}

private func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let paren = stat.range(of: ") ", options: .backwards)
    else { return true }
    return stat[paren.upperBound...].hasPrefix("Z")
}
