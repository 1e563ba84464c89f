import Foundation
import Testing
import Wire
import ZeroMQ

@testable import Coordinator

/// Faults injected on the data socket over a real loopback ROUTER: each test says what a
/// hostile or confused peer sends and what the coordinator must (not) do with it.
@Suite("The artifact socket treats every message as hostile", .timeLimit(.minutes(1)))
struct ArtifactServiceTests {
    let sha = ArtifactFiles.sha256(bytes: testBytes(10 * KiB))
    let other = ArtifactFiles.sha256(bytes: testBytes(10 * KiB, seed: 2))
    let third = ArtifactFiles.sha256(bytes: testBytes(10 * KiB, seed: 3))

    // MARK: - Upload size cap

    @Test("a put claiming a total of 2^40 bytes is refused with a sentence and leaves nothing on disk")
    func hugeTotalRefused() throws {
        let harness = try ArtifactHarness()
        let reason = try harness.rejection(
            harness.request(.put, Put(sha256: sha, offset: 0, total: 1 << 40), payload: testBytes(MiB)))
        #expect(reason.contains("at most \(16 << 30) bytes"), "\(reason)")
        #expect(harness.files.isEmpty)
    }

    @Test("the upload size cap is configurable: a total one byte over it is refused, at the cap it is accepted")
    func configuredCap() throws {
        let harness = try ArtifactHarness(limits: ArtifactLimits(maxArtifactBytes: 4 * Int64(KiB)))
        let reason = try harness.rejection(
            harness.request(.put, Put(sha256: sha, offset: 0, total: 4 * Int64(KiB) + 1), payload: testBytes(KiB)))
        #expect(reason.contains("at most 4096 bytes"))
        let statReason = try harness.rejection(harness.request(.stat, Stat(sha256: sha, bytes: 5 * Int64(KiB))))
        #expect(statReason.contains("at most 4096 bytes"))
        #expect(harness.files.isEmpty)
        let ack = try harness.request(.put, Put(sha256: sha, offset: 0, total: 4 * Int64(KiB)), payload: testBytes(KiB))
        #expect(try ack.decode(PutAck.self).offset == Int64(KiB))
    }

    // MARK: - Partial uploads: idle timeout

    @Test("an abandoned partial upload is deleted once idle longer than the timeout, and kept before that")
    func abandonedPartialExpires() throws {
        let harness = try ArtifactHarness(limits: ArtifactLimits(partialIdleTimeout: 60))
        let ack = try harness.request(
            .put, Put(sha256: sha, offset: 0, total: 10 * Int64(KiB)), payload: testBytes(KiB))
        #expect(try ack.decode(PutAck.self).offset == Int64(KiB))
        #expect(harness.partialSize(sha) == Int64(KiB))

        harness.clock.advance(by: 59)
        let early = try harness.request(.stat, Stat(sha256: sha, bytes: 10 * Int64(KiB))).decode(Have.self)
        #expect(early.offset == Int64(KiB), "59 s idle is within the timeout")
        #expect(harness.partialSize(sha) == Int64(KiB))

        harness.clock.advance(by: 2)
        let late = try harness.request(.stat, Stat(sha256: sha, bytes: 10 * Int64(KiB))).decode(Have.self)
        #expect(late.offset == 0 && !late.complete)
        #expect(harness.files.isEmpty, "the partial file is gone from disk")
    }

    @Test("each chunk restarts the idle clock: an upload that keeps sending is never expired")
    func activeUploadKept() throws {
        let harness = try ArtifactHarness(limits: ArtifactLimits(partialIdleTimeout: 60))
        let data = testBytes(10 * KiB)
        for index in 0..<5 {
            let ack = try harness.request(
                .put, Put(sha256: sha, offset: Int64(index * KiB), total: 10 * Int64(KiB)),
                payload: Array(data[index * KiB..<(index + 1) * KiB]))
            #expect(try ack.decode(PutAck.self).offset == Int64((index + 1) * KiB))
            harness.clock.advance(by: 50)
        }
        #expect(harness.partialSize(sha) == 5 * Int64(KiB))
    }

    @Test("at start, a previous run's partials older than the timeout are deleted; fresh ones are kept and resume")
    func stalePartialsRemovedAtStart() throws {
        let data = testBytes(10 * KiB)
        let harness = try ArtifactHarness(limits: ArtifactLimits(partialIdleTimeout: 60)) { root in
            let stale = ArtifactFiles.partialPath(root: root, sha256: other)
            let fresh = ArtifactFiles.partialPath(root: root, sha256: sha)
            _ = FileManager.default.createFile(atPath: stale, contents: Data(testBytes(3 * KiB, seed: 2)))
            _ = FileManager.default.createFile(atPath: fresh, contents: Data(data[0..<4 * KiB]))
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -120)],
                ofItemAtPath: stale)
            // Not a name the service writes: left alone.
            _ = FileManager.default.createFile(atPath: "\(root)/partial/notes.txt", contents: Data("x".utf8))
        }
        #expect(harness.files == ["partial/\(sha)", "partial/notes.txt"])
        let have = try harness.request(.stat, Stat(sha256: sha, bytes: 10 * Int64(KiB))).decode(Have.self)
        #expect(have.offset == 4 * Int64(KiB))
        let ack = try harness.request(
            .put, Put(sha256: sha, offset: 4 * Int64(KiB), total: 10 * Int64(KiB)),
            payload: Array(data[(4 * KiB)...])
        ).decode(PutAck.self)
        #expect(ack.complete)
        #expect(try ArtifactFiles.sha256(path: harness.finalPath(sha)) == sha)
    }

    // MARK: - Partial uploads: quota

    @Test(
        "the partial byte quota refuses a chunk that would exceed it, writes none of it, and frees up when partials expire"
    )
    func partialByteQuota() throws {
        let harness = try ArtifactHarness(
            limits: ArtifactLimits(maxPartialBytes: 3 * Int64(KiB), partialIdleTimeout: 60))
        let data = testBytes(3 * KiB)
        let sha = ArtifactFiles.sha256(bytes: data)
        _ = try harness.request(
            .put, Put(sha256: sha, offset: 0, total: 3 * Int64(KiB)), payload: Array(data[0..<2 * KiB]))
        _ = try harness.request(
            .put, Put(sha256: other, offset: 0, total: 2 * Int64(KiB)), payload: testBytes(KiB, seed: 2))
        let reason = try harness.rejection(
            harness.request(
                .put, Put(sha256: sha, offset: 2 * Int64(KiB), total: 3 * Int64(KiB)),
                payload: Array(data[(2 * KiB)...])))
        #expect(reason.contains("already hold 3072 bytes"), "\(reason)")
        #expect(reason.contains("quota of 3072 bytes"), "\(reason)")
        #expect(harness.partialSize(sha) == 2 * Int64(KiB))
        let newcomer = try harness.rejection(
            harness.request(.put, Put(sha256: third, offset: 0, total: Int64(KiB)), payload: [1]))
        #expect(newcomer.contains("quota"))
        #expect(harness.partialSize(third) == nil)

        harness.clock.advance(by: 61)
        let admitted = try harness.request(.put, Put(sha256: sha, offset: 0, total: 3 * Int64(KiB)), payload: data)
        #expect(try admitted.decode(PutAck.self).complete)
        #expect(harness.files == [sha])
    }

    @Test("a single upload larger than the whole partial quota is refused at its first chunk")
    func uploadLargerThanQuota() throws {
        let harness = try ArtifactHarness(limits: ArtifactLimits(maxPartialBytes: 3 * Int64(KiB)))
        let reason = try harness.rejection(
            harness.request(.put, Put(sha256: sha, offset: 0, total: 10 * Int64(KiB)), payload: testBytes(KiB)))
        #expect(reason.contains("could never finish"))
        #expect(harness.files.isEmpty)
    }

    @Test("the cap on concurrent partial uploads refuses another upload until one of them finishes")
    func partialCountCap() throws {
        let harness = try ArtifactHarness(limits: ArtifactLimits(maxPartialUploads: 2))
        let first = testBytes(10 * KiB)
        let total = 10 * Int64(KiB)
        _ = try harness.request(.put, Put(sha256: sha, offset: 0, total: total), payload: Array(first[0..<KiB]))
        _ = try harness.request(.put, Put(sha256: other, offset: 0, total: total), payload: testBytes(KiB, seed: 2))
        let reason = try harness.rejection(
            harness.request(.put, Put(sha256: third, offset: 0, total: total), payload: testBytes(KiB, seed: 3)))
        #expect(reason.contains("2 partial uploads"), "\(reason)")
        #expect(harness.partialSize(third) == nil)

        let done = try harness.request(
            .put, Put(sha256: sha, offset: Int64(KiB), total: total),
            payload: Array(first[KiB...])
        ).decode(PutAck.self)
        #expect(done.complete)
        let admitted = try harness.request(
            .put, Put(sha256: third, offset: 0, total: total),
            payload: testBytes(KiB, seed: 3)
        ).decode(PutAck.self)
        #expect(admitted.offset == Int64(KiB))
    }

    // MARK: - Partial uploads: the total is fixed by the first chunk

    @Test(
        "a chunk claiming another total than the upload's first chunk is refused, and the upload goes on with the first"
    )
    func changedTotalRefused() throws {
        let harness = try ArtifactHarness()
        let data = testBytes(10 * KiB)
        _ = try harness.request(
            .put, Put(sha256: sha, offset: 0, total: 10 * Int64(KiB)), payload: Array(data[0..<KiB]))
        let reason = try harness.rejection(
            harness.request(.put, Put(sha256: sha, offset: Int64(KiB), total: 20 * Int64(KiB)), payload: testBytes(KiB))
        )
        #expect(reason.contains("began with a total of 10240 bytes"), "\(reason)")
        #expect(harness.partialSize(sha) == Int64(KiB))
        let done = try harness.request(
            .put, Put(sha256: sha, offset: Int64(KiB), total: 10 * Int64(KiB)),
            payload: Array(data[KiB...])
        ).decode(PutAck.self)
        #expect(done.complete)
    }

    @Test("a shorter total cannot cut an upload short: a chunk claiming total = bytes so far is refused")
    func shrunkTotalRefused() throws {
        let harness = try ArtifactHarness()
        let data = testBytes(10 * KiB)
        _ = try harness.request(
            .put, Put(sha256: sha, offset: 0, total: 10 * Int64(KiB)), payload: Array(data[0..<KiB]))
        let reason = try harness.rejection(
            harness.request(
                .put, Put(sha256: sha, offset: Int64(KiB), total: 2 * Int64(KiB)), payload: Array(data[KiB..<2 * KiB])))
        #expect(reason.contains("began with a total"))
        #expect(harness.partialSize(sha) == Int64(KiB))
    }

    // MARK: - Downloads

    static let badGets: [(String, String)] = [
        (#""offset": -1, "length": 1024"#, "0 or more"),
        (#""offset": 3001, "length": 1024"#, "past the end"),
        (#""offset": 0, "length": 0"#, "1 to"),
        (#""offset": 0, "length": -5"#, "1 to"),
        (#""offset": 0, "length": 1048577"#, "1 to"),
        (#""offset": 0, "length": 1e20"#, "malformed"),
        (#""offset": 1e20, "length": 1024"#, "malformed"),
        (#""offset": "0", "length": 1024"#, "malformed"),
    ]

    @Test(
        "a get with a negative offset, an offset past the end, or a length outside 1…chunk size is refused with no data",
        arguments: badGets)
    func badGetRefused(fields: String, expected: String) throws {
        let harness = try ArtifactHarness()
        let data = testBytes(3000)
        let sha = ArtifactFiles.sha256(bytes: data)
        #expect(
            try harness.request(.put, Put(sha256: sha, offset: 0, total: 3000), payload: data).decode(PutAck.self)
                .complete)
        let answer = try harness.request(.get, rawHeader: #"{"sha256": "\#(sha)", \#(fields)}"#)
        #expect(answer.payload == nil, "no data may come back")
        let reason = try harness.rejection(answer)
        #expect(reason.contains(expected), "\(reason)")
    }

    @Test("a get at exactly the end of a file answers an empty chunk; one of an unknown artifact answers missing")
    func getEdges() throws {
        let harness = try ArtifactHarness()
        let data = testBytes(3000)
        let sha = ArtifactFiles.sha256(bytes: data)
        _ = try harness.request(.put, Put(sha256: sha, offset: 0, total: 3000), payload: data)
        let end = try harness.request(.get, Get(sha256: sha, offset: 3000, length: 10))
        #expect(end.type == .chunk && end.payload == [])
        let tail = try harness.request(.get, Get(sha256: sha, offset: 2990, length: 1000))
        #expect(try tail.decode(Chunk.self).offset == 2990 && tail.payload == Array(data[2990...]))
        #expect(try harness.request(.get, Get(sha256: other, offset: 0, length: 10)).type == .missing)
    }

    // MARK: - Headers that do not decode, or decode to nonsense

    static let badPuts: [(String, String)] = [
        (#""offset": 1e20, "total": 10240"#, "malformed"),
        (#""offset": -1e300, "total": 10240"#, "malformed"),
        (#""offset": "zero", "total": 10240"#, "malformed"),
        (#""offset": 1.5, "total": 10240"#, "malformed"),
        (#""offset": null, "total": 10240"#, "malformed"),
        (#""total": 10240"#, "malformed"),
        (#""offset": -1, "total": 10240"#, "0 or more"),
        (#""offset": 0, "total": -5"#, "0 or more"),
        (#""offset": 0, "total": 1e20"#, "malformed"),
        (#""offset": 0, "total": 100"#, "runs past the end"),
        (#""offset": 10000, "total": 10240"#, "runs past the end"),
        (#""offset": 0, "total": 0"#, "is empty"),
    ]

    @Test(
        "a put header with an offset or total of 1e20, -1e300, a string, a fraction, a negative or a lie is rejected and writes nothing",
        arguments: badPuts)
    func badPutRejected(fields: String, expected: String) throws {
        let harness = try ArtifactHarness()
        let reason = try harness.rejection(
            harness.request(.put, rawHeader: #"{"sha256": "\#(sha)", \#(fields)}"#, payload: testBytes(KiB)))
        #expect(reason.contains(expected), "\(reason)")
        #expect(harness.files.isEmpty)
        // The service is still there.
        #expect(try harness.request(.stat, Stat(sha256: sha, bytes: 1)).type == .have)
    }

    static let badHashes = [
        String(repeating: "A", count: 64),
        String(repeating: "a", count: 63),
        String(repeating: "a", count: 65),
        String(repeating: "g", count: 64),
        "../../../../../../etc/passwd",
        String(repeating: "\u{FF41}", count: 64),  // fullwidth 'a': Character.isHexDigit says yes
        "",
    ]

    @Test(
        "a stat, put or get naming something that is not 64 lowercase hex digits is rejected and touches no file",
        arguments: badHashes)
    func badHashRejected(hash: String) throws {
        let harness = try ArtifactHarness()
        #expect(try harness.request(.stat, Stat(sha256: hash, bytes: 10)).type == .reject)
        #expect(try harness.request(.put, Put(sha256: hash, offset: 0, total: 10), payload: [1]).type == .reject)
        let get = try harness.request(.get, Get(sha256: hash, offset: 0, length: 10))
        #expect((get.type == .reject || get.type == .missing) && get.payload == nil, "refused, never served")
        #expect(harness.files.isEmpty)
    }

    @Test("a stat claiming a negative size is rejected")
    func negativeStat() throws {
        let harness = try ArtifactHarness()
        let reason = try harness.rejection(harness.request(.stat, rawHeader: #"{"sha256": "\#(sha)", "bytes": -1}"#))
        #expect(reason.contains("0 or more"))
    }

    @Test("a header nested 60,000 arrays deep is rejected, not a stack overflow")
    func deeplyNestedHeader() throws {
        let harness = try ArtifactHarness()
        let header = String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000)
        let reason = try harness.rejection(harness.request(.put, rawHeader: header, payload: [1]))
        #expect(reason.contains("malformed"), "\(reason)")
    }

    @Test("a stat or get carrying a payload frame is rejected")
    func payloadOnRequests() throws {
        let harness = try ArtifactHarness()
        #expect(
            try harness.rejection(harness.request(.stat, Stat(sha256: sha, bytes: 1), payload: [1, 2])).contains(
                "no payload"))
        #expect(
            try harness.rejection(harness.request(.get, Get(sha256: sha, offset: 0, length: 1), payload: [1])).contains(
                "no payload"))
    }

    // MARK: - Oversized frames

    @Test("a message whose header frame is over 64 KiB is dropped unanswered, and the next message is served")
    func oversizedHeaderDropped() throws {
        let harness = try ArtifactHarness()
        let padding = String(repeating: "x", count: 64 * KiB)
        try harness.send(
            .put, rawHeader: #"{"sha256": "\#(sha)", "offset": 0, "total": 10240, "pad": "\#(padding)"}"#,
            payload: testBytes(KiB))
        // One connection is FIFO: had the put been answered, its answer would come first.
        let next = try harness.request(.stat, Stat(sha256: sha, bytes: 10 * Int64(KiB)))
        #expect(next.type == .have)
        #expect(try next.decode(Have.self).offset == 0)
        #expect(harness.files.isEmpty)
    }

    @Test("a put whose payload frame is over the chunk size is dropped unanswered and writes nothing")
    func oversizedPayloadDropped() throws {
        let harness = try ArtifactHarness()
        let data = testBytes(MiB + 1)
        try harness.send(
            .put, Put(sha256: ArtifactFiles.sha256(bytes: data), offset: 0, total: Int64(data.count)),
            payload: data)
        let next = try harness.request(.stat, Stat(sha256: sha, bytes: 1))
        #expect(next.type == .have)
        #expect(harness.files.isEmpty)
    }

    // MARK: - What must keep working

    @Test(
        "an upload in windowed chunks, resumed after a stat, then a download in chunks, round-trips and verifies by SHA-256"
    )
    func roundTrip() throws {
        let harness = try ArtifactHarness()
        let data = testBytes(2 * MiB + 12_345)
        let sha = ArtifactFiles.sha256(bytes: data)
        let total = Int64(data.count)
        // First attempt: one chunk, then the sender "disconnects".
        _ = try harness.request(.put, Put(sha256: sha, offset: 0, total: total), payload: Array(data[0..<MiB]))
        let have = try harness.request(.stat, Stat(sha256: sha, bytes: total)).decode(Have.self)
        #expect(have.offset == Int64(MiB) && !have.complete)
        // Resume with the rest in flight at once.
        var offset = Int(have.offset)
        var sent = 0
        while offset < data.count {
            let end = min(offset + MiB, data.count)
            try harness.send(
                .put, Put(sha256: sha, offset: Int64(offset), total: total), payload: Array(data[offset..<end]))
            offset = end
            sent += 1
        }
        var last: PutAck?
        for _ in 0..<sent {
            let envelope = try harness.answer()
            #expect(envelope.type == .putAck)
            last = try envelope.decode(PutAck.self)
            #expect(last?.error == nil)
        }
        #expect(last?.complete == true && last?.offset == total)
        #expect(harness.files == [sha])
        #expect(try ArtifactFiles.sha256(path: harness.finalPath(sha)) == sha)
        #expect(try harness.request(.stat, Stat(sha256: sha, bytes: total)).decode(Have.self).complete)

        var downloaded: [UInt8] = []
        var requested: Int64 = 0
        while requested < total {
            try harness.send(.get, Get(sha256: sha, offset: requested, length: MiB))
            requested += Int64(MiB)
        }
        while downloaded.count < data.count {
            let envelope = try harness.answer()
            let chunk = try envelope.decode(Chunk.self)
            try chunk.validate(payloadBytes: envelope.payload?.count ?? 0)
            #expect(chunk.offset == Int64(downloaded.count) && chunk.total == total)
            downloaded += envelope.payload ?? []
        }
        #expect(ArtifactFiles.sha256(bytes: downloaded) == sha)
    }

    @Test("an upload whose bytes do not match its hash is discarded and the sender told to start over")
    func wrongBytesDiscarded() throws {
        let harness = try ArtifactHarness()
        let ack = try harness.request(.put, Put(sha256: sha, offset: 0, total: 3), payload: [1, 2, 3]).decode(
            PutAck.self)
        #expect(!ack.complete && ack.offset == 0 && ack.error?.contains("discarded") == true)
        #expect(harness.files.isEmpty)
    }

    @Test("an empty artifact uploads with one put of total 0 and no bytes")
    func emptyArtifact() throws {
        let harness = try ArtifactHarness()
        let empty = ArtifactFiles.sha256(bytes: [])
        let ack = try harness.request(.put, Put(sha256: empty, offset: 0, total: 0)).decode(PutAck.self)
        #expect(ack.complete)
        #expect(harness.files == [empty])
        #expect(try harness.request(.get, Get(sha256: empty, offset: 0, length: 1)).payload == [])
    }
}
