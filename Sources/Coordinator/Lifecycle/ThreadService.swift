import ServiceLifecycle
import Synchronization
import ZeroMQ

/// A blocking socket loop run as a `Service` on a thread of its own, so the cooperative pool
/// never blocks in libzmq. The loop polls `stopped` between turns; graceful shutdown (SIGTERM,
/// SIGINT through a `ServiceGroup`), task cancellation and `stop()` all set it, and `run()`
/// returns once the loop has finished its turn and returned.
///
/// The body and the non-Sendable state it captures (sockets) move into the thread once, when
/// `run()` starts it; nothing else touches them afterwards.
final class ThreadService: Service, Sendable {
    let name: String
    private let body: Once<(@escaping @Sendable () -> Bool) -> Void>
    private let flag = StopFlag()

    init(name: String, _ body: sending @escaping (_ stopped: @escaping @Sendable () -> Bool) -> Void) {
        self.name = name
        self.body = Once(body)
    }

    func run() async {
        let (name, body, flag) = (self.name, self.body, self.flag)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    guard let loop = body.take() else { return done.resume() }
                    _ = SocketThread.start(name: name) {
                        loop({ flag.isSet })
                        done.resume()
                    }
                }
            } onCancel: {
                flag.set()
            }
        } onGracefulShutdown: {
            flag.set()
        }
    }

    /// Asks the loop to finish its turn and return.
    func stop() { flag.set() }
}

/// A value handed over exactly once, from whichever thread asks first.
final class Once<Value>: Sendable {
    private let value: Mutex<Value?>
    init(_ value: sending Value) { self.value = Mutex(value) }
    func take() -> sending Value? { value.withLock { $0.take() } }
}

/// A flag one thread sets and socket loops poll between turns.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
