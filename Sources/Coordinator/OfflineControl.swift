import Store
import SweepKit

/// `cancel` and `retry` when no coordinator runs on a state directory: the same scheduler
/// events a live coordinator runs, applied to the database in one transaction. (A running
/// coordinator must be asked instead; the CLI does that when it finds one.)
public enum OfflineControl {
    /// Cancels a sweep's unfinished tasks; returns how many were cancelled.
    public static func cancel(databasePath: String, sweep: String, now: Double) throws -> Int {
        try run(databasePath: databasePath, sweep: sweep, now: now) { scheduler in
            scheduler.cancelSweep(sweep, now: now)
            return [.sweepCancelled(sweep: sweep, cancelled: true, at: now)]
        } count: { effects in
            effects.filter { if case .taskState(_, .cancelled, _) = $0 { return true } else { return false } }.count
        }
    }

    /// Puts a sweep's failed and cancelled tasks back with a fresh retry budget; returns how many.
    public static func retry(databasePath: String, sweep: String, now: Double) throws -> Int {
        var retried = 0
        _ = try run(databasePath: databasePath, sweep: sweep, now: now) { scheduler in
            retried = scheduler.retrySweep(sweep)
            return [.sweepCancelled(sweep: sweep, cancelled: false, at: now)]
        } count: { _ in
            0
        }
        return retried
    }

    private static func run(
        databasePath: String, sweep: String, now: Double,
        _ event: (inout Scheduler) -> [StoreMutation],
        count: ([SchedulerEffect]) -> Int
    ) throws -> Int {
        let store = try SweepStore(path: databasePath)
        var state = try RestoredState(store: store, config: SchedulerConfig(), now: now)
        guard state.plans[sweep] != nil else {
            let known = state.plans.keys.sorted().joined(separator: ", ")
            throw CoordinatorError(
                "there is no sweep named '\(sweep)' in \(databasePath)"
                    + (known.isEmpty ? "" : " (sweeps: \(known))") + ".")
        }
        _ = state.scheduler.drainEffects()  // restoring is not a change
        var mutations = event(&state.scheduler)
        let effects = state.scheduler.drainEffects()
        var departing: Set<String> = []
        for effect in effects {
            appendStoreMutations(
                for: effect, scheduler: state.scheduler, departing: &departing, now: now, into: &mutations)
        }
        try store.apply(mutations)
        return count(effects)
    }
}
