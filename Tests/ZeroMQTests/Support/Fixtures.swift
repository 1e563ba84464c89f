import Synchronization
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

private let serial = Atomic<Int>(0)

/// An inproc endpoint no other test uses: libzmq frees inproc names asynchronously, so
/// reusing one right after a close can fail with EADDRINUSE.
func uniqueInproc(_ label: String) -> String {
    "inproc://test-\(label)-\(getpid())-\(serial.add(1, ordering: .relaxed).newValue)"
}

/// Upper bound for any wait in these tests; generous because the machine is shared.
let patienceMilliseconds: Int32 = 5_000

extension Context {
    /// A socket whose blocking calls give up after `patienceMilliseconds`, so a broken
    /// test fails instead of hanging.
    func boundedSocket(_ type: SocketType) throws -> Socket {
        let socket = try self.socket(type)
        try socket.setReceiveTimeout(milliseconds: patienceMilliseconds)
        try socket.setSendTimeout(milliseconds: patienceMilliseconds)
        try socket.setLinger(milliseconds: 0)
        return socket
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Milliseconds on the monotonic clock, for measuring how long a call waited.
func nowMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
}

/// Values that threads hand back to the test.
final class Collected<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])

    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
}
