import Testing

@testable import SweepKit

/// `resources.exclusive`: tasks of the named stages run only on workers whose slots share no
/// device (`--per-gpu 1`, one CPU slot); other stages run anywhere.
@Suite("Scheduler: exclusive devices")
struct ExclusiveSchedulingTests {
    /// Two train tasks and, consuming them, two finetune tasks; `exclusive` names stages.
    func scheduler(exclusive: Set<String>) -> Scheduler {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 1), runId: "r1")
        var seeds: [TaskSeed] = []
        for i in 0..<2 {
            seeds.append(
                TaskSeed(
                    id: "t\(i)", sweep: "sw", stage: "train", priority: 2, state: .ready, attemptsUsed: 0, inputs: []))
            seeds.append(
                TaskSeed(
                    id: "f\(i)", sweep: "sw", stage: "finetune", priority: 1, state: .pending, attemptsUsed: 0,
                    inputs: ["t\(i)"]))
        }
        s.addSweep(
            name: "sw", engine: "sparsity", device: "gpu", retries: 1, cancelled: false, exclusiveStages: exclusive,
            tasks: seeds)
        return s
    }

    func gpu(slots: Int, shared: Bool) -> WorkerCapabilities {
        WorkerCapabilities(engines: ["sparsity"], hasGPU: true, hasCPU: false, slots: slots, shared: shared)
    }

    func assigned(_ effects: [SchedulerEffect]) -> [(worker: String, attempt: String, task: String)] {
        effects.compactMap {
            if case .assign(let w, let a, let t) = $0 { return (w, a, t) }
            return nil
        }
    }

    @Test("an exclusive sweep's tasks stay off a shared worker and go to an unshared one")
    func exclusiveSweep() throws {
        var s = scheduler(exclusive: ["train", "finetune"])
        s.workerConnected(id: "shared", capabilities: gpu(slots: 4, shared: true), running: [], now: 0)
        s.workerReady(id: "shared", credits: 4, now: 0)
        s.dispatch(now: 0)
        #expect(assigned(s.drainEffects()).isEmpty)
        let reason = s.waitingReason(sweep: "sw")
        #expect(reason?.contains("exclusively") == true, "\(reason ?? "nil")")
        #expect(reason?.contains("'train'") == true)

        s.workerConnected(id: "solo", capabilities: gpu(slots: 1, shared: false), running: [], now: 1)
        s.workerReady(id: "solo", credits: 1, now: 1)
        s.dispatch(now: 1)
        let first = assigned(s.drainEffects())
        #expect(first.map(\.worker) == ["solo"])
        #expect(s.waitingReason(sweep: "sw") == nil)
        // Its result frees the slot; the next task goes there too, never to the shared worker.
        let done = try #require(first.first)
        #expect(s.resultArrived(attemptId: done.attempt, from: "solo", now: 2) == .accept(taskId: done.task))
        s.workerReady(id: "solo", credits: 1, now: 2)
        s.dispatch(now: 2)
        #expect(assigned(s.drainEffects()).map(\.worker) == ["solo"])
    }

    @Test("exclusive: [finetune] lets train share a GPU and keeps finetune off it")
    func exclusiveStage() {
        var s = scheduler(exclusive: ["finetune"])
        s.workerConnected(id: "shared", capabilities: gpu(slots: 4, shared: true), running: [], now: 0)
        s.workerReady(id: "shared", credits: 4, now: 0)
        s.dispatch(now: 0)
        let trains = assigned(s.drainEffects())
        #expect(Set(trains.map(\.task)) == ["t0", "t1"])
        for a in trains { _ = s.resultArrived(attemptId: a.attempt, from: "shared", now: 1) }
        s.workerReady(id: "shared", credits: 2, now: 1)
        s.dispatch(now: 1)
        #expect(assigned(s.drainEffects()).isEmpty)
        #expect(s.waitingReason(sweep: "sw")?.contains("'finetune'") == true)
        s.workerConnected(id: "solo", capabilities: gpu(slots: 1, shared: false), running: [], now: 2)
        s.workerReady(id: "solo", credits: 1, now: 2)
        s.dispatch(now: 2)
        #expect(assigned(s.drainEffects()).map(\.worker) == ["solo"])
    }

    @Test("a sweep without exclusive runs on shared workers; restore keeps a sweep's exclusive stages")
    func notExclusiveAndRestore() {
        var s = scheduler(exclusive: [])
        s.workerConnected(id: "shared", capabilities: gpu(slots: 4, shared: true), running: [], now: 0)
        s.workerReady(id: "shared", credits: 4, now: 0)
        s.dispatch(now: 0)
        #expect(assigned(s.drainEffects()).count == 2)

        var r = Scheduler(config: SchedulerConfig(deadAfter: 5), runId: "r2")
        r.restore(
            sweeps: [
                RestoredSweep(
                    name: "sw", engine: "sparsity", device: "gpu", retries: 1, cancelled: false,
                    tasks: [
                        TaskSeed(
                            id: "t0", sweep: "sw", stage: "train", priority: 1, state: .ready, attemptsUsed: 0,
                            inputs: [])
                    ], exclusiveStages: ["train"])
            ], attempts: [], artifacts: [:], now: 0)
        r.workerConnected(id: "shared", capabilities: gpu(slots: 4, shared: true), running: [], now: 0)
        r.workerReady(id: "shared", credits: 4, now: 0)
        r.dispatch(now: 0)
        #expect(assigned(r.drainEffects()).isEmpty)
    }
}
