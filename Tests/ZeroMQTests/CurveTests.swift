import Testing

@testable import ZeroMQ

@Suite(
    "CURVE keys and the ZAP allow-list", .timeLimit(.minutes(1)),
    .enabled(if: ZMQ.has("curve"), "libzmq was built without CURVE"))
struct CurveTests {
    @Test("a keypair is two 40-character Z85 keys, and the public key follows from the secret")
    func keypair() throws {
        let pair = try ZMQ.curveKeypair()
        #expect(pair.publicKey.utf8.count == 40)
        #expect(pair.secretKey.utf8.count == 40)
        #expect(try ZMQ.curvePublic(fromSecret: pair.secretKey) == pair.publicKey)
        #expect(try ZMQ.curveKeypair().publicKey != pair.publicKey)
        #expect(try ZMQ.z85Decode(pair.publicKey).count == 32)
    }

    @Test("Z85 round-trips bytes and rejects lengths it cannot encode")
    func z85() throws {
        let raw: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(try ZMQ.z85Encode(raw) == "HelloWorld")  // the example of ZeroMQ RFC 32
        #expect(try ZMQ.z85Decode("HelloWorld") == raw)
        #expect(throws: ZMQError.self) { try ZMQ.z85Encode([1, 2, 3]) }
        #expect(throws: ZMQError.self) { try ZMQ.z85Decode("abc") }
    }

    @Test("a short key is refused with a sentence that says 40 characters are expected")
    func shortKey() throws {
        let context = try Context()
        let router = try context.boundedSocket(.router)
        let error = try #require(throws: ZMQError.self) { try router.setCurveServer(secretKey: "short") }
        #expect(error.description.contains("expected 40 Z85 characters"))
        #expect(throws: ZMQError.self) {
            try CurveAuthenticator(context: context, allowedPublicKeys: ["not-a-key"])
        }
    }

    @Test("a client with an allowed key talks; one whose key is not on the list is refused")
    func allowList() throws {
        let context = try Context()
        let server = try ZMQ.curveKeypair()
        let friend = try ZMQ.curveKeypair()
        let stranger = try ZMQ.curveKeypair()
        let rejections = Collected<String>()
        let authenticator = try CurveAuthenticator(
            context: context, allowedPublicKeys: [friend.publicKey]
        ) { rejections.append($0) }
        defer { authenticator.stop() }

        let router = try context.boundedSocket(.router)
        try router.setCurveServer(secretKey: server.secretKey)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        defer { router.close() }

        let good = try context.boundedSocket(.dealer)
        try good.setRoutingId(bytes("friend"))
        try good.setCurveClient(
            serverPublicKey: server.publicKey, publicKey: friend.publicKey, secretKey: friend.secretKey)
        try good.connect(endpoint)
        try good.send([bytes("hello")])
        let message = try #require(try router.receiveMessage())
        #expect(message.frames == [bytes("friend"), bytes("hello")])
        #expect(message.userId == friend.publicKey, "the server learns which allowed key sent it")
        #expect(message.peerAddress == "127.0.0.1")

        let bad = try context.boundedSocket(.dealer)
        try bad.setCurveClient(
            serverPublicKey: server.publicKey, publicKey: stranger.publicKey, secretKey: stranger.secretKey)
        try bad.connect(endpoint)
        try bad.send([bytes("let me in")])
        for _ in 0..<500 where rejections.all.isEmpty { usleep(10_000) }
        let events = try Poller.poll([PollItem(socket: router, events: .readable)], timeoutMilliseconds: 500)
        #expect(events == [[]], "nothing from the refused client reaches the server")
        let rejection = try #require(rejections.all.first)
        #expect(rejection.contains(stranger.publicKey))
        #expect(rejection.contains("not on the allow-list"))
    }

    @Test("the ZAP policy accepts a listed CURVE key and refuses others and other mechanisms")
    func policy() throws {
        let listed = try ZMQ.curveKeypair().publicKey
        let unlisted = try ZMQ.curveKeypair().publicKey
        let policy = ZAPPolicy(allowedPublicKeys: [try ZAPPolicy.normalise(listed)])
        func request(_ mechanism: String, _ key: String) throws -> ZAPRequest {
            try #require(
                ZAPRequest(frames: [
                    bytes("1.0"), bytes("7"), bytes("workers"), bytes("10.0.0.9"), [],
                    bytes(mechanism), try ZMQ.z85Decode(key),
                ]))
        }
        #expect(policy.decide(try request("CURVE", listed)) == .accept(userId: listed))
        guard case .reject(let reason) = policy.decide(try request("CURVE", unlisted)) else {
            Issue.record("an unlisted key was accepted")
            return
        }
        #expect(reason.contains("10.0.0.9") && reason.contains(unlisted))
        guard case .reject = policy.decide(try request("PLAIN", listed)) else {
            Issue.record("a non-CURVE mechanism was accepted")
            return
        }
        #expect(ZAPRequest(frames: [bytes("2.0"), bytes("7"), [], [], [], bytes("CURVE")]) == nil)
        let reply = ZAPPolicy.reply(to: bytes("7"), .accept(userId: listed))
        #expect(reply == [bytes("1.0"), bytes("7"), bytes("200"), bytes("OK"), bytes(listed), []])
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
