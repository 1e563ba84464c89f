import Testing

@testable import ZeroMQ

@Suite(
    "Socket monitor events and allow-list replacement", .timeLimit(.minutes(1)),
    .enabled(if: ZMQ.has("curve"), "libzmq was built without CURVE"))
struct MonitorTests {
    /// Waits (up to 10 s) for an event of `kinds` on the monitor; nil if none came.
    private func waitForEvent(_ monitor: SocketMonitor, _ kinds: SocketEvents) throws -> SocketEvent? {
        for _ in 0..<100 {
            _ = try Poller.poll([PollItem(socket: monitor.socket, events: .readable)], timeoutMilliseconds: 100)
            while let event = try monitor.next() {
                if !kinds.intersection(event.kind).isEmpty { return event }
            }
        }
        return nil
    }

    @Test("a refused CURVE client sees HANDSHAKE_FAILED_AUTH 400; after its key is added it gets in")
    func refusedThenAdmitted() throws {
        let context = try Context()
        let server = try ZMQ.curveKeypair()
        let client = try ZMQ.curveKeypair()
        let other = try ZMQ.curveKeypair()
        let authenticator = try CurveAuthenticator(
            context: context, allowedPublicKeys: [], domains: ["d": [other.publicKey]])
        defer { authenticator.stop() }
        let router = try context.boundedSocket(.router)
        try router.setZapDomain("d")
        try router.setCurveServer(secretKey: server.secretKey)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        defer { router.close() }

        let dealer = try context.boundedSocket(.dealer)
        let monitor = try dealer.monitor(.handshakes)
        defer {
            dealer.close()
            monitor.close()
        }
        try dealer.setCurveClient(
            serverPublicKey: server.publicKey, publicKey: client.publicKey, secretKey: client.secretKey)
        try dealer.connect(endpoint)
        let refused = try #require(try waitForEvent(monitor, .handshakes))
        #expect(refused.kind == .handshakeFailedAuth)
        #expect(refused.value == 400)
        #expect(refused.endpoint == endpoint)

        // A bad key changes nothing; a good list takes effect at the next handshake (libzmq
        // 4.3 does not retry a refused handshake by itself: the client connects again, as the
        // worker does on its backoff).
        #expect(throws: ZMQError.self) { try authenticator.setDomainKeys(["d": ["not-a-key"]]) }
        try authenticator.setDomainKeys(["d": [other.publicKey, client.publicKey]])
        try dealer.disconnect(endpoint)
        try dealer.connect(endpoint)
        let admitted = try #require(try waitForEvent(monitor, [.handshakeSucceeded]))
        #expect(admitted.kind == .handshakeSucceeded)
        try dealer.send([bytes("hello")])
        let message = try #require(try router.receiveMessage())
        #expect(message.userId == client.publicKey)
    }

    @Test("event frames parse only in libzmq's shape")
    func parsing() {
        var header: [UInt8] = [0, 0, 0, 0, 0, 0]
        withUnsafeBytes(of: UInt16(SocketEvents.handshakeFailedAuth.rawValue)) {
            header.replaceSubrange(0..<2, with: $0)
        }
        withUnsafeBytes(of: UInt32(400)) { header.replaceSubrange(2..<6, with: $0) }
        #expect(
            SocketEvent(frames: [header, bytes("tcp://h:1")])
                == SocketEvent(kind: .handshakeFailedAuth, value: 400, endpoint: "tcp://h:1"))
        #expect(SocketEvent(frames: [header]) == nil)
        #expect(SocketEvent(frames: [Array(header.prefix(5)), []]) == nil)
    }
}
