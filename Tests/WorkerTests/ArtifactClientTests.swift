import Foundation
import Testing
import Wire
import ZeroMQ

@testable import Worker

/// Fault injected: a peer posing as the coordinator's data socket answers `stat` with a `have`
/// whose offset is negative (and one past the file's end). Proves: the worker checks the reply
/// like any peer input and fails the transfer with an error; before, the offset reached
/// `UInt64(…)` and trapped the worker process. Real sockets on loopback, no coordinator.
@Suite("The worker's artifact client checks what the data socket answers")
struct ArtifactClientTests {
    @Test("a `have` with offset -5 or past the end fails the upload with an error instead of trapping")
    func forgedHave() throws {
        for offset: Int64 in [-5, 1 << 40] {
            let context = try Context()
            let router = try context.socket(.router)
            try router.setLinger(milliseconds: 0)
            try router.bind("tcp://127.0.0.1:*")
            let endpoint = try router.lastEndpoint
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
                "sg-ac-\(UUID().uuidString.prefix(8))"
            ).path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let file = "\(dir)/artifact"
            let bytes = [UInt8](repeating: 7, count: 1000)
            FileManager.default.createFile(atPath: file, contents: Data(bytes))
            let sha = ArtifactFiles.sha256(bytes: bytes)
            // The fake data socket: answer the first request (the stat) with a forged `have`.
            let forged = Have(sha256: sha, offset: offset, complete: false)
            let thread = SocketThread.start(name: "fake-data") {
                let items = [PollItem(socket: router, events: .readable)]
                if let fired = try? Poller.poll(items, timeoutMilliseconds: 5000), fired[0].contains(.readable),
                    let frames = try? router.receive(dontWait: true),
                    let reply = try? Codec.frames(.have, forged)
                {
                    _ = try? router.send([frames[0]] + reply)
                }
                router.close()
            }
            let client = try ArtifactClient(
                context: context, endpoint: endpoint, cache: "\(dir)/cache", curve: nil, timeoutSeconds: 5)
            #expect(throws: (any Error).self) { try client.upload(path: file, sha256: sha) }
            thread.join()
        }
    }
}
