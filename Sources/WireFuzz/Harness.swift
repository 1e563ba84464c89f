import Foundation
import SweepKit
import Wire

/// One fuzzer input through every decoder a peer can reach: the framing (`Codec.parse`), the
/// JSON parser, the worker-socket messages (both directions), the data-socket messages with
/// their range checks, and the control messages. A thrown error is the expected answer to a
/// bad input; a trap (overflow, out-of-range conversion, failed precondition) is a finding.
///
/// Each decoder sees the header whatever the type frame says (and even when the framing is
/// refused), so a mutated header reaches all of them without the fuzzer first having to get
/// the frames right. Properties that must hold are checked with `fatalError`, which libFuzzer
/// reports like any crash:
/// - what parses as JSON prints canonically and parses back to the same text;
/// - what decodes as a `WireMessage` re-encodes (`Codec.frames`, i.e. `json.canonicalText`) to
///   frames that parse and decode again to the same canonical text — the coordinator and the
///   worker read what the other side writes.
enum Harness {
    /// The largest payload any socket takes (the data socket's chunk); the worker socket takes
    /// none and the control socket 256 bytes, which the framing check below also covers.
    static let maxPayloadBytes = artifactChunkBytes

    static func testOneInput(_ data: UnsafeBufferPointer<UInt8>) {
        let frames = FuzzInput.frames(data)
        for limit in [0, 256, maxPayloadBytes] { _ = try? Codec.parse(frames, maxPayloadBytes: limit) }
        let envelope =
            (try? Codec.parse(frames, maxPayloadBytes: maxPayloadBytes))
            ?? Envelope(type: .hello, header: frames.count >= 3 ? frames[2] : frames.last ?? [], payload: nil)

        checkJSON(envelope.header)
        workerSocket(envelope)
        dataSocket(envelope)
        controlSocket(envelope)
    }

    // MARK: - The worker socket: hand-written decoders, checked for a stable round trip

    static func workerSocket(_ envelope: Envelope) {
        // worker → coordinator
        roundTrip(Hello.self, envelope)
        roundTrip(Ready.self, envelope)
        roundTrip(Heartbeat.self, envelope)
        roundTrip(TaskProgress.self, envelope)
        roundTrip(TaskResult.self, envelope)
        roundTrip(TaskFailed.self, envelope)
        roundTrip(Empty.self, envelope)  // `bye`, and the coordinator's `heartbeat`
        // coordinator → worker
        roundTrip(Welcome.self, envelope)
        roundTrip(Assign.self, envelope)
        roundTrip(Cancel.self, envelope)
        roundTrip(Reject.self, envelope)
        roundTrip(Ack.self, envelope)
    }

    static func roundTrip<T: WireMessage>(_: T.Type, _ envelope: Envelope) {
        guard let message = try? envelope.decode(T.self) else { return }
        let text = message.json.canonicalText
        let frames = Codec.frames(envelope.type, message, payload: envelope.payload)
        let again: T
        do {
            again = try Codec.parse(frames, maxPayloadBytes: Int.max).decode(T.self)
        } catch {
            fatalError(
                "\(T.self) decoded from \(shown(envelope.header)) re-encodes as \(text), which does not "
                    + "decode again: \(error)")
        }
        let textAgain = again.json.canonicalText
        guard textAgain == text else {
            fatalError(
                "\(T.self) decoded from \(shown(envelope.header)) re-encodes as \(text), which decodes and "
                    + "re-encodes as \(textAgain)")
        }
    }

    // MARK: - The data socket: Codable, then the range checks the coordinator and worker apply

    static func dataSocket(_ envelope: Envelope) {
        let payloadBytes = envelope.payload?.count ?? 0
        // The configured cap and no cap at all, so the checks' arithmetic is tried at Int64.max too.
        for cap in [WireLimits.maxArtifactBytes, Int64.max] {
            if let stat = try? envelope.decode(Stat.self) { _ = try? stat.validate(maxArtifactBytes: cap) }
            if let put = try? envelope.decode(Put.self) {
                _ = try? put.validate(payloadBytes: payloadBytes, maxArtifactBytes: cap)
            }
        }
        if let have = try? envelope.decode(Have.self) { _ = try? have.validate() }
        if let ack = try? envelope.decode(PutAck.self) { _ = try? ack.validate() }
        if let get = try? envelope.decode(Get.self) { _ = try? get.validate() }
        if let chunk = try? envelope.decode(Chunk.self) { _ = try? chunk.validate(payloadBytes: payloadBytes) }
        if let missing = try? envelope.decode(Missing.self) { _ = try? missing.validate() }
    }

    // MARK: - The control socket (behind the token, but the CLI reads the coordinator's replies)

    static func controlSocket(_ envelope: Envelope) {
        if let token = envelope.payload { _ = ControlToken.matches(token, Array(repeating: 0x61, count: 64)) }
        _ = try? LaunchRequest(header: envelope.header)
        _ = try? LaunchBegin(header: envelope.header)
        _ = try? LaunchTasks(header: envelope.header)
        _ = try? LaunchEnd(header: envelope.header)
        _ = try? envelope.decode(StatusRequest.self)
        _ = try? envelope.decode(SweepRequest.self)
        _ = try? envelope.decode(LiveStatus.self)
        if let reply = try? envelope.decode(ControlReply.self) {
            // What `sparsegrid status` and `run` do with a reply's body.
            _ = try? Codec.decodeJSON(LiveStatus.self, from: Codec.encodeJSON(reply.body))
        }
    }

    // MARK: - JSON

    static func checkJSON(_ bytes: [UInt8]) {
        guard let value = try? JSONValue.parse(bytes: bytes) else { return }
        let text = value.canonicalText
        let again: JSONValue
        do {
            again = try JSONValue.parse(text)
        } catch {
            fatalError("JSON \(shown(bytes)) prints canonically as \(text), which does not parse: \(error)")
        }
        let textAgain = again.canonicalText
        guard textAgain == text else {
            fatalError("JSON \(shown(bytes)) prints canonically as \(text), which parses and prints as \(textAgain)")
        }
    }

    /// Bytes for a failure message: the text with anything unprintable escaped, cut at 2 KiB.
    static func shown(_ bytes: [UInt8]) -> String {
        var out = "\""
        for b in bytes.prefix(2048) {
            switch b {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(b))
            default: out += "\\x" + String(b, radix: 16).leftPadded(to: 2)
            }
        }
        return out + (bytes.count > 2048 ? "\"… (\(bytes.count) bytes)" : "\"")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
