import Testing

@testable import Coordinator

/// The partial-upload ledger's decisions, with sizes and times passed in.
@Suite("Partial uploads are bounded and expire")
struct PartialUploadsTests {
    let a = String(repeating: "a", count: 64)
    let b = String(repeating: "b", count: 64)

    @Test("the first chunk fixes the total; another total is refused, the same one admitted")
    func pinnedTotal() {
        var ledger = PartialUploads(limits: ArtifactLimits())
        #expect(ledger.refusal(sha256: a, total: 100, payloadBytes: 10) == nil)
        ledger.wrote(sha256: a, total: 100, bytes: 10, at: 0)
        #expect(ledger.refusal(sha256: a, total: 100, payloadBytes: 10) == nil)
        #expect(ledger.refusal(sha256: a, total: 101, payloadBytes: 10)?.contains("began with a total of 100") == true)
    }

    @Test("an adopted partial (total unknown) takes its total from its next chunk")
    func adoptedTotal() {
        var ledger = PartialUploads(limits: ArtifactLimits(maxPartialUploads: 1))
        ledger.adopt(sha256: a, bytes: 10, lastActivity: 0)
        #expect(
            ledger.refusal(sha256: a, total: 500, payloadBytes: 10) == nil,
            "its own chunk does not count as a new upload")
        #expect(ledger.refusal(sha256: b, total: 500, payloadBytes: 10) != nil, "a second upload exceeds the count")
    }

    @Test("bytes are counted over all partials against the quota, exactly at the limit admitted")
    func byteQuota() {
        var ledger = PartialUploads(limits: ArtifactLimits(maxPartialBytes: 100))
        ledger.wrote(sha256: a, total: 80, bytes: 60, at: 0)
        #expect(ledger.refusal(sha256: b, total: 50, payloadBytes: 40) == nil)
        #expect(ledger.refusal(sha256: b, total: 50, payloadBytes: 41) != nil)
        ledger.observe(sha256: a, bytesOnDisk: nil)
        #expect(ledger.bytes == 0 && ledger.count == 0, "a partial gone from disk no longer counts")
    }

    @Test("a partial idle for exactly the timeout is kept; a moment longer and it expires")
    func expiry() {
        var ledger = PartialUploads(limits: ArtifactLimits(partialIdleTimeout: 60))
        ledger.wrote(sha256: a, total: 10, bytes: 1, at: 100)
        ledger.wrote(sha256: b, total: 10, bytes: 1, at: 130)
        #expect(ledger.expired(at: 160).isEmpty)
        #expect(ledger.expired(at: 160.5) == [a])
        #expect(ledger.expired(at: 191) == [a, b])
    }
}
