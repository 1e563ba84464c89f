import Synchronization
import UnixSignals

/// Set at the first SIGINT or SIGTERM once `SignalWatcher.interrupts()` traps them (for `run`,
/// which polls between status updates; long-running services use a `ServiceGroup` instead).
final class InterruptFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

enum SignalWatcher {
    static func interrupts() async -> InterruptFlag {
        let flag = InterruptFlag()
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        Task {
            for await _ in signals { flag.set() }
        }
        return flag
    }
}
