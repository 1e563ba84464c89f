import Foundation
import Synchronization
import Wire
import ZeroMQ

@testable import Coordinator

/// A clock the test moves by hand, so an idle timeout passes without waiting for it.
final class TestClock: Sendable {
    private let seconds: Mutex<Double>
    init(start: Double = wallClock()) { seconds = Mutex(start) }
    var now: Double { seconds.withLock { $0 } }
    func advance(by delta: Double) { seconds.withLock { $0 += delta } }
}

private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// An `ArtifactService` on a real ROUTER bound to tcp loopback, its loop on its own thread
/// (as the coordinator runs it), and a DEALER that speaks to it the way a worker does.
final class ArtifactHarness {
    let root: String
    let clock: TestClock
    let endpoint: String
    private let context: Context
    private let dealer: Socket
    private let stopped = Flag()
    private var thread: SocketThread?

    /// `prepare` runs on the artifact directory before the service starts (to plant a previous
    /// run's files).
    init(
        limits: ArtifactLimits = ArtifactLimits(), clock: TestClock = TestClock(),
        prepare: (String) throws -> Void = { _ in }
    ) throws {
        root =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("sg-artifacts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: "\(root)/partial", withIntermediateDirectories: true)
        try prepare(root)
        self.clock = clock
        context = try Context()
        let router = try context.socket(.router)
        try router.setLinger(milliseconds: 0)
        try router.setSendHighWaterMark(0)
        try router.setReceiveHighWaterMark(0)
        try router.bind("tcp://127.0.0.1:*")
        endpoint = try router.lastEndpoint
        let service = try ArtifactService(socket: router, root: root, limits: limits, now: { clock.now })
        let flag = stopped
        thread = SocketThread.start(name: "test-artifacts") {
            service.run(until: { flag.isSet })
            router.close()
        }
        dealer = try context.socket(.dealer)
        try dealer.setLinger(milliseconds: 0)
        try dealer.setSendTimeout(milliseconds: 5_000)
        try dealer.connect(endpoint)
    }

    func stop() {
        stopped.set()
        thread?.join()
        thread = nil
        dealer.close()
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { stop() }

    // MARK: - Talking to the service

    func send<T: Encodable>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) throws {
        try dealer.send(Codec.frames(type, header, payload: payload))
    }

    /// Sends a header exactly as given: how a hostile peer would write it.
    func send(_ type: MessageType, rawHeader: String, payload: [UInt8]? = nil) throws {
        try sendFrames(
            [Array("SG1".utf8), Array(type.rawValue.utf8), Array(rawHeader.utf8)] + (payload.map { [$0] } ?? []))
    }

    func sendFrames(_ frames: [[UInt8]]) throws {
        try dealer.send(frames)
    }

    /// The next answer, or nil when none comes within `milliseconds`.
    func receive(within milliseconds: Int = 5_000) throws -> Envelope? {
        let fired = try Poller.poll([PollItem(socket: dealer, events: .readable)], timeoutMilliseconds: milliseconds)
        guard fired.first?.contains(.readable) == true, let frames = try dealer.receive(dontWait: true) else {
            return nil
        }
        return try Codec.parse(frames, maxPayloadBytes: artifactChunkBytes)
    }

    /// Sends and waits for the answer; a missing answer is an error.
    func request<T: Encodable>(_ type: MessageType, _ header: T, payload: [UInt8]? = nil) throws -> Envelope {
        try send(type, header, payload: payload)
        return try answer()
    }

    func request(_ type: MessageType, rawHeader: String, payload: [UInt8]? = nil) throws -> Envelope {
        try send(type, rawHeader: rawHeader, payload: payload)
        return try answer()
    }

    func answer() throws -> Envelope {
        guard let envelope = try receive() else { throw HarnessError("the artifact service did not answer within 5 s") }
        return envelope
    }

    /// The `reject` reason, or an error naming what came instead.
    func rejection(_ envelope: Envelope) throws -> String {
        guard envelope.type == .reject else {
            throw HarnessError(
                "expected `reject`, got `\(envelope.type.rawValue)` "
                    + "\(String(decoding: envelope.header, as: UTF8.self)) with \(envelope.payload?.count ?? 0) payload bytes"
            )
        }
        return try envelope.decode(Reject.self).reason
    }

    // MARK: - The disk

    func partialPath(_ sha: String) -> String { ArtifactFiles.partialPath(root: root, sha256: sha) }
    func finalPath(_ sha: String) -> String { ArtifactFiles.finalPath(root: root, sha256: sha) }
    func partialSize(_ sha: String) -> Int64? { ArtifactFiles.fileSize(partialPath(sha)) }

    /// Every file under the artifact directory, relative to it.
    var files: [String] {
        let enumerator = FileManager.default.enumerator(atPath: root)
        var out: [String] = []
        while let path = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDirectory),
                !isDirectory.boolValue
            {
                out.append(path)
            }
        }
        return out.sorted()
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Deterministic bytes that differ from offset to offset, and their hash.
func testBytes(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7 &+ ($0 >> 8)) }
}

let KiB = 1 << 10
let MiB = 1 << 20
