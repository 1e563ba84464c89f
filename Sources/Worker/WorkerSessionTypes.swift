import SweepKit
import Wire

/// A message from the coordinator, decoded and validated: the inputs of `WorkerSession`.
enum Incoming: Sendable {
    case welcome(Welcome)
    case assign(Assign)
    case cancel(Cancel)
    case ack(Ack)
    case reject(Reject)
    /// The coordinator's keep-alive: it only says that the coordinator is there.
    case heartbeat

    /// Reads one message of the worker socket (frames without routing identity). Throws a
    /// `WireError` for anything a worker does not take: a bad frame, a field out of range, or
    /// a type the coordinator never sends to a worker.
    static func decode(_ frames: [[UInt8]]) throws -> Incoming {
        let envelope = try Codec.parse(frames)
        switch envelope.type {
        case .welcome: return .welcome(try envelope.decode(Welcome.self))
        case .assign: return .assign(try envelope.decode(Assign.self))
        case .cancel: return .cancel(try envelope.decode(Cancel.self))
        case .ack: return .ack(try envelope.decode(Ack.self))
        case .reject: return .reject(try envelope.decode(Reject.self))
        case .heartbeat:
            _ = try envelope.decode(Empty.self)
            return .heartbeat
        default:
            throw WireError("a coordinator does not send `\(envelope.type.rawValue)` to a worker", code: .notAllowed)
        }
    }
}

/// What the session decided; `WorkerNode` carries these out in order.
enum WorkerEffect: Sendable {
    /// Send an encoded message (`Codec.frames`) on the current socket.
    case send(MessageType, [[UInt8]])
    /// Run an attempt on a job thread, on this slot, fetching inputs from `dataEndpoint`.
    case startJob(Assign, slot: SlotInfo, dataEndpoint: String)
    /// Stop a running attempt's engine; the job still reports how it ended (`jobFinished`).
    /// `retryable`: the task should run again elsewhere (the worker stops, a time limit fired),
    /// rather than having been cancelled by the coordinator.
    case cancelJob(attemptId: String, reason: String, retryable: Bool)
    /// Close the socket and open a fresh one (queued messages to a dead peer are dropped).
    /// The effects that follow (the hello) go on the new socket.
    case reconnect
    /// A line for the worker's operator log.
    case log(WorkerLog)
    /// Give up: `run()` throws this error (no coordinator answered within the connect timeout).
    case fail(WorkerError)
    /// `bye` has been sent: close the socket and end the loop.
    case finished
}

/// One line of the worker's operator log: what happened (`event`, a short stable word), for
/// which attempt, and a sentence.
struct WorkerLog: Sendable, Equatable {
    var level: LogLine.Level = .info
    var event: String
    var attemptId: String? = nil
    var taskId: String? = nil
    var message: String
}

extension WorkerSession {
    /// An attempt this worker runs on one of its slots.
    struct RunningAttempt: Sendable {
        var assign: Assign
        var slot: SlotInfo
        var startedAt: Double
        /// The engine's last event (progress or metric), or the start: the idle timeout counts
        /// from here.
        var lastEvent: Double
        /// Why the session asked for it to be stopped, once it has (a time limit asks only once).
        var cancel: CancelKind? = nil
        /// Task ids of the other attempts that ran on this slot's device at any time while this
        /// one ran (its own task excluded): the first `WireLimits.maxCoTenants` of them.
        var coTenants: Set<String> = []
        /// The most attempts that ran on this slot's device at once while this one ran, itself
        /// included.
        var atOnce = 1

        var cancelRequested: Bool { cancel != nil }
    }

    /// Why the session stopped an attempt's engine.
    enum CancelKind: Sendable, Equatable {
        /// The coordinator said so (sweep cancelled, another attempt won): not retried.
        case coordinator
        /// A time limit fired (the reason says which): reported as outcome `timeout`, retried.
        case timeout(reason: String)
        /// The worker is stopping: retried elsewhere.
        case shutdown
    }

    /// A `result` or `failed` message the coordinator has not acknowledged yet.
    struct Unacknowledged: Sendable {
        var attemptId: String
        var type: MessageType
        /// As first stored: without credit, so a resend after a reconnect frees no slot twice.
        var frames: [[UInt8]]
    }

    /// Where the session is in its life.
    enum Phase: Sendable, Equatable {
        /// Before `start(now:)`.
        case idle
        case running
        /// The first SIGTERM: no new work (assigns are refused), running attempts may finish
        /// until the drain grace has passed; `bye` goes once none runs and every result is
        /// acknowledged.
        case draining
        /// Stopping now (a second SIGTERM, or the drain grace passed): jobs are being
        /// cancelled; `bye` goes once none runs.
        case stopping
        /// `bye` sent (`finished`) or given up (`fail`): no more effects.
        case ended
    }

    /// Timing rules of the connection.
    enum Timing {
        /// First wait before a hello with no welcome is tried again on a fresh socket.
        static let firstBackoff = 0.5
        /// The wait doubles per try up to this.
        static let maxBackoff = 10.0
        /// Until the coordinator's welcome says otherwise.
        static let defaultHeartbeatInterval = 1.0
        static let defaultDeadAfter = 30.0
        /// With no welcome yet after this long, the log says what it is waiting for.
        static let waitingNotice = 3.0
    }
}
