import SweepKit
import Wire

@testable import Worker

// A session with no sockets and a mock clock: every `now` is a plain number of seconds.

let coordinatorAddress = "tcp://127.0.0.1:5555"
let dataAddress = "tcp://127.0.0.1:5556"

func makeSession(
    slots: Int = 2, taskTimeout: Double = WorkerConfig.defaultTaskTimeout, connectTimeout: Double? = nil,
    idleTimeout: Double? = nil, drainGrace: Double = WorkerConfig.defaultDrainGrace
) -> WorkerSession {
    let config = WorkerConfig(
        coordinator: coordinatorAddress, workerId: "w1", host: "node1",
        slots: (0..<slots).map { SlotInfo(index: $0, device: "cpu") }, engines: [:],
        cacheDirectory: "/tmp/sparsegrid-worker-tests", taskTimeout: taskTimeout,
        describeEngines: false, connectTimeout: connectTimeout, idleTimeout: idleTimeout,
        drainGrace: drainGrace)
    return WorkerSession(config: config, pid: 4242, engines: ["null": ["builtin": true]])
}

func welcome(heartbeatInterval: Double = 1, deadAfter: Double = 5) -> Incoming {
    .welcome(Welcome(heartbeatInterval: heartbeatInterval, deadAfter: deadAfter, dataEndpoint: dataAddress))
}

func assign(_ attemptId: String, engine: String = "test", timeout: Double? = nil) -> Incoming {
    .assign(
        Assign(
            attemptId: attemptId, taskId: "task-\(attemptId)", sweep: "sw", stage: "train", engine: engine,
            params: ["model": "m1", "method": "magnitude"], method: nil, data: nil, measure: nil, inputs: [:],
            device: "cpu", timeout: timeout))
}

/// What a job hands back when its engine succeeded.
func resultFrames(_ attemptId: String) -> [[UInt8]] {
    Codec.frames(
        .result,
        TaskResult(
            attemptId: attemptId, taskId: "task-\(attemptId)", metrics: ["accuracy": 0.9],
            units: [:], details: .null, artifacts: []))
}

func failedFrames(_ attemptId: String, error: String) -> [[UInt8]] {
    Codec.frames(
        .failed,
        TaskFailed(
            attemptId: attemptId, taskId: "task-\(attemptId)", error: error, exitCode: nil,
            stderrTail: nil, retryable: false))
}

/// A session that said hello at 0 and was welcomed at 0, its effects drained.
func welcomedSession(
    slots: Int = 2, taskTimeout: Double = WorkerConfig.defaultTaskTimeout,
    heartbeatInterval: Double = 1, deadAfter: Double = 5, idleTimeout: Double? = nil,
    drainGrace: Double = WorkerConfig.defaultDrainGrace
) -> WorkerSession {
    var s = makeSession(slots: slots, taskTimeout: taskTimeout, idleTimeout: idleTimeout, drainGrace: drainGrace)
    s.start(now: 0)
    s.received(welcome(heartbeatInterval: heartbeatInterval, deadAfter: deadAfter), now: 0)
    _ = s.drainEffects()
    return s
}

/// An effect with its message decoded, so tests compare values rather than bytes.
enum Seen: Equatable, CustomStringConvertible {
    case hello(running: [String], slots: Int)
    case ready(Int)
    case heartbeat([String])
    case progress(String)
    case result(String, credit: Int)
    case failed(String, error: String, credit: Int)
    case bye
    case startJob(String, slot: Int, dataEndpoint: String)
    case cancelJob(String, reason: String)
    case reconnect
    case log(String)
    case fail(String)
    case finished
    case undecodable(String)

    var description: String {
        switch self {
        case .hello(let running, let slots): "hello(running: \(running), slots: \(slots))"
        case .ready(let n): "ready(\(n))"
        case .heartbeat(let running): "heartbeat(\(running))"
        case .progress(let id): "progress(\(id))"
        case .result(let id, let credit): "result(\(id), credit: \(credit))"
        case .failed(let id, let error, let credit): "failed(\(id), \(error), credit: \(credit))"
        case .bye: "bye"
        case .startJob(let id, let slot, let endpoint): "startJob(\(id), slot: \(slot), \(endpoint))"
        case .cancelJob(let id, let reason): "cancelJob(\(id), \(reason))"
        case .reconnect: "reconnect"
        case .log(let line): "log(\(line))"
        case .fail(let error): "fail(\(error))"
        case .finished: "finished"
        case .undecodable(let what): "undecodable(\(what))"
        }
    }

    var isLog: Bool {
        if case .log = self { return true }
        return false
    }

    init(_ effect: WorkerEffect) {
        switch effect {
        case .send(let type, let frames): self = Seen.message(type, frames)
        case .startJob(let assign, let slot, let endpoint):
            self = .startJob(assign.attemptId, slot: slot.index, dataEndpoint: endpoint)
        case .cancelJob(let id, let reason, _): self = .cancelJob(id, reason: reason)
        case .reconnect: self = .reconnect
        case .log(let entry): self = .log(entry.message)
        case .fail(let error): self = .fail(error.description)
        case .finished: self = .finished
        }
    }

    private static func message(_ type: MessageType, _ frames: [[UInt8]]) -> Seen {
        do {
            let envelope = try Codec.parse(frames)
            guard envelope.type == type else { return .undecodable("\(type) carrying \(envelope.type)") }
            switch type {
            case .hello:
                let hello = try envelope.decode(Hello.self)
                return .hello(running: hello.running, slots: hello.slots.count)
            case .ready: return .ready(try envelope.decode(Ready.self).credits)
            case .heartbeat: return .heartbeat(try envelope.decode(Heartbeat.self).running)
            case .progress: return .progress(try envelope.decode(TaskProgress.self).attemptId)
            case .result:
                let result = try envelope.decode(TaskResult.self)
                return .result(result.attemptId, credit: result.credit)
            case .failed:
                let failed = try envelope.decode(TaskFailed.self)
                return .failed(failed.attemptId, error: failed.error, credit: failed.credit)
            case .bye: return .bye
            default: return .undecodable("\(type)")
            }
        } catch {
            return .undecodable("\(type): \(error)")
        }
    }
}

extension WorkerSession {
    /// Drains the effects, decoded.
    mutating func drain() -> [Seen] { drainEffects().map(Seen.init) }

    /// Drains the effects, decoded, without the log lines.
    mutating func drainQuiet() -> [Seen] { drain().filter { !$0.isLog } }
}
