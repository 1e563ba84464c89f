import Foundation
import SweepKit

/// Why a message could not be decoded. The coordinator answers these with `reject`, never a crash.
public struct WireError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
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

    public func decode<T: Decodable>(_: T.Type) throws -> T {
        do {
            if let fast = T.self as? JSONConvertible.Type {
                return try fast.init(json: JSONValue.parse(bytes: header)) as! T
            }
            return try Codec.decoder.decode(T.self, from: Data(header))
        } catch {
            throw WireError("malformed `\(type.rawValue)` header: \(error)")
        }
    }
}

/// Frames: ["SG1", type, json-header, payload?] (DESIGN.md §3).
public enum Codec {
    // JSONEncoder/Decoder are thread-safe for concurrent use, but each socket thread
    // is a single owner anyway.
    nonisolated(unsafe) static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    nonisolated(unsafe) static let decoder = JSONDecoder()
    static let versionFrame = Array(wireVersion.utf8)

    public static func frames<T: Encodable>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) throws
        -> [[UInt8]]
    {
        let json: [UInt8]
        if let fast = header as? JSONConvertible {
            json = Array(fast.json.canonicalText.utf8)
        } else {
            json = Array(try encoder.encode(header))
        }
        var out: [[UInt8]] = [versionFrame, Array(type.rawValue.utf8), json]
        if let payload { out.append(payload) }
        return out
    }

    /// Parses a message's frames (without any routing identity).
    public static func parse(_ frames: some Collection<[UInt8]>) throws -> Envelope {
        var it = frames.makeIterator()
        guard let version = it.next() else { throw WireError("empty message") }
        guard version == versionFrame else {
            let shown = String(decoding: version.prefix(16), as: UTF8.self)
            throw WireError("unsupported protocol version '\(shown)'; this coordinator speaks \(wireVersion)")
        }
        guard let typeFrame = it.next(), let type = MessageType(rawValue: String(decoding: typeFrame, as: UTF8.self))
        else {
            throw WireError("unknown or missing message type")
        }
        guard let header = it.next() else { throw WireError("`\(type.rawValue)` message has no header frame") }
        let payload = it.next()
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
