import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which events to wait for, or which fired.
public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// A whole message can be received without blocking (for a file descriptor: data).
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// A message can be sent without blocking.
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

extension PollEvents: CustomStringConvertible {
    public var description: String {
        let names = [(PollEvents.readable, "readable"), (.writable, "writable")]
            .filter { contains($0.0) }.map(\.1)
        return "[" + names.joined(separator: ", ") + "]"
    }
}

/// One thing to poll: a socket (owned by the polling thread) or a plain file descriptor.
public struct PollItem {
    enum Target {
        case socket(Socket)
        case fileDescriptor(Int32)
    }

    let target: Target
    public let events: PollEvents

    public init(socket: Socket, events: PollEvents) {
        self.target = .socket(socket)
        self.events = events
    }

    /// Polls an ordinary file descriptor (a pipe, a TCP socket not owned by libzmq).
    public init(fileDescriptor: Int32, events: PollEvents) {
        self.target = .fileDescriptor(fileDescriptor)
        self.events = events
    }
}

/// `zmq_poll` over several sockets at once. It blocks, so call it only from a socket's owner
/// thread (a `SocketThread`), never from the cooperative pool.
public enum Poller {
    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: just look) until one of the items
    /// has one of its events; returns, per item and in order, which of its events fired
    /// (all empty when the time ran out). A signal does not cut the wait short.
    public static func poll(_ items: [PollItem], timeoutMilliseconds: Int) throws -> [PollEvents] {
        var raw: [zmq_pollitem_t] = []
        raw.reserveCapacity(items.count)
        for item in items {
            switch item.target {
            case .socket(let socket):
                let handle = try socket.liveHandle(for: "zmq_poll")
                raw.append(zmq_pollitem_t(socket: handle, fd: -1, events: item.events.rawValue, revents: 0))
            case .fileDescriptor(let fd):
                raw.append(zmq_pollitem_t(socket: nil, fd: fd, events: item.events.rawValue, revents: 0))
            }
        }
        let deadline = timeoutMilliseconds > 0 ? monotonicMilliseconds() + timeoutMilliseconds : 0
        let count = Int32(raw.count)
        try zmqCall("zmq_poll", detail: "\(items.count) items") {
            // An interrupted wait is retried with only the time that is left.
            let remaining = timeoutMilliseconds > 0 ? max(0, deadline - monotonicMilliseconds()) : timeoutMilliseconds
            return raw.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, count, remaining) }
        }
        return raw.map { PollEvents(rawValue: $0.revents).intersection([.readable, .writable]) }
    }

    private static func monotonicMilliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
    }
}
