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
