import Foundation
import Wire
import ZeroMQ

/// Bounds on what the data socket accepts. Anyone who can reach the socket may send anything,
/// so every size a message claims is checked against these before a byte is written.
public struct ArtifactLimits: Sendable, Equatable {
    /// The largest artifact (file) an upload may claim.
    public var maxArtifactBytes: Int64
    /// Bytes all partial (unfinished) uploads may hold on disk together.
    public var maxPartialBytes: Int64
    /// How many partial uploads may be in progress at once.
    public var maxPartialUploads: Int
    /// Seconds without a chunk after which a partial upload is deleted.
    public var partialIdleTimeout: Double
    /// A message whose header (or version or type) frame is larger is dropped unread.
    public var maxHeaderBytes: Int

    public init(
        maxArtifactBytes: Int64 = 16 << 30, maxPartialBytes: Int64 = 32 << 30, maxPartialUploads: Int = 64,
        partialIdleTimeout: Double = 600, maxHeaderBytes: Int = 64 << 10
    ) {
        self.maxArtifactBytes = maxArtifactBytes
        self.maxPartialBytes = maxPartialBytes
        self.maxPartialUploads = maxPartialUploads
        self.partialIdleTimeout = partialIdleTimeout
        self.maxHeaderBytes = maxHeaderBytes
    }
}

/// Serves the data socket on its own thread: workers upload checkpoints (resumable, verified
/// by SHA-256 before they become visible under `artifacts/<sha256>`) and download the inputs
/// of their tasks in chunks they ask for (the worker's outstanding requests are its credit).
/// It never touches the database: the event loop records an artifact when a result names it.
///
/// Every message is range-checked (`validate`) before it is served; a bad one gets `reject`
/// with a sentence, an oversized one is dropped. Partial uploads are bounded in size and
/// number, and deleted after `partialIdleTimeout` without a chunk: a ROUTER does not tell us
/// reliably when a peer goes away, so idleness is the only sign an upload was abandoned.
final class ArtifactService {
    private let socket: Socket
    private let root: String
    private let limits: ArtifactLimits
    /// Seconds since 1970; injected so tests can let a timeout pass without waiting for it.
    private let now: @Sendable () -> Double
    private var partials: PartialUploads
    private var lastDropReport = -Double.infinity
    private var unreportedDrops = 0

    init(
        socket: Socket, root: String, limits: ArtifactLimits = ArtifactLimits(),
        now: @escaping @Sendable () -> Double = wallClock
    ) throws {
        self.socket = socket
        self.root = root
        self.limits = limits
        self.now = now
        partials = PartialUploads(limits: limits)
        try FileManager.default.createDirectory(atPath: "\(root)/partial", withIntermediateDirectories: true)
        adoptPartialsFromEarlierRun()
    }

    func run(until stopped: @escaping @Sendable () -> Bool) {
        let items = [PollItem(socket: socket, events: .readable)]
        while !stopped() {
            do {
                let fired = try Poller.poll(items, timeoutMilliseconds: 100)
                removeIdlePartials()
                guard fired.first?.contains(.readable) == true else { continue }
                while let frames = try socket.receive(dontWait: true) {
                    // Before each message too (a few dozen entries at most), so a message
                    // handled at time t never sees an upload that was idle too long at t.
                    removeIdlePartials()
                    handle(frames)
                }
            } catch let error as ZMQError where error.isTerminated {
                return
            } catch {
                log("artifact service: \(error)")
            }
        }
    }

    // MARK: - Messages

    private func handle(_ frames: [[UInt8]]) {
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        if let oversized = oversizedFrame(frames) {
            reportDrop(oversized)
            return
        }
        do {
            let envelope = try Codec.parse(frames.dropFirst(), maxPayloadBytes: artifactChunkBytes)
            if envelope.type != .put, let payload = envelope.payload {
                throw WireError(
                    "a `\(envelope.type.rawValue)` message carries no payload; this one has \(payload.count) bytes")
            }
            switch envelope.type {
            case .stat:
                let stat = try envelope.decode(Stat.self)
                try stat.validate(maxArtifactBytes: limits.maxArtifactBytes)
                try reply(identity, .have, have(stat.sha256))
            case .put:
                let put = try envelope.decode(Put.self)
                let payload = envelope.payload ?? []
                try put.validate(payloadBytes: payload.count, maxArtifactBytes: limits.maxArtifactBytes)
                switch try store(put, payload: payload) {
                case .ack(let ack): try reply(identity, .putAck, ack)
                case .refused(let reason):
                    try socket.send([identity] + Codec.frames(.reject, Reject(.tooLarge, reason)))
                }
            case .get:
                let get = try envelope.decode(Get.self)
                try get.validate()
                try serve(identity, get)
            default:
                try socket.send(
                    [identity]
                        + Codec.frames(
                            .reject,
                            Reject(
                                .notAllowed, "the data socket does not take `\(envelope.type.rawValue)`")))
            }
        } catch {
            let reject = (error as? WireError).map(Reject.init) ?? Reject(.malformed, "\(error)")
            _ = try? socket.send([identity] + Codec.frames(.reject, reject))
        }
    }

    private func reply<T: Encodable>(_ identity: [UInt8], _ type: MessageType, _ header: T, payload: [UInt8]? = nil)
        throws
    {
        try socket.send([identity] + Codec.frames(type, header, payload: payload))
    }

    private func have(_ sha: String) -> Have {
        if FileManager.default.fileExists(atPath: ArtifactFiles.finalPath(root: root, sha256: sha)) {
            return Have(sha256: sha, offset: 0, complete: true)
        }
        let partial = ArtifactFiles.fileSize(ArtifactFiles.partialPath(root: root, sha256: sha))
        partials.observe(sha256: sha, bytesOnDisk: partial)
        return Have(sha256: sha, offset: partial ?? 0, complete: false)
    }

    private enum StoreOutcome {
        case ack(PutAck)
        case refused(String)
    }

    /// Writes one validated chunk. Chunks arrive in order: one at another offset than the
    /// partial's size is not written, and the ack says where to resume.
    private func store(_ put: Put, payload: [UInt8]) throws -> StoreOutcome {
        let sha = put.sha256
        let final = ArtifactFiles.finalPath(root: root, sha256: sha)
        let partial = ArtifactFiles.partialPath(root: root, sha256: sha)
        if let size = ArtifactFiles.fileSize(final) {
            discardPartial(sha)
            return .ack(PutAck(sha256: sha, offset: size, complete: true))
        }
        let existing = ArtifactFiles.fileSize(partial)
        partials.observe(sha256: sha, bytesOnDisk: existing)
        if let reason = partials.refusal(sha256: sha, total: put.total, payloadBytes: payload.count) {
            return .refused(reason)
        }
        let current = existing ?? 0
        guard put.offset == current else {
            return .ack(
                PutAck(
                    sha256: sha, offset: current, complete: false,
                    error: "expected offset \(current), got \(put.offset)"))
        }
        if existing == nil { _ = FileManager.default.createFile(atPath: partial, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: partial) else {
            partials.observe(sha256: sha, bytesOnDisk: ArtifactFiles.fileSize(partial))
            throw WireError("the coordinator cannot write \(partial)")
        }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: payload)
            try handle.close()
        } catch {
            try? handle.close()
            // A failed write (disk full) may leave part of the chunk: the disk is the truth.
            if let size = ArtifactFiles.fileSize(partial) {
                partials.wrote(sha256: sha, total: put.total, bytes: size, at: now())
            } else {
                partials.forget(sha256: sha)
            }
            throw WireError("the coordinator could not store a chunk of artifact \(sha.prefix(12)): \(error)")
        }
        let written = current + Int64(payload.count)
        partials.wrote(sha256: sha, total: put.total, bytes: written, at: now())
        guard written == put.total else { return .ack(PutAck(sha256: sha, offset: written, complete: false)) }
        partials.forget(sha256: sha)
        let actual = try? ArtifactFiles.sha256(path: partial)
        guard actual == sha else {
            try? FileManager.default.removeItem(atPath: partial)
            return .ack(
                PutAck(
                    sha256: sha, offset: 0, complete: false,
                    error: "the upload's SHA-256 is \(actual ?? "unreadable"), not \(sha); it was discarded"))
        }
        do {
            try FileManager.default.moveItem(atPath: partial, toPath: final)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw WireError("the coordinator could not keep artifact \(sha.prefix(12)): \(error)")
        }
        return .ack(PutAck(sha256: sha, offset: written, complete: true))
    }

    private func serve(_ identity: [UInt8], _ get: Get) throws {
        let path = ArtifactFiles.finalPath(root: root, sha256: get.sha256)
        guard let total = ArtifactFiles.fileSize(path), let handle = FileHandle(forReadingAtPath: path) else {
            try reply(
                identity, .missing, Missing(sha256: get.sha256, reason: "the coordinator has no artifact \(get.sha256)")
            )
            return
        }
        defer { try? handle.close() }
        guard get.offset <= total else {
            throw WireError(
                "a `get` at offset \(get.offset) is past the end of artifact \(get.sha256.prefix(12)), "
                    + "which is \(total) bytes")
        }
        try handle.seek(toOffset: UInt64(get.offset))
        let bytes = try handle.read(upToCount: Int(min(Int64(get.length), total - get.offset))) ?? Data()
        try reply(identity, .chunk, Chunk(sha256: get.sha256, offset: get.offset, total: total), payload: Array(bytes))
    }

    // MARK: - Partial uploads

    private func discardPartial(_ sha: String) {
        try? FileManager.default.removeItem(atPath: ArtifactFiles.partialPath(root: root, sha256: sha))
        partials.forget(sha256: sha)
    }

    private func removeIdlePartials() {
        for sha in partials.expired(at: now()) {
            discardPartial(sha)
            log(
                "artifact service: removed the partial upload of \(sha.prefix(12)): "
                    + "no data for \(Int(limits.partialIdleTimeout)) s")
        }
    }

    /// Partials a previous run left behind: those idle longer than the timeout (by their
    /// modification time) are deleted now, the others are kept for their senders to resume
    /// and expire like any other. Files the service would never have written are left alone.
    private func adoptPartialsFromEarlierRun() {
        let directory = "\(root)/partial"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let start = now()
        for name in names where ArtifactFiles.isValidHash(name) {
            let path = "\(directory)/\(name)"
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular,
                let size = (attributes[.size] as? NSNumber)?.int64Value
            else { continue }
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            if start - modified > limits.partialIdleTimeout
                || FileManager.default.fileExists(atPath: ArtifactFiles.finalPath(root: root, sha256: name))
            {
                try? FileManager.default.removeItem(atPath: path)
            } else {
                partials.adopt(sha256: name, bytes: size, lastActivity: modified)
            }
        }
    }

    // MARK: - Oversized messages

    /// A description of the first frame over its cap, or nil. The payload (fifth frame with
    /// the routing id) may be a chunk; every other frame is small.
    private func oversizedFrame(_ frames: [[UInt8]]) -> String? {
        for (index, frame) in frames.enumerated().dropFirst() {
            let cap = index == 4 ? artifactChunkBytes : limits.maxHeaderBytes
            if frame.count > cap {
                let what = index == 4 ? "payload" : index == 3 ? "header" : "frame \(index)"
                return "its \(what) is \(frame.count) bytes (the limit is \(cap))"
            }
        }
        return nil
    }

    /// One line to stderr per dropped message, at most one a second: a peer sending a flood of
    /// oversized frames must not fill the log as well; the next line counts what was skipped.
    private func reportDrop(_ why: String) {
        let time = now()
        guard time - lastDropReport >= 1 else {
            unreportedDrops += 1
            return
        }
        let skipped = unreportedDrops > 0 ? " (and \(unreportedDrops) more since the last report)" : ""
        log("artifact service: dropped a message: \(why)\(skipped)")
        lastDropReport = time
        unreportedDrops = 0
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data("\(line)\n".utf8))
    }
}
