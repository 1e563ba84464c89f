import CZeroMQ
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A dedicated OS thread (pthread) for a socket loop.
///
/// Blocking libzmq calls must never sit on the Swift cooperative pool: it has only as many
/// threads as cores, and a few blocked loops freeze every task in the process. The closure
/// is `sending`, so a non-Sendable value (a socket and its state) can move into the thread
/// that owns it from then on.
public final class SocketThread: @unchecked Sendable {
    public let name: String
    private let thread: pthread_t
    private let joined = Mutex(false)

    private init(name: String, thread: pthread_t) {
        self.name = name
        self.thread = thread
    }

    /// Starts `body` on a new thread named `name` (Linux shows the first 15 bytes in `top -H`).
    ///
    /// Creating a thread fails only when the process is out of threads or memory; that is
    /// treated as fatal, as Foundation's `Thread` does.
    public static func start(name: String, _ body: sending @escaping () -> Void) -> SocketThread {
        let payload = ThreadPayload(name: name, body: body)
        let argument = Unmanaged.passRetained(payload).toOpaque()
        #if canImport(Darwin)
            var thread: pthread_t? = nil
        #else
            var thread = pthread_t()
        #endif
        let result = pthread_create(
            &thread, nil,
            { argument in
                let payload = Unmanaged<ThreadPayload>.fromOpaque(argument!).takeRetainedValue()
                payload.nameCurrentThread()
                payload.run()
                return nil
            }, argument)
        guard result == 0 else {
            Unmanaged<ThreadPayload>.fromOpaque(argument).release()
            fatalError(
                "Could not start thread '\(name)': \(String(cString: strerror(result))). The process has run out of threads or memory."
            )
        }
        #if canImport(Darwin)
            return SocketThread(name: name, thread: thread!)
        #else
            return SocketThread(name: name, thread: thread)
        #endif
    }

    /// Waits until the thread's body has returned. Blocks: call it from a thread, or from
    /// the pool only for a body that is known to be finishing. Later calls return at once.
    public func join() {
        joined.withLock { done in
            guard !done else { return }
            done = true
            // The only failure is joining oneself (EDEADLK), which must not block forever.
            _ = pthread_join(thread, nil)
        }
    }

    deinit {
        // A thread nobody joins must still release its resources when it ends.
        let needsDetach = joined.withLock { done in !done }
        if needsDetach { pthread_detach(thread) }
    }
}

/// What crosses into the new thread: its name and the closure, exactly once.
private final class ThreadPayload: @unchecked Sendable {
    let name: String
    private let body: () -> Void

    init(name: String, body: sending @escaping () -> Void) {
        self.name = name
        self.body = body
    }

    func run() { body() }

    func nameCurrentThread() {
        // Linux limits thread names to 15 bytes plus the terminator.
        let short = String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self)
        #if canImport(Darwin)
            pthread_setname_np(short)
        #else
            czmq_name_current_thread(short)
        #endif
    }
}
