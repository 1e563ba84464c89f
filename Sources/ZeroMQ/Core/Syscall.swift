import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// The one door to libzmq, in the manner of swift-nio's System.swift: a call that reports
// failure is retried while it was only interrupted by a signal (EINTR), and otherwise turned
// into a ZMQError carrying errno, the function name and what it was working on.

/// Runs a libzmq call that returns `-1` on failure; returns its (non-negative) result.
@inline(__always)
@discardableResult
func zmqCall(
    _ function: String,
    detail: @autoclosure () -> String? = nil,
    _ body: () -> Int32
) throws(ZMQError) -> Int32 {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(errno: code, function: function, detail: detail())
    }
}

/// Runs a libzmq call that returns `NULL` on failure (`zmq_ctx_new`, `zmq_socket`).
@inline(__always)
func zmqCall(
    _ function: String,
    detail: @autoclosure () -> String? = nil,
    _ body: () -> UnsafeMutableRawPointer?
) throws(ZMQError) -> UnsafeMutableRawPointer {
    while true {
        if let pointer = body() { return pointer }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(errno: code, function: function, detail: detail())
    }
}
