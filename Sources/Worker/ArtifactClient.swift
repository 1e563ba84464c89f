import Foundation
import Wire
import ZeroMQ

/// Moves artifacts between this worker's cache and the coordinator over the data socket.
/// Synchronous, used from one job thread, which owns the socket. Transfers are chunked,
/// keep at most `artifactWindow` chunks in flight, resume from what the other side already
/// has, and are verified by SHA-256 before a file is used.
final class ArtifactClient {
    private let socket: Socket
    private let cache: String
    private let timeoutMs: Int

    init(
        context: Context, endpoint: String, cache: String, curve: CurveClientConfig?,
        timeoutSeconds: Double = 30
    ) throws {
        socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        try socket.applyCurve(curve)
        try socket.connect(endpoint)
        self.cache = cache
        self.timeoutMs = Int(timeoutSeconds * 1000)
        try FileManager.default.createDirectory(atPath: "\(cache)/partial", withIntermediateDirectories: true)
    }

    deinit { socket.close() }

    private func receive() throws -> Envelope {
        let fired = try Poller.poll([PollItem(socket: socket, events: .readable)], timeoutMilliseconds: timeoutMs)
        guard fired.first?.contains(.readable) == true, let frames = try socket.receive(dontWait: true) else {
            throw WorkerError("the coordinator's artifact socket did not answer within \(timeoutMs / 1000) s")
        }
        let envelope = try Codec.parse(frames, maxPayloadBytes: artifactChunkBytes)
        if envelope.type == .reject {
            throw WorkerError("the coordinator refused an artifact request: \(try envelope.decode(Reject.self).reason)")
        }
        return envelope
    }

    /// Makes sure `sha256` is in the cache (downloading what is missing) and returns its path.
    func fetch(sha256 sha: String, bytes: Int64) throws -> String {
        let final = ArtifactFiles.finalPath(root: cache, sha256: sha)
        if FileManager.default.fileExists(atPath: final) { return final }
        let partial = ArtifactFiles.partialPath(root: cache, sha256: sha)
        var offset = ArtifactFiles.fileSize(partial) ?? 0
        if offset > bytes { try? FileManager.default.removeItem(atPath: partial); offset = 0 }
        if offset == 0 { _ = FileManager.default.createFile(atPath: partial, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: partial) else { throw WorkerError("cannot write \(partial)") }
        defer { try? handle.close() }
        try handle.seekToEnd()
        var requested = offset
        var inFlight = 0
        while offset < bytes {
            while inFlight < artifactWindow, requested < bytes {
                let length = Int(min(Int64(artifactChunkBytes), bytes - requested))
                try socket.send(Codec.frames(.get, Get(sha256: sha, offset: requested, length: length)))
                requested += Int64(length)
                inFlight += 1
            }
            let envelope = try receive()
            if envelope.type == .missing {
                let missing = try envelope.decode(Missing.self)
                try missing.validate()
                throw WorkerError(missing.reason)
            }
            guard envelope.type == .chunk else { continue }
            let chunk = try envelope.decode(Chunk.self)
            try chunk.validate(payloadBytes: envelope.payload?.count ?? 0)
            inFlight -= 1
            guard chunk.sha256 == sha, chunk.offset == offset, let payload = envelope.payload, !payload.isEmpty else {
                throw WorkerError("artifact \(sha.prefix(12)) arrived out of order; it will be fetched again")
            }
            try handle.write(contentsOf: payload)
            offset += Int64(payload.count)
        }
        try handle.close()
        let actual = try ArtifactFiles.sha256(path: partial)
        guard actual == sha else {
            try? FileManager.default.removeItem(atPath: partial)
            throw WorkerError(
                "artifact \(sha.prefix(12)) failed verification (its SHA-256 is \(actual.prefix(12))); discarded")
        }
        try? FileManager.default.removeItem(atPath: final)
        try FileManager.default.moveItem(atPath: partial, toPath: final)
        return final
    }

    /// Uploads a verified local file; returns when the coordinator has verified it too.
    func upload(path: String, sha256 sha: String) throws {
        guard let total = ArtifactFiles.fileSize(path), let handle = FileHandle(forReadingAtPath: path) else {
            throw WorkerError("cannot read artifact \(path)")
        }
        defer { try? handle.close() }
        for _ in 0..<3 {
            try socket.send(Codec.frames(.stat, Stat(sha256: sha, bytes: total)))
            var have: Have? = nil
            while have == nil {
                let envelope = try receive()
                if envelope.type == .have {
                    // Checked like any peer input: a negative offset used to reach UInt64(…) and trap.
                    let reply = try envelope.decode(Have.self)
                    try reply.validate()
                    have = reply
                }
            }
            if have!.complete { return }
            guard have!.offset <= total else {
                throw WorkerError(
                    "the data socket claims \(have!.offset) bytes of the \(total)-byte artifact \(sha.prefix(12))")
            }
            var offset = have!.offset
            var acked = offset
            var inFlight = 0
            var failure: String? = nil
            while acked < total, failure == nil {
                while inFlight < artifactWindow, offset < total {
                    try handle.seek(toOffset: UInt64(offset))
                    let bytes = try handle.read(upToCount: artifactChunkBytes) ?? Data()
                    if bytes.isEmpty { break }
                    try socket.send(
                        Codec.frames(
                            .put, Put(sha256: sha, offset: offset, total: total),
                            payload: Array(bytes)))
                    offset += Int64(bytes.count)
                    inFlight += 1
                }
                let envelope = try receive()
                guard envelope.type == .putAck else { continue }
                let ack = try envelope.decode(PutAck.self)
                try ack.validate()
                inFlight -= 1
                if ack.complete { return }
                if let error = ack.error { failure = error } else { acked = max(acked, ack.offset) }
            }
            // Drain the acks still in flight, then start over from what the coordinator has.
            while inFlight > 0 {
                if let envelope = try? receive(), envelope.type == .putAck { inFlight -= 1 } else { break }
            }
        }
        throw WorkerError("upload of artifact \(sha.prefix(12)) kept failing; the coordinator could not verify it")
    }
}
