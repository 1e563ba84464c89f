import SweepKit

/// Protocol version carried in the first frame of every message.
public let wireVersion = "SG1"

/// Message types of the worker, control and data sockets (docs/protocol.md). The raw value
/// is the second frame.
public enum MessageType: String, Sendable, CaseIterable {
    // worker → coordinator
    case hello, ready, heartbeat, progress, result, failed, bye
    // coordinator → worker
    case welcome, assign, cancel, reject, ack
    // control client ↔ coordinator
    case launch, status, cancelSweep = "cancel_sweep", retrySweep = "retry_sweep", reply
    // control client → coordinator: a launch in parts
    case launchBegin = "launch_begin", launchTasks = "launch_tasks", launchEnd = "launch_end"
    // artifact (data) socket
    case stat, have, put, putAck = "put_ack", get, chunk, missing
}

/// A message with no fields (`bye`, the coordinator's `heartbeat`).
public struct Empty: WireMessage {
    public init() {}
    public init(fields: Fields) throws {}
    public var json: JSONValue { .object([:]) }
}
