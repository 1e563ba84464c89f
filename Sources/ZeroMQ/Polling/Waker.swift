import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

private let wakerSerial = Atomic<Int>(0)

/// Wakes a thread blocked in `Poller.poll` from any other thread.
///
/// A PAIR of inproc sockets: the polling thread includes `socket` (readable after a wake) in
/// its poll and calls `drain()` when it fires; any thread may call `wake()`.
public final class Waker: @unchecked Sendable {
    /// The end to poll for `.readable`. It belongs to the polling thread alone.
    public let socket: Socket
    /// The waking end, shared by all threads, so every use goes through the lock.
    private let sender: Mutex<Socket>

    public init(context: Context) throws {
        let endpoint = "inproc://swift-zeromq.waker.\(getpid()).\(wakerSerial.add(1, ordering: .relaxed).newValue)"
        let receiver = try context.socket(.pair)
        try receiver.setLinger(milliseconds: 0)
        try receiver.bind(endpoint)
        let sender = try context.socket(.pair)
        try sender.setLinger(milliseconds: 0)
        try sender.connect(endpoint)
        self.socket = receiver
        self.sender = Mutex(sender)
    }

    /// Makes `socket` readable. Never blocks. Wakes that cannot be queued are dropped on
    /// purpose: either a wake is already pending (the queue is full) or the context is shut
    /// down, and then the poll has already returned with `isTerminated`.
    public func wake() {
        sender.withLock { sender in
            _ = try? sender.send([[]], dontWait: true)
        }
    }

    /// Consumes every pending wake so the next poll blocks again. Call it on the polling
    /// thread after `socket` polled readable.
    public func drain() throws {
        while try socket.receive(dontWait: true) != nil {}
    }
}
