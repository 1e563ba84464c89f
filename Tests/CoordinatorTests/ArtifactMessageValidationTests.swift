import Testing
import Wire

/// Each range rule of the artifact messages, one at a time, without sockets.
@Suite("Artifact messages are range-checked after decoding")
struct ArtifactMessageValidationTests {
    static let good = String(repeating: "0123456789abcdef", count: 4)
    static let cap: Int64 = 1 << 30
    static let chunk = artifactChunkBytes

    static let notHashes = [
        String(repeating: "A", count: 64), String(repeating: "a", count: 63), String(repeating: "a", count: 65),
        String(repeating: "g", count: 64), String(repeating: "\u{FF10}", count: 64),
        "../" + String(repeating: "a", count: 61),
        String(repeating: "a", count: 63) + "\u{0301}", "",
    ]

    @Test(
        "a hash is exactly 64 lowercase ASCII hex digits: uppercase, short, long, fullwidth, path-like and combining forms fail"
    )
    func hashes() {
        #expect(ArtifactFiles.isValidHash(Self.good))
        #expect(ArtifactFiles.isValidHash(ArtifactFiles.sha256(bytes: [1, 2, 3])))
        for bad in Self.notHashes { #expect(!ArtifactFiles.isValidHash(bad), "\(bad)") }
    }

    @Test("every artifact message refuses a name that is not a hash", arguments: notHashes)
    func everyMessageChecksItsHash(bad: String) {
        #expect(throws: WireError.self) { try Stat(sha256: bad, bytes: 1).validate(maxArtifactBytes: Self.cap) }
        #expect(throws: WireError.self) { try Have(sha256: bad, offset: 0, complete: false).validate() }
        #expect(throws: WireError.self) {
            try Put(sha256: bad, offset: 0, total: 1).validate(payloadBytes: 1, maxArtifactBytes: Self.cap)
        }
        #expect(throws: WireError.self) { try PutAck(sha256: bad, offset: 0, complete: false).validate() }
        #expect(throws: WireError.self) { try Get(sha256: bad, offset: 0, length: 1).validate() }
        #expect(throws: WireError.self) { try Chunk(sha256: bad, offset: 0, total: 1).validate(payloadBytes: 1) }
        #expect(throws: WireError.self) { try Missing(sha256: bad, reason: "no").validate() }
    }

    @Test("stat: the size is 0 up to the cap; -1 and cap + 1 fail")
    func stat() throws {
        try Stat(sha256: Self.good, bytes: 0).validate(maxArtifactBytes: Self.cap)
        try Stat(sha256: Self.good, bytes: Self.cap).validate(maxArtifactBytes: Self.cap)
        #expect(throws: WireError.self) { try Stat(sha256: Self.good, bytes: -1).validate(maxArtifactBytes: Self.cap) }
        #expect(throws: WireError.self) {
            try Stat(sha256: Self.good, bytes: Self.cap + 1).validate(maxArtifactBytes: Self.cap)
        }
    }

    /// (offset, total, payload bytes, valid)
    static let puts: [(Int64, Int64, Int, Bool)] = [
        (0, 10, 10, true),  // the whole file in one chunk
        (9, 10, 1, true),  // the last byte
        (0, cap, chunk, true),  // a first chunk of the largest file
        (cap - Int64(chunk), cap, chunk, true),  // its last chunk
        (0, 0, 0, true),  // the empty file
        (-1, 10, 1, false),  // negative offset
        (0, -5, 1, false),  // negative total
        (0, cap + 1, 1, false),  // total over the cap
        (0, 1 << 40, chunk, false),  // total far over the cap
        (10, 10, 1, false),  // starts at the end
        (5, 10, 6, false),  // runs past the end
        (Int64.max, 10, 1, false),  // offset + payload would overflow
        (0, 10, 0, false),  // no bytes for a non-empty file
        (0, 0, 1, false),  // bytes for the empty file
        (1, 0, 0, false),  // an offset into the empty file
        (0, cap, chunk + 1, false),  // payload over the chunk size
    ]

    @Test(
        "put: offset ≥ 0, total in 0…cap, 1…chunk bytes, offset + bytes ≤ total (0 bytes only for the empty file)",
        arguments: puts)
    func put(offset: Int64, total: Int64, payload: Int, valid: Bool) {
        let put = Put(sha256: Self.good, offset: offset, total: total)
        if valid {
            #expect(throws: Never.self) { try put.validate(payloadBytes: payload, maxArtifactBytes: Self.cap) }
        } else {
            #expect(throws: WireError.self) { try put.validate(payloadBytes: payload, maxArtifactBytes: Self.cap) }
        }
    }

    /// (offset, length, valid)
    static let gets: [(Int64, Int, Bool)] = [
        (0, 1, true), (0, chunk, true), (Int64.max, 1, true),  // past the end is the service's to check
        (-1, 1, false), (Int64.min, 1, false), (0, 0, false), (0, -1, false), (0, chunk + 1, false),
        (0, Int.max, false),
    ]

    @Test("get: offset ≥ 0 and length in 1…chunk size", arguments: gets)
    func get(offset: Int64, length: Int, valid: Bool) {
        let get = Get(sha256: Self.good, offset: offset, length: length)
        if valid {
            #expect(throws: Never.self) { try get.validate() }
        } else {
            #expect(throws: WireError.self) { try get.validate() }
        }
    }

    @Test("have and put_ack: a negative offset fails")
    func acknowledgements() throws {
        try Have(sha256: Self.good, offset: 0, complete: true).validate()
        try PutAck(sha256: Self.good, offset: 5, complete: false, error: "x").validate()
        #expect(throws: WireError.self) { try Have(sha256: Self.good, offset: -1, complete: false).validate() }
        #expect(throws: WireError.self) { try PutAck(sha256: Self.good, offset: -1, complete: false).validate() }
    }

    @Test("chunk: the payload lies within the file and is at most one chunk")
    func chunkRule() throws {
        try Chunk(sha256: Self.good, offset: 0, total: 10).validate(payloadBytes: 10)
        try Chunk(sha256: Self.good, offset: 10, total: 10).validate(payloadBytes: 0)
        #expect(throws: WireError.self) {
            try Chunk(sha256: Self.good, offset: -1, total: 10).validate(payloadBytes: 1)
        }
        #expect(throws: WireError.self) { try Chunk(sha256: Self.good, offset: 0, total: -1).validate(payloadBytes: 0) }
        #expect(throws: WireError.self) { try Chunk(sha256: Self.good, offset: 5, total: 10).validate(payloadBytes: 6) }
        #expect(throws: WireError.self) {
            try Chunk(sha256: Self.good, offset: 0, total: 1 << 30).validate(payloadBytes: Self.chunk + 1)
        }
    }

    @Test("the refusals are sentences that name the field and the limit")
    func sentences() {
        do {
            try Put(sha256: Self.good, offset: 0, total: 1 << 40).validate(payloadBytes: 1, maxArtifactBytes: Self.cap)
            Issue.record("accepted")
        } catch {
            #expect(
                "\(error)" == "artifact 0123456789ab claims 1099511627776 bytes; this coordinator takes artifacts "
                    + "of at most 1073741824 bytes")
        }
        do {
            try Get(sha256: Self.good, offset: 0, length: 0).validate()
            Issue.record("accepted")
        } catch {
            #expect("\(error)" == "a `get` asks for 0 bytes; ask for 1 to 1048576")
        }
    }
}
