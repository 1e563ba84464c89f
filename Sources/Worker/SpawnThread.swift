import Foundation
import Synchronization

/// Starts warm engines from one thread that lives as long as the worker process.
///
/// Linux sends a child its parent-death signal (`PR_SET_PDEATHSIG`, which engines set so that
/// a SIGKILLed worker takes them down) when the *thread* that forked it exits, not the process.
/// A `run` engine is forked by its job's thread and exits before that thread does, but a warm
/// engine outlives the job that started it: forked from the job's thread, it would be killed
/// as soon as its first task was reported. Forked from this thread, its signal follows the
/// worker's life.
enum SpawnThread {
    private static let queue = Mutex<[@Sendable () -> Void]>([])
    private static let wake = DispatchSemaphore(value: 0)
    private static let started: Bool = {
        let thread = Thread {
            while true {
                wake.wait()
                let work = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                work?()
            }
        }
        thread.name = "sparsegrid-spawn"
        thread.start()
        return true
    }()

    /// Runs `body` on the spawn thread and returns what it returned (or throws what it threw).
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        precondition(started)
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, any Error>?>(nil)
        queue.withLock {
            $0.append {
                let outcome = Result { try body() }
                result.withLock { $0 = outcome }
                done.signal()
            }
        }
        wake.signal()
        done.wait()
        return try result.withLock { $0! }.get()
    }
}
