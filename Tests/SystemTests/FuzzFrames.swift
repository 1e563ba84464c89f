import Foundation
import SweepKit
import Wire

/// JSON as raw text pieces, so a fuzzer can write what no encoder would: numbers no integer
/// type holds, invalid UTF-8 inside strings, nesting deeper than any parser allows.
indirect enum FuzzJSON {
    case null
    case bool(Bool)
    /// The number exactly as written (e.g. "1e20", "9223372036854775808").
    case number(String)
    /// The bytes between the quotes, already escaped (may be invalid UTF-8 on purpose).
    case string([UInt8])
    case array([FuzzJSON])
    case object([(String, FuzzJSON)])

    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number: self = .number(value.canonicalText)
        case .string: self = .string(Array(value.canonicalText.utf8.dropFirst().dropLast()))
        case .array(let a): self = .array(a.map(FuzzJSON.init))
        case .object(let o): self = .object(o.keys.sorted().map { ($0, FuzzJSON(o[$0]!)) })
        }
    }

    static func text(_ s: String) -> FuzzJSON { FuzzJSON(.string(s)) }

    /// A valid header as the product's own encoder writes it.
    static func header<T: Encodable>(_ type: MessageType, _ value: T) -> FuzzJSON {
        guard let frames = try? Codec.frames(type, value), let parsed = try? JSONValue.parse(bytes: frames[2]) else {
            return .object([])
        }
        return FuzzJSON(parsed)
    }

    static func header<T: WireMessage>(_ type: MessageType, _ value: T) -> FuzzJSON { FuzzJSON(value.json) }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let n): out += Array(n.utf8)
        case .string(let s):
            out.append(UInt8(ascii: "\""))
            out += s
            out.append(UInt8(ascii: "\""))
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                FuzzJSON.text(k).write(into: &out)
                out.append(UInt8(ascii: ":"))
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    enum Step: CustomStringConvertible {
        case key(String)
        case index(Int)
        var description: String {
            switch self {
            case .key(let k): return ".\(k)"
            case .index(let i): return "[\(i)]"
            }
        }
    }

    /// Every place a value sits (object members and the first element of arrays), to `depth`.
    func sites(depth: Int = 4) -> [[Step]] {
        guard depth > 0 else { return [] }
        var out: [[Step]] = []
        switch self {
        case .object(let o):
            for (k, v) in o {
                out.append([.key(k)])
                out += v.sites(depth: depth - 1).map { [.key(k)] + $0 }
            }
        case .array(let a):
            if let first = a.first {
                out.append([.index(0)])
                out += first.sites(depth: depth - 1).map { [.index(0)] + $0 }
            }
        default: break
        }
        return out
    }

    /// The value with the one at `path` replaced (nil: removed).
    func replacing(_ path: ArraySlice<Step>, with value: FuzzJSON?) -> FuzzJSON {
        guard let step = path.first else { return value ?? .null }
        let rest = path.dropFirst()
        switch (self, step) {
        case (.object(let o), .key(let key)):
            var members: [(String, FuzzJSON)] = []
            for (k, v) in o {
                if k != key { members.append((k, v)); continue }
                if rest.isEmpty {
                    if let value { members.append((k, value)) }
                } else {
                    members.append((k, v.replacing(rest, with: value)))
                }
            }
            return .object(members)
        case (.array(var a), .index(let i)) where i < a.count:
            if rest.isEmpty {
                if let value { a[i] = value } else { a.remove(at: i) }
            } else {
                a[i] = a[i].replacing(rest, with: value)
            }
            return .array(a)
        default:
            return self
        }
    }

    /// The same object with one more member.
    func adding(_ key: String, _ value: FuzzJSON) -> FuzzJSON {
        if case .object(let o) = self { return .object(o + [(key, value)]) }
        return self
    }

    static func pathText(_ path: [Step]) -> String { path.map(\.description).joined() }
}

/// What a fuzzer puts in place of a value: numbers at and past the edges of every integer
/// type the messages use, hostile strings, wrong types.
enum FuzzValues {
    static let numbers: [(String, FuzzJSON)] = [
        "1e20", "-1e20", "1e308", "-1e308", "1e400", "-1", "0", "-0", "0.5", "9223372036854775808",
        "-9223372036854775809", "9223372036854774784", "10000000000", "2147483648", "4294967296",
    ].map { ($0, .number($0)) }

    static let hugeString: FuzzJSON = .string(Array(repeating: UInt8(ascii: "A"), count: 100_000))

    static let strings: [(String, FuzzJSON)] = [
        ("\"\"", .string([])),
        ("a 100 KB string", hugeString),
        ("invalid UTF-8", .string([0xFF, 0xFE, 0xC3, 0x28, 0xED, 0xA0, 0x80])),
        ("a NUL character", .string(Array("a\\u0000b".utf8))),
        ("a lone surrogate", .string(Array("\\ud800".utf8))),
        ("a path", .text("../../../../etc/passwd")),
    ]

    static var deepArray: FuzzJSON {
        var value: FuzzJSON = .number("1")
        for _ in 0..<1000 { value = .array([value]) }
        return value
    }

    static let types: [(String, FuzzJSON)] = [
        ("null", .null), ("true", .bool(true)), ("[]", .array([])), ("{}", .object([])),
        ("[\"x\"]", .array([.text("x")])), ("arrays nested 1000 deep", deepArray),
    ]

    static let all: [(String, FuzzJSON)] = numbers + strings + types

    static let interestingKeys = [
        "attemptId", "taskId", "credits", "credit", "exitCode", "bytes", "offset", "length",
        "total", "workerId", "running", "sweep", "plan", "retryable", "pid", "slots",
    ]
}

/// Which of the coordinator's three ROUTER sockets a message goes to.
enum CoordinatorSocket: String, CaseIterable {
    case workers, artifacts, control
}

/// A valid message of each type, as the product's encoders write it, to mutate from.
struct FuzzTemplates {
    struct Template {
        var typeName: String
        var header: FuzzJSON
        var payload: [UInt8]?
    }

    var attemptId: String
    var taskId: String
    var sha256: String
    var plan: SweepPlan

    func all() -> [Template] {
        let slots = [SlotInfo(index: 0, device: "cpu", memoryMiB: 1024)]
        let artifact = ProducedArtifact(name: "checkpoint", sha256: sha256, bytes: 13)
        func t<T: Encodable>(_ type: MessageType, _ value: T, payload: [UInt8]? = nil) -> Template {
            Template(typeName: type.rawValue, header: FuzzJSON.header(type, value), payload: payload)
        }
        func t<T: WireMessage>(_ type: MessageType, _ value: T, payload: [UInt8]? = nil) -> Template {
            Template(typeName: type.rawValue, header: FuzzJSON.header(type, value), payload: payload)
        }
        return [
            t(
                .hello,
                Hello(
                    workerId: "fuzz-worker", host: "fuzz-host", pid: 4242, slots: slots,
                    engines: ["null": ["builtin": true]], running: [attemptId])),
            t(.ready, Ready(credits: 1)),
            t(.heartbeat, Heartbeat(running: [attemptId])),
            t(
                .progress,
                TaskProgress(
                    attemptId: attemptId,
                    event: [
                        "event": "progress", "epoch": 1, "epochs": 2,
                        "step": 3, "loss": 0.5,
                    ])),
            t(
                .result,
                TaskResult(
                    attemptId: attemptId, taskId: taskId, metrics: ["accuracy": 1, "loss": nil],
                    units: ["accuracy": "%"], details: ["note": "fuzz"], artifacts: [artifact], credit: 1)),
            t(
                .failed,
                TaskFailed(
                    attemptId: attemptId, taskId: taskId, error: "boom", exitCode: 3,
                    stderrTail: "tail", retryable: true, credit: 1)),
            t(.bye, Empty()),
            t(.welcome, Welcome(heartbeatInterval: 1, deadAfter: 5, dataEndpoint: "tcp://127.0.0.1:1")),
            t(
                .assign,
                Assign(
                    attemptId: attemptId, taskId: taskId, sweep: plan.name, stage: "work", engine: "null",
                    params: ["a": 1], method: nil, data: nil, measure: nil,
                    inputs: [
                        "train": InputArtifact(
                            taskId: taskId, name: "checkpoint", sha256: sha256,
                            bytes: 13)
                    ], device: "any")),
            t(.cancel, Cancel(attemptId: attemptId, reason: "fuzz")),
            t(.reject, Reject(.malformed, "fuzz")),
            t(.ack, Ack(attemptId: attemptId, outcome: .stored)),
            t(.launch, LaunchRequest(plan: plan)),
            t(.launchBegin, LaunchBegin(plan: plan, tasks: plan.tasks.count)),
            t(.launchTasks, LaunchTasks(session: "0123456789abcdef0123456789abcdef", first: 0, tasks: plan.tasks)),
            t(.launchEnd, LaunchEnd(session: "0123456789abcdef0123456789abcdef")),
            t(.status, StatusRequest()),
            t(.cancelSweep, SweepRequest(sweep: plan.name)),
            t(.retrySweep, SweepRequest(sweep: plan.name)),
            t(.reply, ControlReply(ok: true, body: ["x": 1])),
            t(.stat, Stat(sha256: sha256, bytes: 13)),
            t(.have, Have(sha256: sha256, offset: 0, complete: false)),
            t(.put, Put(sha256: String(repeating: "a", count: 64), offset: 0, total: 4), payload: [1, 2, 3, 4]),
            t(.putAck, PutAck(sha256: sha256, offset: 0, complete: false)),
            t(.get, Get(sha256: sha256, offset: 0, length: 13)),
            t(.chunk, Chunk(sha256: sha256, offset: 0, total: 13), payload: [1, 2, 3]),
            t(.missing, Missing(sha256: sha256, reason: "fuzz")),
        ]
    }

    /// The socket a message type belongs to.
    static func socket(of typeName: String) -> CoordinatorSocket {
        switch MessageType(rawValue: typeName) {
        case .launch, .status, .cancelSweep, .retrySweep, .reply: return .control
        case .stat, .have, .put, .putAck, .get, .chunk, .missing: return .artifacts
        default: return .workers
        }
    }
}

/// Whole-message mutations: frames missing, empty, extra, cut short, or not the protocol.
enum FrameMutations {
    static let version = Array(wireVersion.utf8)

    static func all(type: String, header: [UInt8], payload: [UInt8]?, rng: inout SeededRNG) -> [(String, [[UInt8]])] {
        let t = Array(type.utf8)
        let random = (0..<64).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return [
            ("an empty header frame", [version, t, []]),
            ("header `null`", [version, t, Array("null".utf8)]),
            ("header `[]`", [version, t, Array("[]".utf8)]),
            ("header `{}`", [version, t, Array("{}".utf8)]),
            ("header `1e20`", [version, t, Array("1e20".utf8)]),
            ("header `\"x\"`", [version, t, Array("\"x\"".utf8)]),
            ("the header cut in half", [version, t, Array(header.prefix(header.count / 2))]),
            ("the header less its last byte", [version, t, Array(header.dropLast())]),
            ("64 random bytes as header", [version, t, random]),
            ("no header frame", [version, t]),
            ("only the version frame", [version]),
            ("one empty frame", [[]]),
            ("three extra frames", [version, t, header, payload ?? [], [1, 2, 3], []]),
            ("an empty version frame", [[], t, header]),
            ("version SG2", [Array("SG2".utf8), t, header]),
            ("an empty type frame", [version, [], header]),
            ("type in capitals", [version, Array(type.uppercased().utf8), header]),
            ("type with a NUL", [version, t + [0], header]),
            ("invalid UTF-8 type", [version, [0xFF, 0xFE], header]),
            ("a 1 MB payload", [version, t, header, [UInt8](repeating: 7, count: 1 << 20)]),
        ]
    }
}
