import Foundation
import SweepKit

/// Why a message could not be decoded or was refused. `code` travels in the `reject` answer;
/// the description is the sentence a person reads. Never a crash.
public struct WireError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public var code: Reject.Code
    public init(_ description: String, code: Reject.Code = .malformed) {
        self.description = description
        self.code = code
    }
}

/// A message of the worker sockets: a typed value with one JSON encoding, read through
/// `Fields` (every field checked) and written by `json`. docs/protocol.md lists them.
public protocol WireMessage: Sendable {
    init(fields: Fields) throws
    var json: JSONValue { get }
}

/// A decoded message: its type, its JSON header bytes, and an optional binary payload.
public struct Envelope: Sendable {
    public var type: MessageType
    public var header: [UInt8]
    public var payload: [UInt8]?

    public init(type: MessageType, header: [UInt8], payload: [UInt8]? = nil) {
        self.type = type
        self.header = header
        self.payload = payload
    }

    /// Decodes and validates a worker-socket message.
    public func decode<T: WireMessage>(_: T.Type) throws -> T {
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes: header)
        } catch {
            throw WireError("malformed `\(type.rawValue)` header: \(error)", code: .malformed)
        }
        return try T(fields: Fields(json, message: type.rawValue))
    }

    /// Decodes a control or data-socket message (Codable; those sockets are not on the hot path).
    public func decode<T: Decodable>(_: T.Type) throws -> T {
        do {
            return try Codec.decoder.decode(T.self, from: Data(header))
        } catch {
            throw WireError("malformed `\(type.rawValue)` header: \(error)", code: .malformed)
        }
    }
}

/// Frames: ["SG1", type, json-header, payload?] (docs/protocol.md).
public enum Codec {
    // JSONEncoder/Decoder are thread-safe for concurrent use; each socket thread is a single owner anyway.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    static let decoder = JSONDecoder()
    static let versionFrame = Array(wireVersion.utf8)

    public static func frames<T: WireMessage>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) -> [[UInt8]] {
        var out: [[UInt8]] = [versionFrame, Array(type.rawValue.utf8), header.json.canonicalBytes]
        if let payload { out.append(payload) }
        return out
    }

    public static func frames<T: Encodable>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) throws
        -> [[UInt8]]
    {
        var out: [[UInt8]] = [versionFrame, Array(type.rawValue.utf8), Array(try encoder.encode(header))]
        if let payload { out.append(payload) }
        return out
    }

    /// Parses a message's frames (without any routing identity). Sizes are checked before
    /// anything is decoded.
    public static func parse(
        _ frames: some Collection<[UInt8]>, maxPayloadBytes: Int = 0,
        maxHeaderBytes: Int = WireLimits.maxHeaderBytes
    ) throws -> Envelope {
        var it = frames.makeIterator()
        guard let version = it.next() else { throw WireError("empty message") }
        guard version == versionFrame else {
            let shown = String(decoding: version.prefix(16).filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self)
            throw WireError(
                "unsupported protocol version '\(shown)'; this side speaks \(wireVersion)",
                code: .unsupportedVersion)
        }
        guard let typeFrame = it.next(), typeFrame.count <= 32,
            let type = MessageType(rawValue: String(decoding: typeFrame, as: UTF8.self))
        else {
            throw WireError("unknown or missing message type")
        }
        guard let header = it.next() else { throw WireError("`\(type.rawValue)` message has no header frame") }
        guard header.count <= maxHeaderBytes else {
            throw WireError(
                "`\(type.rawValue)` header of \(header.count) bytes is over the limit of "
                    + "\(maxHeaderBytes)", code: .tooLarge)
        }
        let payload = it.next()
        if let payload, payload.count > maxPayloadBytes {
            throw WireError(
                "`\(type.rawValue)` payload of \(payload.count) bytes is over the limit of "
                    + "\(maxPayloadBytes)", code: .tooLarge)
        }
        if it.next() != nil { throw WireError("`\(type.rawValue)` message has too many frames") }
        return Envelope(type: type, header: header, payload: payload)
    }

    public static func encodeJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try encoder.encode(value))
    }

    public static func decodeJSON<T: Decodable>(_: T.Type, from bytes: [UInt8]) throws -> T {
        try decoder.decode(T.self, from: Data(bytes))
    }
}
