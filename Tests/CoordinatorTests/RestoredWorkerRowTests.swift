import Store
import SweepKit
import Testing

@testable import Coordinator

/// Fault injected: a restarted coordinator whose restored worker never comes back. Proves: its
/// row is marked dead without overwriting its stored host and info (its CURVE key among them),
/// so a second restart still binds its attempts to that key. Before, the row was rewritten with
/// host "?" and null info.
@Suite("A restored worker that never returns keeps its stored identity")
struct RestoredWorkerRowTests {
    @Test("its death changes only the row's state")
    func stateOnly() {
        var scheduler = Scheduler(config: SchedulerConfig(deadAfter: 5))
        let task = TaskSeed(
            id: "t", sweep: "sw", stage: "run", priority: 1, state: .running, attemptsUsed: 1, inputs: [])
        scheduler.restore(
            sweeps: [
                RestoredSweep(name: "sw", engine: "null", device: "any", retries: 1, cancelled: false, tasks: [task])
            ],
            attempts: [RestoredAttempt(id: "a", taskId: "t", workerId: "w1", startedAt: 0)],
            artifacts: [:], workerKeys: ["w1": "KEY"], now: 0)
        _ = scheduler.drainEffects()
        scheduler.tick(now: 1000)
        var departing: Set<String> = []
        var mutations: [StoreMutation] = []
        for effect in scheduler.drainEffects() {
            appendStoreMutations(for: effect, scheduler: scheduler, departing: &departing, now: 1000, into: &mutations)
        }
        let workerRows = mutations.compactMap { mutation -> String? in
            switch mutation {
            case .workerState(let id, let state, _): return "state \(id) \(state)"
            case .worker(let id, _, _, _, _): return "full \(id)"
            default: return nil
            }
        }
        #expect(workerRows == ["state w1 dead"])
    }
}
