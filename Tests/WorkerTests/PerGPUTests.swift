import SweepKit
import Testing
import Wire

@testable import Worker

/// `--per-gpu K`: K slots per GPU, tasks spread over the GPUs before they stack, and each
/// result says who shared its device.
@Suite("Several tasks per GPU")
struct PerGPUTests {
    func session(_ slots: [SlotInfo]) -> WorkerSession {
        let config = WorkerConfig(
            coordinator: coordinatorAddress, workerId: "w1", host: "node1", slots: slots, engines: [:],
            cacheDirectory: "/tmp/sparsegrid-worker-tests", describeEngines: false, idleTimeout: nil)
        var s = WorkerSession(config: config, pid: 4242, engines: ["null": ["builtin": true]])
        s.start(now: 0)
        s.received(welcome(), now: 0)
        _ = s.drainEffects()
        return s
    }

    /// The slot each started attempt got, by attempt id.
    func started(_ effects: [WorkerEffect]) -> [String: SlotInfo] {
        var out: [String: SlotInfo] = [:]
        for case .startJob(let assign, let slot, _) in effects { out[assign.attemptId] = slot }
        return out
    }

    /// The co-tenancy the session put into an attempt's result.
    func cotenancy(_ effects: [WorkerEffect], of attemptId: String) throws -> CoTenancy? {
        for case .send(.result, let frames) in effects {
            let result = try Codec.parse(frames).decode(TaskResult.self)
            if result.attemptId == attemptId { return result.cotenancy }
        }
        Issue.record("no result of \(attemptId) was sent")
        return nil
    }

    @Test("--gpus 0,1 --per-gpu 3: six slots, three per GPU, each saying it shares its GPU with 3")
    func layout() throws {
        let slots = try WorkerConfig.gpuSlots([0, 1], perGPU: 3)
        #expect(slots.map(\.index) == [0, 1, 2, 3, 4, 5])
        #expect(slots.map(\.device) == ["cuda:0", "cuda:0", "cuda:0", "cuda:1", "cuda:1", "cuda:1"])
        #expect(slots.allSatisfy { $0.share == 3 && $0.isShared })
        #expect(try WorkerConfig.gpuSlots([2], perGPU: 1).map(\.share) == [1])
        // A GPU listed twice would be two "unshared" slots on one device.
        #expect(throws: WorkerError.self) { try WorkerConfig.gpuSlots([0, 0]) }
        #expect(throws: WorkerError.self) { try WorkerConfig.gpuSlots([0], perGPU: 0) }
        #expect(throws: WorkerError.self) { try WorkerConfig.gpuSlots([0], perGPU: WireLimits.maxPerGPU + 1) }
        #expect(throws: WorkerError.self) { try WorkerConfig.gpuSlots(Array(0..<20), perGPU: 64) }
        // CPU slots share the host's cores.
        #expect(WorkerConfig.cpuSlots(3).map(\.share) == [3, 3, 3])
        #expect(WorkerConfig.cpuSlots(1).map(\.share) == [1])
    }

    @Test("tasks spread over the GPUs before they stack on one, and fill the freed GPU first")
    func spread() throws {
        var s = session(try WorkerConfig.gpuSlots([0, 1], perGPU: 3))
        for id in ["a1", "a2", "a3", "a4"] { s.received(assign(id), now: 1) }
        let slots = started(s.drainEffects())
        #expect(slots.mapValues(\.device) == ["a1": "cuda:0", "a2": "cuda:1", "a3": "cuda:0", "a4": "cuda:1"])
        #expect(Set(slots.values.map(\.index)).count == 4)
        // Two run on each GPU; a1 ends, so the next task goes to cuda:0 (one runs there now).
        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 2)
        s.received(assign("a5"), now: 3)
        #expect(started(s.drainEffects())["a5"]?.device == "cuda:0")
    }

    @Test("each result lists the tasks that shared its GPU at any time while it ran, and the most at once")
    func cotenants() throws {
        var s = session(try WorkerConfig.gpuSlots([0, 1], perGPU: 2))
        s.received(assign("a1"), now: 1)  // cuda:0
        s.received(assign("a2"), now: 1)  // cuda:1
        s.received(assign("a3"), now: 1)  // cuda:0, beside a1
        #expect(started(s.drainEffects()).mapValues(\.device) == ["a1": "cuda:0", "a2": "cuda:1", "a3": "cuda:0"])
        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 2)
        let first = try cotenancy(s.drainEffects(), of: "a1")
        #expect(first == CoTenancy(device: "cuda:0", taskIds: ["task-a3"], atOnce: 2))
        // a4 goes to cuda:0 after a1 left: a3 shared with it too, never with more than one at once.
        s.received(assign("a4"), now: 3)
        #expect(started(s.drainEffects())["a4"]?.device == "cuda:0")
        s.jobFinished(attemptId: "a3", type: .result, frames: resultFrames("a3"), now: 4)
        #expect(
            try cotenancy(s.drainEffects(), of: "a3")
                == CoTenancy(device: "cuda:0", taskIds: ["task-a1", "task-a4"], atOnce: 2))
        // a2 had cuda:1 to itself.
        s.jobFinished(attemptId: "a2", type: .result, frames: resultFrames("a2"), now: 5)
        let alone = try cotenancy(s.drainEffects(), of: "a2")
        #expect(alone == CoTenancy(device: "cuda:1", taskIds: [], atOnce: 1))
        #expect(alone?.isShared == false)
    }

    @Test("CPU slots share the host's cores: their results record each other too")
    func cpuCotenants() throws {
        var s = session(WorkerConfig.cpuSlots(3))
        for id in ["a1", "a2", "a3"] { s.received(assign(id), now: 1) }
        _ = s.drainEffects()
        s.jobFinished(attemptId: "a2", type: .result, frames: resultFrames("a2"), now: 2)
        #expect(
            try cotenancy(s.drainEffects(), of: "a2")
                == CoTenancy(device: "cpu", taskIds: ["task-a1", "task-a3"], atOnce: 3))
    }

    @Test("the hello says how many slots share each device")
    func helloSaysShare() throws {
        let config = WorkerConfig(
            coordinator: coordinatorAddress, workerId: "w1", host: "node1",
            slots: try WorkerConfig.gpuSlots([0], perGPU: 2), engines: [:],
            cacheDirectory: "/tmp/sparsegrid-worker-tests", describeEngines: false)
        var s = WorkerSession(config: config, pid: 1, engines: [:])
        s.start(now: 0)
        for case .send(.hello, let frames) in s.drainEffects() {
            let hello = try Codec.parse(frames).decode(Hello.self)
            #expect(hello.slots.map(\.share) == [2, 2])
            return
        }
        Issue.record("no hello")
    }
}

extension PerGPUTests {
    @Test("a long attempt beside many short ones keeps at most 64 co-tenants, and its result is sendable")
    func cappedCoTenants() throws {
        var s = session(try WorkerConfig.gpuSlots([0], perGPU: 2))
        s.received(assign("long"), now: 1)
        for i in 0..<100 {
            s.received(assign("s\(i)"), now: 2)
            s.jobFinished(attemptId: "s\(i)", type: .result, frames: resultFrames("s\(i)"), now: 3)
        }
        _ = s.drainEffects()
        s.jobFinished(attemptId: "long", type: .result, frames: resultFrames("long"), now: 4)
        let tenancy = try cotenancy(s.drainEffects(), of: "long")
        #expect(tenancy?.taskIds.count == WireLimits.maxCoTenants)
        #expect(tenancy?.atOnce == 2)
        #expect(tenancy?.taskIds.allSatisfy { $0.hasPrefix("task-s") } == true)
    }

    @Test("the co-tenants kept are the first 64 to come, not the first 64 in sorted order: memory stays bounded")
    func firstCoTenantsKept() throws {
        var s = session(try WorkerConfig.gpuSlots([0], perGPU: 2))
        s.received(assign("long"), now: 1)
        // 64 that come first but sort last, then 36 that sort first.
        for name in (0..<64).map({ "z\($0)" }) + (0..<36).map({ "a\($0)" }) {
            s.received(assign(name), now: 2)
            s.jobFinished(attemptId: name, type: .result, frames: resultFrames(name), now: 3)
        }
        _ = s.drainEffects()
        s.jobFinished(attemptId: "long", type: .result, frames: resultFrames("long"), now: 4)
        let tenancy = try cotenancy(s.drainEffects(), of: "long")
        #expect(tenancy?.taskIds.count == WireLimits.maxCoTenants)
        #expect(tenancy?.taskIds.allSatisfy { $0.hasPrefix("task-z") } == true, "\(tenancy?.taskIds ?? [])")
    }
}
