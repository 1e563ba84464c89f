import CZeroMQ

/// A libzmq context: the I/O threads and the inproc namespace that sockets share.
///
/// Thread-safe (libzmq guarantees this for contexts), hence `Sendable`. Every `Socket` keeps
/// its context alive, so `deinit` — which terminates the context and waits for the sockets'
/// linger — runs only after all of them are closed and released.
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: background threads libzmq uses for network I/O; one handles
    ///   about a gigabyte per second, so one is plenty here.
    public init(ioThreads: Int = 1) throws {
        handle = try zmqCall("zmq_ctx_new") { zmq_ctx_new() }
        // If this throws, deinit still runs (the object is fully initialised) and terminates
        // the context.
        try zmqCall("zmq_ctx_set", detail: "ZMQ_IO_THREADS = \(ioThreads)") {
            zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(clamping: ioThreads))
        }
    }

    /// A new socket of this context. It belongs to one thread at a time (see `Socket`).
    public func socket(_ type: SocketType) throws -> Socket {
        let socket = try zmqCall("zmq_socket", detail: "a \(type) socket") {
            zmq_socket(handle, type.rawValue)
        }
        return try Socket(handle: socket, type: type, context: self)
    }

    /// Makes every blocking call on this context's sockets — now and later — fail with
    /// `ETERM` (`ZMQError.isTerminated`), so their owner threads can close them and exit.
    /// Safe to call from any thread, more than once.
    public func shutdown() {
        // Fails only with EFAULT for an invalid context, which `handle` never is.
        _ = try? zmqCall("zmq_ctx_shutdown") { zmq_ctx_shutdown(handle) }
    }

    deinit {
        // Blocks until every socket is closed and its linger has run out; sockets retain the
        // context, so by now they are all closed and only their linger remains.
        _ = try? zmqCall("zmq_ctx_term") { zmq_ctx_term(handle) }
    }
}
