import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A ZeroMQ socket.
///
/// **Not thread-safe: one owner thread.** libzmq sockets must not be used from two threads
/// at once. The class is `@unchecked Sendable` only so that a socket can be created on one
/// thread and handed to the thread that owns it from then on (typically a `SocketThread`);
/// after the hand-over, no other thread may touch it. Blocking calls (`receive`, `send`
/// without `dontWait`, `Poller.poll`) must never run on the Swift cooperative pool.
///
/// New sockets linger `Socket.defaultLingerMilliseconds` after `close()` so that a final
/// message still goes out while the context's termination stays bounded.
public final class Socket: @unchecked Sendable {
    /// The linger every new socket starts with: long enough to flush a goodbye, short enough
    /// that terminating the context never hangs on an unreachable peer.
    public static let defaultLingerMilliseconds: Int32 = 1000

    public let type: SocketType
    /// Retained so the context cannot be terminated while this socket is open.
    let context: Context
    private var handle: UnsafeMutableRawPointer?

    init(handle: UnsafeMutableRawPointer, type: SocketType, context: Context) throws {
        self.handle = handle
        self.type = type
        self.context = context
        try setLinger(milliseconds: Self.defaultLingerMilliseconds)
    }

    deinit { close() }

    /// Whether `close()` has run.
    public var isClosed: Bool { handle == nil }

    /// The live handle, or an `ENOTSOCK` error naming the call that needed it.
    func liveHandle(for function: String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else {
            throw ZMQError(errno: ENOTSOCK, function: function, detail: "a \(type) socket that is already closed")
        }
        return handle
    }

    /// Listens on an endpoint: `tcp://127.0.0.1:5555`, `tcp://127.0.0.1:*` (any free port,
    /// see `lastEndpoint`), `ipc:///path`, `inproc://name`.
    public func bind(_ endpoint: String) throws {
        let socket = try liveHandle(for: "zmq_bind")
        try zmqCall("zmq_bind", detail: "endpoint '\(endpoint)'") { zmq_bind(socket, endpoint) }
    }

    /// Connects to an endpoint. For tcp this succeeds before the peer exists; libzmq keeps
    /// reconnecting in the background.
    public func connect(_ endpoint: String) throws {
        let socket = try liveHandle(for: "zmq_connect")
        try zmqCall("zmq_connect", detail: "endpoint '\(endpoint)'") { zmq_connect(socket, endpoint) }
    }

    /// Stops listening on an endpoint given to `bind` (use `lastEndpoint` for wildcards).
    public func unbind(_ endpoint: String) throws {
        let socket = try liveHandle(for: "zmq_unbind")
        try zmqCall("zmq_unbind", detail: "endpoint '\(endpoint)'") { zmq_unbind(socket, endpoint) }
    }

    /// Drops a connection made with `connect`.
    public func disconnect(_ endpoint: String) throws {
        let socket = try liveHandle(for: "zmq_disconnect")
        try zmqCall("zmq_disconnect", detail: "endpoint '\(endpoint)'") { zmq_disconnect(socket, endpoint) }
    }

    /// Closes the socket; later calls throw `ENOTSOCK`. Safe to call more than once.
    public func close() {
        guard let socket = handle else { return }
        handle = nil
        // zmq_close fails only for an invalid handle (ENOTSOCK), which this one is not.
        _ = try? zmqCall("zmq_close") { zmq_close(socket) }
    }

    /// The endpoint the socket last bound or connected to, with a wildcard port resolved:
    /// after `bind("tcp://127.0.0.1:*")` this is e.g. `"tcp://127.0.0.1:41234"`.
    public var lastEndpoint: String {
        get throws {
            let socket = try liveHandle(for: "zmq_getsockopt")
            var buffer = [CChar](repeating: 0, count: 1024)
            var size = buffer.count
            try zmqCall("zmq_getsockopt", detail: "ZMQ_LAST_ENDPOINT") {
                zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, &buffer, &size)
            }
            let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
