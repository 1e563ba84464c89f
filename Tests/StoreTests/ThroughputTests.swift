import Foundation
import SweepKit
import Testing

@testable import Store

@Suite("Write throughput")
struct ThroughputTests {
    /// Not a timed assertion (machines differ); it prints the figure and checks the data.
    @Test("20,000 tasks' worth of mutations in batches of about 200")
    func throughput() throws {
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        let taskCount = 20_000
        let tasks = (0..<taskCount).map { i in
            PlannedTask(
                id: String(format: "task-%06d", i), stage: "train",
                params: ["model": "resnet", "seed": .number(Double(i)), "method": "2:4"], inputs: [:], priority: 1)
        }
        let plan = SweepPlan(
            name: "big", engine: "null", context: [:], tasks: tasks, retries: 0, device: "any",
            reports: [], specText: "")

        var clock = ContinuousClock.now
        _ = try store.launch(plan, now: 1)
        let launchSeconds = Self.seconds(since: clock)

        try store.apply([.worker(id: "w1", host: "localhost", info: [:], seenAt: 1, state: "idle")])
        var batch: [StoreMutation] = []
        batch.reserveCapacity(210)
        var mutations = 0
        var stored = 0
        clock = ContinuousClock.now
        let cpuStart = Self.processCPUSeconds()
        for (i, task) in tasks.enumerated() {
            let t = Double(i)
            let attempt = "att-\(i)"
            batch += [
                .taskState(taskId: task.id, state: .running, error: nil, at: t),
                .attemptStarted(attemptId: attempt, taskId: task.id, workerId: "w1", at: t),
                .attemptEnded(attemptId: attempt, outcome: .succeeded, at: t, exitCode: 0, error: nil, stderrTail: nil),
                .result(
                    taskId: task.id, attemptId: attempt, metrics: ["top1": 0.5, "latency_ms": nil],
                    units: ["top1": "fraction"], details: [:], at: t),
                .taskState(taskId: task.id, state: .succeeded, error: nil, at: t),
            ]
            if batch.count >= 200 || i == taskCount - 1 {
                mutations += batch.count
                stored += try store.apply(batch).filter { $0 }.count
                batch.removeAll(keepingCapacity: true)
            }
        }
        let applySeconds = Self.seconds(since: clock)
        // CPU time as well as wall time: on a shared machine the wall figure mostly measures
        // the other processes.
        let applyCPU = Self.processCPUSeconds() - cpuStart
        print(
            String(
                format: "store throughput: launch %d tasks in %.2f s; applied %d mutations in %.2f s wall "
                    + "(%.0f rows/s, %.0f tasks/s), %.2f s CPU (%.0f tasks per CPU second)",
                taskCount, launchSeconds, mutations, applySeconds, Double(mutations) / applySeconds,
                Double(taskCount) / applySeconds, applyCPU, Double(taskCount) / applyCPU))

        #expect(stored == taskCount)
        #expect(try store.countResults(sweep: "big") == taskCount)
        #expect(try store.sweepSummaries().first?.counts == [.succeeded: taskCount])
    }

    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
