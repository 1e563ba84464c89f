import CZeroMQ
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The connection events libzmq can report about a socket (`zmq_socket_monitor`).
public struct SocketEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let connected = SocketEvents(rawValue: ZMQ_EVENT_CONNECTED)
    public static let connectDelayed = SocketEvents(rawValue: ZMQ_EVENT_CONNECT_DELAYED)
    public static let connectRetried = SocketEvents(rawValue: ZMQ_EVENT_CONNECT_RETRIED)
    public static let disconnected = SocketEvents(rawValue: ZMQ_EVENT_DISCONNECTED)
    public static let closed = SocketEvents(rawValue: ZMQ_EVENT_CLOSED)
    public static let handshakeSucceeded = SocketEvents(rawValue: ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
    /// The handshake failed for a reason libzmq does not detail (e.g. the peer went away).
    public static let handshakeFailedNoDetail = SocketEvents(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    /// The peer broke the ZMTP or security protocol (e.g. a CURVE server key that does not match).
    public static let handshakeFailedProtocol = SocketEvents(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
    /// The server's ZAP handler refused this socket's credentials; the event's `value` is the
    /// ZAP status code (400: not allowed, 500: the handler failed).
    public static let handshakeFailedAuth = SocketEvents(rawValue: ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
    /// The monitor has stopped (the monitored socket closed); no event follows.
    public static let monitorStopped = SocketEvents(rawValue: ZMQ_EVENT_MONITOR_STOPPED)

    /// Every handshake outcome.
    public static let handshakes: SocketEvents = [
        .handshakeSucceeded, .handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth,
    ]
}

/// One event from a `SocketMonitor`.
public struct SocketEvent: Sendable, Equatable {
    /// Exactly one of `SocketEvents`' flags (an unknown one is passed on as it came).
    public let kind: SocketEvents
    /// What libzmq attaches: a ZAP status code for `handshakeFailedAuth`, a
    /// `ZMQ_PROTOCOL_ERROR_*` code for `handshakeFailedProtocol`, a file descriptor or errno
    /// for the others.
    public let value: UInt32
    /// The endpoint the event is about, e.g. `tcp://10.0.0.2:5555`.
    public let endpoint: String

    public init(kind: SocketEvents, value: UInt32, endpoint: String) {
        self.kind = kind
        self.value = value
        self.endpoint = endpoint
    }

    /// Parses libzmq's two-frame event message (a 16-bit event number and a 32-bit value in
    /// host byte order, then the endpoint); nil for anything else.
    init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6, frames[1].count <= 1024 else { return nil }
        let header = frames[0]
        let event = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt16.self) }
        let value = header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 2, as: UInt32.self) }
        self.init(
            kind: SocketEvents(rawValue: Int32(event)), value: value,
            endpoint: String(decoding: frames[1], as: UTF8.self))
    }
}

/// Reports connection events of one socket (`zmq_socket_monitor`): libzmq publishes them on an
/// inproc PAIR that this monitor connects to. Poll `socket` for `.readable`, then call
/// `next()` until it returns nil.
///
/// **Same thread as the monitored socket**: create, read and close it on the thread that owns
/// the socket it watches. Close it when done; closing the monitored socket ends the events
/// (a last `monitorStopped`) but does not close this one.
public final class SocketMonitor: @unchecked Sendable {
    /// The PAIR socket the events arrive on (for a `PollItem`).
    public let socket: Socket

    private static let counter = Atomic<Int>(0)

    init(watching target: Socket, events: SocketEvents) throws {
        let handle = try target.liveHandle(for: "zmq_socket_monitor")
        let number = Self.counter.add(1, ordering: .relaxed).newValue
        let endpoint = "inproc://zeromq-monitor-\(getpid())-\(number)"
        try zmqCall("zmq_socket_monitor", detail: "endpoint '\(endpoint)'") {
            zmq_socket_monitor(handle, endpoint, events.rawValue)
        }
        do {
            let pair = try target.context.socket(.pair)
            try pair.setLinger(milliseconds: 0)
            try pair.connect(endpoint)
            socket = pair
        } catch {
            _ = zmq_socket_monitor(handle, nil, 0)
            throw error
        }
    }

    /// The next queued event, or nil when none is queued (never blocks).
    public func next() throws -> SocketEvent? {
        while let frames = try socket.receive(dontWait: true) {
            if let event = SocketEvent(frames: frames) { return event }
            // Not an event message (libzmq never sends one): skip it rather than stall.
        }
        return nil
    }

    /// Closes the PAIR socket. Safe to call more than once.
    public func close() { socket.close() }

    deinit { close() }
}

extension Socket {
    /// Starts reporting `events` of this socket; see `SocketMonitor`. Call it before `connect`
    /// or `bind` to see every event of those connections.
    public func monitor(_ events: SocketEvents) throws -> SocketMonitor {
        try SocketMonitor(watching: self, events: events)
    }
}
