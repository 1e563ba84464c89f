import Foundation
import SweepKit
import Testing

@testable import Wire

// Faults injected here: boundary and hostile values in every field of every worker-socket
// message. On the code before the typed protocol, `failed` with exitCode 1e10, an artifact of
// 1e20 bytes or `ready` with 1e20 credits trapped on `Int(…)` / `Int32(…)`.

private func decode<T: WireMessage>(_: T.Type, _ text: String, as type: MessageType = .hello) throws -> T {
    try Envelope(type: type, header: Array(text.utf8)).decode(T.self)
}

private func roundTrip<T: WireMessage>(_ value: T) throws -> T {
    try Envelope(type: .hello, header: Array(value.json.canonicalText.utf8)).decode(T.self)
}

private let sha = String(repeating: "ab", count: 32)

/// One valid instance of every worker-socket message, as (type, header).
let validMessages: [(MessageType, any WireMessage)] = [
    (
        .hello,
        Hello(
            workerId: "host-1", host: "host", pid: 42, slots: [SlotInfo(index: 0, device: "cuda:0", memoryMiB: 80)],
            engines: ["null": ["builtin": true]], running: ["0123456789abcdef0123456789abcdef"])
    ),
    (.ready, Ready(credits: 4)),
    (.heartbeat, Heartbeat(running: ["a1", "a2"])),
    (.progress, TaskProgress(attemptId: "a1", event: ["event": "epoch", "epoch": 2, "loss": 0.5])),
    (
        .result,
        TaskResult(
            attemptId: "a1", taskId: "t1", metrics: ["accuracy": 0.9, "latency_sparse_ms": nil],
            units: ["accuracy": "%"], details: ["k": [1, 2]],
            artifacts: [ProducedArtifact(name: "checkpoint", sha256: sha, bytes: 1 << 20)], credit: 1)
    ),
    (
        .failed,
        TaskFailed(
            attemptId: "a1", taskId: "t1", error: "boom", exitCode: -9, stderrTail: "tail",
            retryable: false, credit: 1)
    ),
    (.bye, Empty()),
    (.welcome, Welcome(heartbeatInterval: 1, deadAfter: 30, dataEndpoint: "tcp://127.0.0.1:5556")),
    (
        .assign,
        Assign(
            attemptId: "a1", taskId: "t1", sweep: "quick", stage: "finetune", engine: "sparsity",
            params: ["model": "resnet18", "seed": 1], method: ["kind": "nm"], data: nil, measure: nil,
            inputs: ["train": InputArtifact(taskId: "t0", name: "checkpoint", sha256: sha, bytes: 10)],
            device: "gpu")
    ),
    (
        .assign,
        Assign(
            attemptId: "a2", taskId: "t2", sweep: "quick", stage: "train", engine: "sparsity",
            params: [:], method: nil, data: nil, measure: nil, inputs: [:], device: "any", timeout: 3600)
    ),
    (
        .failed,
        TaskFailed(
            attemptId: "a2", taskId: "t2", error: "it ran longer than the stage's timeout of 3600 s",
            exitCode: nil, stderrTail: nil, retryable: true, outcome: .timeout)
    ),
    (.cancel, Cancel(attemptId: "a1", reason: "sweep cancelled")),
    (.reject, Reject(.unknownWorker, "send hello")),
    (.ack, Ack(attemptId: "a1", outcome: .stored)),
]

private func decodeAny(_ type: MessageType, _ header: [UInt8]) throws -> JSONValue {
    let envelope = Envelope(type: type, header: header)
    switch type {
    case .hello: return try envelope.decode(Hello.self).json
    case .ready: return try envelope.decode(Ready.self).json
    case .heartbeat: return try envelope.decode(Heartbeat.self).json
    case .progress: return try envelope.decode(TaskProgress.self).json
    case .result: return try envelope.decode(TaskResult.self).json
    case .failed: return try envelope.decode(TaskFailed.self).json
    case .bye: return try envelope.decode(Empty.self).json
    case .welcome: return try envelope.decode(Welcome.self).json
    case .assign: return try envelope.decode(Assign.self).json
    case .cancel: return try envelope.decode(Cancel.self).json
    case .reject: return try envelope.decode(Reject.self).json
    case .ack: return try envelope.decode(Ack.self).json
    default: return .null
    }
}

@Suite("Wire: every message has one encoding and reads back what it wrote")
struct MessageRoundTripTests {
    @Test("each worker-socket message decodes to exactly what it encoded")
    func roundTrips() throws {
        for (type, message) in validMessages {
            let text = message.json.canonicalText
            let back = try decodeAny(type, Array(text.utf8))
            #expect(back.canonicalText == text, "\(type.rawValue)")
        }
    }

    @Test("frames are SG1, the type, the header, and an optional payload")
    func frames() throws {
        let frames = Codec.frames(.ready, Ready(credits: 2))
        #expect(frames.count == 3)
        let envelope = try Codec.parse(frames)
        #expect(envelope.type == .ready)
        #expect(try envelope.decode(Ready.self).credits == 2)
        #expect(try roundTrip(Ready(credits: 3)).credits == 3)
    }
}

@Suite("Wire: hostile values are refused with a code, never a trap")
struct MessageValidationTests {
    @Test("numbers out of range: exit code 1e10, artifact 1e20 bytes, credits 1e20 or -1, pid 2^40")
    func numbers() {
        let cases: [(MessageType, String)] = [
            (.failed, #"{"attemptId":"a","taskId":"t","error":"e","exitCode":10000000000,"retryable":true}"#),
            (.failed, #"{"attemptId":"a","taskId":"t","error":"e","exitCode":0.5}"#),
            (.result, #"{"attemptId":"a","taskId":"t","artifacts":[{"name":"c","sha256":"\#(sha)","bytes":1e20}]}"#),
            (.result, #"{"attemptId":"a","taskId":"t","artifacts":[{"name":"c","sha256":"\#(sha)","bytes":-1}]}"#),
            (.result, #"{"attemptId":"a","taskId":"t","credit":1e20}"#),
            (.ready, #"{"credits":1e20}"#),
            (.ready, #"{"credits":-1}"#),
            (.ready, #"{"credits":9223372036854775808}"#),
            (.hello, #"{"workerId":"w","host":"h","pid":1099511627776,"slots":[],"engines":{},"running":[]}"#),
            (.hello, #"{"workerId":"w","host":"h","pid":1,"slots":[{"index":-1,"device":"cpu"}],"engines":{}}"#),
            (.welcome, #"{"heartbeatInterval":-1,"deadAfter":5,"dataEndpoint":"x"}"#),
            (.welcome, #"{"heartbeatInterval":1,"deadAfter":1e300,"dataEndpoint":"x"}"#),
            (.ready, #"{"credits":1e999}"#),
        ]
        for (type, text) in cases {
            #expect(throws: WireError.self, "\(type.rawValue) \(text)") { _ = try decodeAny(type, Array(text.utf8)) }
        }
    }

    @Test("wrong types, missing fields, over-long strings and ids that are not ids")
    func shapes() {
        let long = String(repeating: "x", count: 200)
        let cases: [(MessageType, String)] = [
            (.ready, #"[]"#),
            (.ready, #"{"credits":"4"}"#),
            (.result, #"{"taskId":"t"}"#),
            (.result, #"{"attemptId":"a","taskId":"t","metrics":{"accuracy":"high"}}"#),
            (.result, #"{"attemptId":"../../etc","taskId":"t"}"#),
            (.result, #"{"attemptId":"\#(long)","taskId":"t"}"#),
            (.result, #"{"attemptId":"a","taskId":"t","artifacts":[{"name":"c","sha256":"ABC","bytes":1}]}"#),
            (.hello, #"{"workerId":"w","host":"h\u0000x","pid":1,"slots":[],"engines":{}}"#),
            (.heartbeat, #"{"running":[1,2]}"#),
            (.progress, #"{"attemptId":"a","event":5}"#),
            (.ack, #"{"attemptId":"a","outcome":"maybe"}"#),
            (.reject, #"{"code":"nope","reason":"x"}"#),
        ]
        for (type, text) in cases {
            #expect(throws: WireError.self, "\(type.rawValue) \(text)") { _ = try decodeAny(type, Array(text.utf8)) }
        }
    }

    @Test("oversized headers and payloads, bad versions and unknown types are refused before decoding")
    func frames() {
        let big = [UInt8](repeating: 0x20, count: WireLimits.maxHeaderBytes + 1)
        #expect(throws: WireError.self) { _ = try Codec.parse([Array("SG1".utf8), Array("ready".utf8), big]) }
        #expect(throws: WireError.self) {
            _ = try Codec.parse([Array("SG1".utf8), Array("ready".utf8), Array("{}".utf8), [1, 2, 3]])
        }
        #expect(throws: WireError.self) { _ = try Codec.parse([Array("SG9".utf8), Array("ready".utf8), []]) }
        #expect(throws: WireError.self) { _ = try Codec.parse([Array("SG1".utf8), Array("launch_all".utf8), []]) }
        #expect(throws: WireError.self) { _ = try Codec.parse([[UInt8]]()) }
        do {
            _ = try Codec.parse([Array("SG1".utf8), Array("ready".utf8), big])
        } catch let error as WireError {
            #expect(error.code == .tooLarge)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

/// A seeded generator (xorshift) so a failing fuzz case can be replayed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

@Suite("Wire: decoders under random mutation")
struct MessageFuzzTests {
    /// Mutates valid headers (bytes flipped, cut, numbers swapped for extremes, fields
    /// dropped) and decodes each as every message type: a decoder may throw, never trap.
    @Test("30,000 mutated headers decode or throw WireError; none crashes")
    func mutations() {
        let seed = UInt64(ProcessInfo.processInfo.environment["SG_FUZZ_SEED"] ?? "") ?? 0x5EED_1234
        var rng = SeededRandom(state: seed)
        let extremes = [
            "1e20", "-1e20", "1e308", "-1", "0", "9223372036854775808", "10000000000", "0.5", "\"x\"",
            "null", "[]", "{}", "true", String(repeating: "9", count: 400),
        ]
        let types: [MessageType] = [
            .hello, .ready, .heartbeat, .progress, .result, .failed, .bye, .welcome, .assign,
            .cancel, .reject, .ack,
        ]
        var decoded = 0
        for i in 0..<30_000 {
            let (_, message) = validMessages[Int(rng.next() % UInt64(validMessages.count))]
            var text = Array(message.json.canonicalText.utf8)
            switch rng.next() % 4 {
            case 0:  // flip bytes
                for _ in 0..<(1 + Int(rng.next() % 4)) where !text.isEmpty {
                    text[Int(rng.next() % UInt64(text.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 1:  // cut
                text = Array(text.prefix(Int(rng.next() % UInt64(text.count + 1))))
            case 2:  // replace a number with an extreme value
                let s = String(decoding: text, as: UTF8.self)
                let replaced = s.replacingOccurrences(
                    of: ":1", with: ":" + extremes[Int(rng.next() % UInt64(extremes.count))]
                )
                .replacingOccurrences(of: ":4", with: ":" + extremes[Int(rng.next() % UInt64(extremes.count))])
                text = Array(replaced.utf8)
            default:  // drop a field
                let s = String(decoding: text, as: UTF8.self)
                if let comma = s.firstIndex(of: ",") { text = Array((String(s[..<comma]) + "}").utf8) }
            }
            let type = types[(i + Int(rng.next() % 3)) % types.count]
            do {
                _ = try decodeAny(type, text)
                decoded += 1
            } catch is WireError {
            } catch {
                Issue.record("\(type.rawValue) threw a non-wire error \(error) (seed \(seed), case \(i))")
            }
        }
        // The mutations leave some messages valid: the fuzzer reached past the first check.
        #expect(decoded > 100)
    }
}
