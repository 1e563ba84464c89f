import Foundation
import Wire
import ZeroMQ

/// Serves the data socket on its own thread: workers upload checkpoints (resumable, verified
/// by SHA-256 before they become visible under `artifacts/<sha256>`) and download the inputs
/// of their tasks in chunks they ask for (the worker's outstanding requests are its credit).
/// It never touches the database: the event loop records an artifact when a result names it.
final class ArtifactService {
    private let socket: Socket
    private let root: String

    init(socket: Socket, root: String) throws {
        self.socket = socket
        self.root = root
        try FileManager.default.createDirectory(atPath: "\(root)/partial", withIntermediateDirectories: true)
    }

    func run(until stopped: @escaping @Sendable () -> Bool) {
        let items = [PollItem(socket: socket, events: .readable)]
        while !stopped() {
            do {
                let fired = try Poller.poll(items, timeoutMilliseconds: 100)
                guard fired.first?.contains(.readable) == true else { continue }
                while let frames = try socket.receive(dontWait: true) {
                    handle(frames)
                }
            } catch let error as ZMQError where error.isTerminated {
                return
            } catch {
                FileHandle.standardError.write(Data("artifact service: \(error)\n".utf8))
            }
        }
    }

    private func handle(_ frames: [[UInt8]]) {
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        do {
            let envelope = try Codec.parse(frames.dropFirst(), maxPayloadBytes: artifactChunkBytes)
            switch envelope.type {
            case .stat:
                let stat = try envelope.decode(Stat.self)
                try reply(identity, .have, have(stat.sha256))
            case .put:
                let put = try envelope.decode(Put.self)
                try reply(identity, .putAck, store(put, payload: envelope.payload ?? []))
            case .get:
                let get = try envelope.decode(Get.self)
                try serve(identity, get)
            default:
                try socket.send([identity] + Codec.frames(.reject, Reject(
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

    private func have(_ sha: String) throws -> Have {
        guard ArtifactFiles.isValidHash(sha) else { throw WireError("'\(sha)' is not a hex SHA-256") }
        if FileManager.default.fileExists(atPath: ArtifactFiles.finalPath(root: root, sha256: sha)) {
            return Have(sha256: sha, offset: 0, complete: true)
        }
        let partial = ArtifactFiles.fileSize(ArtifactFiles.partialPath(root: root, sha256: sha)) ?? 0
        return Have(sha256: sha, offset: partial, complete: false)
    }

    private func store(_ put: Put, payload: [UInt8]) throws -> PutAck {
        let sha = put.sha256
        guard ArtifactFiles.isValidHash(sha) else { throw WireError("'\(sha)' is not a hex SHA-256") }
        let final = ArtifactFiles.finalPath(root: root, sha256: sha)
        if FileManager.default.fileExists(atPath: final) {
            return PutAck(sha256: sha, offset: put.total, complete: true)
        }
        let partial = ArtifactFiles.partialPath(root: root, sha256: sha)
        let current = ArtifactFiles.fileSize(partial) ?? 0
        guard put.offset == current else {
            return PutAck(sha256: sha, offset: current, complete: false,
                          error: "expected offset \(current), got \(put.offset)")
        }
        if current == 0 { FileManager.default.createFile(atPath: partial, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: partial) else {
            throw WireError("cannot write \(partial)")
        }
        try handle.seekToEnd()
        try handle.write(contentsOf: payload)
        try handle.close()
        let written = current + Int64(payload.count)
        guard written >= put.total else { return PutAck(sha256: sha, offset: written, complete: false) }
        let actual = try ArtifactFiles.sha256(path: partial)
        guard actual == sha, written == put.total else {
            try? FileManager.default.removeItem(atPath: partial)
            return PutAck(sha256: sha, offset: 0, complete: false,
                          error: "the upload's SHA-256 is \(actual), not \(sha); it was discarded")
        }
        try FileManager.default.moveItem(atPath: partial, toPath: final)
        return PutAck(sha256: sha, offset: written, complete: true)
    }

    private func serve(_ identity: [UInt8], _ get: Get) throws {
        let path = ArtifactFiles.finalPath(root: root, sha256: get.sha256)
        guard ArtifactFiles.isValidHash(get.sha256), let total = ArtifactFiles.fileSize(path),
            let handle = FileHandle(forReadingAtPath: path)
        else {
            try reply(identity, .missing, Missing(sha256: get.sha256, reason: "the coordinator has no artifact \(get.sha256)"))
            return
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(max(get.offset, 0)))
        let length = min(max(get.length, 0), artifactChunkBytes)
        let bytes = try handle.read(upToCount: length) ?? Data()
        try reply(identity, .chunk, Chunk(sha256: get.sha256, offset: get.offset, total: total), payload: Array(bytes))
    }
}
