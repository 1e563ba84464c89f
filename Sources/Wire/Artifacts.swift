import Foundation

/// Chunk size on the data socket: large enough to stream fast, small enough that one frame
/// never holds a socket thread for long.
public let artifactChunkBytes = 1 << 20
/// How many chunks a sender may have in flight before it waits for acknowledgements.
public let artifactWindow = 8

/// Worker → coordinator: how much of this artifact do you already have?
public struct Stat: Codable, Sendable {
    public var sha256: String
    public var bytes: Int64
    public init(sha256: String, bytes: Int64) {
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// Coordinator → worker: `offset` bytes are present (resume from there); `complete` when verified.
public struct Have: Codable, Sendable {
    public var sha256: String
    public var offset: Int64
    public var complete: Bool
    public init(sha256: String, offset: Int64, complete: Bool) {
        self.sha256 = sha256
        self.offset = offset
        self.complete = complete
    }
}

/// Worker → coordinator: bytes [offset, offset + payload.count) of an artifact.
public struct Put: Codable, Sendable {
    public var sha256: String
    public var offset: Int64
    public var total: Int64
    public init(sha256: String, offset: Int64, total: Int64) {
        self.sha256 = sha256
        self.offset = offset
        self.total = total
    }
}

/// Coordinator → worker: everything below `offset` is written. When the last chunk arrives the
/// coordinator verifies the hash: `complete` true, or `error` set (the worker starts over).
public struct PutAck: Codable, Sendable {
    public var sha256: String
    public var offset: Int64
    public var complete: Bool
    public var error: String?
    public init(sha256: String, offset: Int64, complete: Bool, error: String? = nil) {
        self.sha256 = sha256
        self.offset = offset
        self.complete = complete
        self.error = error
    }
}

/// Worker → coordinator: send me `length` bytes from `offset` (the worker keeps at most
/// `artifactWindow` of these outstanding: credit-based flow control).
public struct Get: Codable, Sendable {
    public var sha256: String
    public var offset: Int64
    public var length: Int
    public init(sha256: String, offset: Int64, length: Int) {
        self.sha256 = sha256
        self.offset = offset
        self.length = length
    }
}

/// Coordinator → worker: the bytes asked for (payload frame).
public struct Chunk: Codable, Sendable {
    public var sha256: String
    public var offset: Int64
    public var total: Int64
    public init(sha256: String, offset: Int64, total: Int64) {
        self.sha256 = sha256
        self.offset = offset
        self.total = total
    }
}

/// Coordinator → worker: it has no such artifact.
public struct Missing: Codable, Sendable {
    public var sha256: String
    public var reason: String
    public init(sha256: String, reason: String) {
        self.sha256 = sha256
        self.reason = reason
    }
}

// MARK: - Range checks
//
// JSON decoding only proves a field has the right type; these checks prove the values make
// sense before anything touches a file. Each throws a `WireError` whose description is a
// sentence the other side can show; the coordinator answers it with `reject`.

/// What the artifact messages refer to: 64 lowercase hex digits, never a path.
private func checkHash(_ sha: String, in message: String) throws {
    guard ArtifactFiles.isValidHash(sha) else {
        let shown = sha.count > 80 ? "\(sha.prefix(80))…" : sha
        throw WireError("`\(message)` names artifact '\(shown)', which is not a SHA-256 (64 lowercase hex digits)")
    }
}

private func checkNotNegative(_ value: Int64, _ field: String, in message: String) throws {
    guard value >= 0 else { throw WireError("`\(message)` has \(field) \(value); it must be 0 or more") }
}

extension Stat {
    /// `bytes` is the size of the file the sender means to upload: it must fit the cap.
    public func validate(maxArtifactBytes: Int64) throws {
        try checkHash(sha256, in: "stat")
        try checkNotNegative(bytes, "bytes", in: "stat")
        guard bytes <= maxArtifactBytes else {
            throw WireError(
                "artifact \(sha256.prefix(12)) is \(bytes) bytes; this coordinator takes artifacts "
                    + "of at most \(maxArtifactBytes) bytes")
        }
    }
}

extension Have {
    public func validate() throws {
        try checkHash(sha256, in: "have")
        try checkNotNegative(offset, "offset", in: "have")
    }
}

extension Put {
    /// `payloadBytes` is the size of the message's payload frame (0 when it has none).
    /// A total of 0 is an empty file: it is sent as one `put` at offset 0 with no bytes.
    public func validate(payloadBytes: Int, maxArtifactBytes: Int64) throws {
        try checkHash(sha256, in: "put")
        try checkNotNegative(offset, "offset", in: "put")
        try checkNotNegative(total, "total", in: "put")
        guard total <= maxArtifactBytes else {
            throw WireError(
                "artifact \(sha256.prefix(12)) claims \(total) bytes; this coordinator takes artifacts "
                    + "of at most \(maxArtifactBytes) bytes")
        }
        guard payloadBytes <= artifactChunkBytes else {
            throw WireError("a `put` carries at most \(artifactChunkBytes) bytes; this one carries \(payloadBytes)")
        }
        if total == 0 {
            guard offset == 0, payloadBytes == 0 else {
                throw WireError(
                    "artifact \(sha256.prefix(12)) is empty (total 0), so its only `put` is at offset 0 "
                        + "with no bytes; this one is at offset \(offset) with \(payloadBytes)")
            }
            return
        }
        guard payloadBytes > 0 else {
            throw WireError("a `put` of a non-empty artifact must carry at least one byte")
        }
        // Written so that nothing can overflow: total ≥ payloadBytes ≥ 0 here or it throws.
        guard Int64(payloadBytes) <= total, offset <= total - Int64(payloadBytes) else {
            throw WireError(
                "a `put` of \(payloadBytes) bytes at offset \(offset) runs past the end of "
                    + "artifact \(sha256.prefix(12)), which claims \(total) bytes")
        }
    }
}

extension PutAck {
    public func validate() throws {
        try checkHash(sha256, in: "put_ack")
        try checkNotNegative(offset, "offset", in: "put_ack")
    }
}

extension Get {
    /// Whether `offset` lies within the file is for the side that has the file to check.
    public func validate() throws {
        try checkHash(sha256, in: "get")
        try checkNotNegative(offset, "offset", in: "get")
        guard (1...artifactChunkBytes).contains(length) else {
            throw WireError("a `get` asks for \(length) bytes; ask for 1 to \(artifactChunkBytes)")
        }
    }
}

extension Chunk {
    public func validate(payloadBytes: Int) throws {
        try checkHash(sha256, in: "chunk")
        try checkNotNegative(offset, "offset", in: "chunk")
        try checkNotNegative(total, "total", in: "chunk")
        guard payloadBytes <= artifactChunkBytes, Int64(payloadBytes) <= total,
            offset <= total - Int64(payloadBytes)
        else {
            throw WireError(
                "a `chunk` of \(payloadBytes) bytes at offset \(offset) does not fit "
                    + "artifact \(sha256.prefix(12)) of \(total) bytes")
        }
    }
}

extension Missing {
    public func validate() throws {
        try checkHash(sha256, in: "missing")
    }
}
