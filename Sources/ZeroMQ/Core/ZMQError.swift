import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failed libzmq call: which function, the errno it left, and what it was doing.
///
/// Every C call in this module goes through `zmqCall` (see `Syscall.swift`), so this is the
/// only error the module throws.
public struct ZMQError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The errno libzmq reported (system values, or libzmq's own such as `ETERM`).
    public let errno: Int32
    /// The libzmq function that failed, e.g. `"zmq_connect"`.
    public let function: String
    /// What the call was working on, e.g. `"endpoint 'tcp://10.0.0.1:5555'"`; nil when the
    /// function name says enough.
    public let detail: String?

    public init(errno: Int32, function: String, detail: String? = nil) {
        self.errno = errno
        self.function = function
        self.detail = detail
    }

    /// The operation would block (non-blocking call with nothing to do), or a send/receive
    /// timeout ran out.
    public var isAgain: Bool { errno == EAGAIN }
    /// The context was shut down or terminated; the socket can only be closed now.
    public var isTerminated: Bool { errno == czmq_eterm() }
    /// A ROUTER with `ROUTER_MANDATORY` was asked to send to a routing id no peer has.
    public var isHostUnreachable: Bool { errno == EHOSTUNREACH }

    /// The symbolic errno name, e.g. `"EPROTONOSUPPORT"`, or `"errno 1234"` when unknown.
    public var errnoName: String { Self.name(of: errno) }

    /// libzmq's own text for the errno (`zmq_strerror`).
    public var message: String { String(cString: zmq_strerror(errno)) }

    public var description: String {
        let subject = detail.map { "\(function) failed for \($0)" } ?? "\(function) failed"
        var sentence = "\(subject): \(message) (\(errnoName), errno \(errno))."
        if let hint = Self.hint(for: errno) { sentence += " " + hint }
        return sentence
    }

    /// What a user can do about the common errors, so a message is more than a code.
    private static func hint(for code: Int32) -> String? {
        switch code {
        case EPROTONOSUPPORT:
            return "Use an endpoint of the form tcp://host:port, ipc:///path or inproc://name."
        case EINVAL:
            return "Check the endpoint or option value for typos (tcp endpoints need host and port)."
        case EADDRINUSE:
            return
                "Another socket already listens there; choose another port, use tcp://host:* for a free one, or stop the other process."
        case EADDRNOTAVAIL:
            return "The address is not one of this machine's interfaces; bind to 127.0.0.1, 0.0.0.0 or a local address."
        case ENODEV:
            return "The named network interface does not exist on this machine."
        case EHOSTUNREACH:
            return "No connected peer has that routing id; it may have disconnected."
        case EAGAIN:
            return "Nothing could be sent or received without waiting (or the timeout ran out); try again later."
        case ENOTSOCK:
            return "The socket was already closed; create a new one."
        case ENOTSUP:
            return "This libzmq build does not support the operation (check ZMQ.has(\"curve\") for CURVE)."
        case EMFILE:
            return "The process ran out of file descriptors or sockets; close unused sockets or raise the limit."
        default:
            if code == czmq_eterm() {
                return "The context was shut down; close the socket and stop using it."
            }
            if code == czmq_efsm() {
                return
                    "The socket type does not allow this operation in its current state (e.g. REQ must alternate send and receive)."
            }
            return nil
        }
    }

    private static func name(of code: Int32) -> String {
        let names: [(Int32, String)] = [
            (EAGAIN, "EAGAIN"), (EINTR, "EINTR"), (EINVAL, "EINVAL"), (EFAULT, "EFAULT"),
            (ENOMEM, "ENOMEM"), (ENODEV, "ENODEV"), (ENOENT, "ENOENT"), (EACCES, "EACCES"),
            (EMFILE, "EMFILE"), (EADDRINUSE, "EADDRINUSE"), (EADDRNOTAVAIL, "EADDRNOTAVAIL"),
            (ECONNREFUSED, "ECONNREFUSED"), (EHOSTUNREACH, "EHOSTUNREACH"),
            (ENOTSOCK, "ENOTSOCK"), (EPROTONOSUPPORT, "EPROTONOSUPPORT"),
            (ENOTSUP, "ENOTSUP"), (EMSGSIZE, "EMSGSIZE"), (ENOBUFS, "ENOBUFS"),
            (ENETDOWN, "ENETDOWN"), (ENETUNREACH, "ENETUNREACH"), (ECONNRESET, "ECONNRESET"),
            (ECONNABORTED, "ECONNABORTED"), (ETIMEDOUT, "ETIMEDOUT"),
            (czmq_eterm(), "ETERM"), (czmq_efsm(), "EFSM"),
            (czmq_enocompatproto(), "ENOCOMPATPROTO"), (czmq_emthread(), "EMTHREAD"),
        ]
        return names.first { $0.0 == code }?.1 ?? "errno \(code)"
    }
}
