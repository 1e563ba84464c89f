/// What the artifact service knows about uploads in progress (`<root>/partial/<sha256>`), and
/// its decisions about them: whether a chunk is admitted, and which partials have sat idle too
/// long. Pure: no files and no clock; the service passes in sizes and times and does the I/O.
struct PartialUploads {
    struct Entry: Equatable {
        /// The size the upload's first chunk claimed; every later chunk must claim the same.
        /// nil for a partial left by a previous run (adopted at start): its next chunk fixes it.
        var total: Int64?
        /// Bytes on disk.
        var bytes: Int64
        /// When a chunk last arrived (seconds, on the service's clock).
        var lastActivity: Double
    }

    let limits: ArtifactLimits
    private(set) var entries: [String: Entry] = [:]

    init(limits: ArtifactLimits) { self.limits = limits }

    /// Bytes held by all partial files together.
    var bytes: Int64 { entries.values.reduce(0) { $0 + $1.bytes } }
    var count: Int { entries.count }

    /// Why a chunk of `payloadBytes` for an upload claiming `total` may not be written, or nil
    /// when it may. The service has already checked the message itself and the offset.
    func refusal(sha256 sha: String, total: Int64, payloadBytes: Int) -> String? {
        let short = sha.prefix(12)
        let entry = entries[sha]
        // The content hash fixes the size, so a chunk claiming another total comes from a
        // sender that is wrong about its file. Refused rather than restarting the upload, so
        // that one confused (or hostile) sender cannot keep discarding another's progress;
        // the partial completes with the first total or expires when idle.
        if let pinned = entry?.total, pinned != total {
            return "the upload of artifact \(short) began with a total of \(pinned) bytes; a chunk "
                + "claiming \(total) bytes is refused. Resume with the first total, or start over once the "
                + "partial upload has expired (after \(Int(limits.partialIdleTimeout)) s without data)"
        }
        if entry == nil, entries.count >= limits.maxPartialUploads {
            return "the coordinator already holds \(entries.count) partial uploads, its limit; "
                + "try artifact \(short) again when one of them has finished or expired"
        }
        if entry?.total == nil, total > limits.maxPartialBytes {
            return "artifact \(short) claims \(total) bytes, more than the \(limits.maxPartialBytes) bytes "
                + "all partial uploads together may hold, so it could never finish"
        }
        // Counted on disk rather than reserved by claimed totals: reserving would let two tiny
        // chunks claiming huge totals lock everyone out, while this makes a sender actually
        // send the bytes it holds. The price: uploads that together outgrow the quota stall
        // until one of them expires.
        let held = bytes
        if held + Int64(payloadBytes) > limits.maxPartialBytes {
            return "partial uploads already hold \(held) bytes; \(payloadBytes) more for artifact \(short) would "
                + "exceed the quota of \(limits.maxPartialBytes) bytes. Try again when other uploads have "
                + "finished or expired"
        }
        return nil
    }

    /// A chunk was written: `bytes` are now on disk and the upload's total is fixed.
    mutating func wrote(sha256 sha: String, total: Int64, bytes: Int64, at now: Double) {
        entries[sha] = Entry(total: total, bytes: bytes, lastActivity: now)
    }

    /// A partial found on disk (a previous run's), kept until it has been idle for the timeout.
    mutating func adopt(sha256 sha: String, bytes: Int64, lastActivity: Double) {
        entries[sha] = Entry(total: nil, bytes: bytes, lastActivity: lastActivity)
    }

    /// Brings the recorded size in line with the disk (nil: the file is gone).
    mutating func observe(sha256 sha: String, bytesOnDisk: Int64?) {
        guard let bytesOnDisk else {
            entries[sha] = nil
            return
        }
        if entries[sha] != nil { entries[sha]!.bytes = bytesOnDisk }
    }

    mutating func forget(sha256 sha: String) { entries[sha] = nil }

    /// Partials without a chunk for longer than the idle timeout, to be deleted.
    func expired(at now: Double) -> [String] {
        entries.filter { now - $0.value.lastActivity > limits.partialIdleTimeout }.map(\.key).sorted()
    }
}
