import Foundation
import Store
import SweepKit
import Testing

@testable import Coordinator

/// Fault injected: a coordinator restart. Proves: a sweep's `resources.exclusive` survives it
/// (it lives in the stored plan), so its tasks still go only to workers that share no device.
@Suite("A restarted coordinator keeps a sweep's exclusive stages")
struct ExclusiveRestoreTests {
    @Test("restored from the database, an exclusive stage's task waits for an unshared worker")
    func restored() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sg-exclusive-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plan = SweepPlan(
            name: "alone", engine: "null", context: .object([:]),
            tasks: [PlannedTask(id: "train-1", stage: "train", params: [:], inputs: [:], priority: 1)],
            retries: 1, device: "any", reports: [], specText: "name: alone\n", exclusiveStages: ["train"])
        let store = try SweepStore(path: dir.appendingPathComponent("sparsegrid.db").path)
        _ = try store.launch(plan, now: 10)

        var scheduler = try RestoredState(store: store, config: SchedulerConfig(), now: 20).scheduler
        #expect(scheduler.sweeps["alone"]?.exclusiveStages == ["train"])
        let shared = WorkerCapabilities(engines: ["null"], hasGPU: true, hasCPU: false, slots: 2, shared: true)
        scheduler.workerConnected(id: "shared", capabilities: shared, running: [], now: 20)
        scheduler.workerReady(id: "shared", credits: 2, now: 20)
        scheduler.dispatch(now: 20)
        #expect(!scheduler.drainEffects().contains { if case .assign = $0 { true } else { false } })
        var unshared = shared
        unshared.shared = false
        scheduler.workerConnected(id: "solo", capabilities: unshared, running: [], now: 21)
        scheduler.workerReady(id: "solo", credits: 1, now: 21)
        scheduler.dispatch(now: 21)
        #expect(
            scheduler.drainEffects().contains {
                if case .assign(let worker, _, "train-1") = $0 { worker == "solo" } else { false }
            })
    }
}
