import Testing
import ZeroMQ

@Suite("Multipart messages between ROUTER and DEALER", .timeLimit(.minutes(1)))
struct RoundTripTests {
    @Test(
        "a multipart message goes there and back, and the ROUTER sees the dealer's routing id first",
        arguments: ["tcp", "inproc"])
    func roundTrip(transport: String) throws {
        let context = try Context()
        let router = try context.boundedSocket(.router)
        try router.bind(transport == "tcp" ? "tcp://127.0.0.1:*" : uniqueInproc("roundtrip"))
        let dealer = try context.boundedSocket(.dealer)
        try dealer.setRoutingId(bytes("worker-7"))
        try dealer.connect(try router.lastEndpoint)

        let request: [[UInt8]] = [bytes("SG1"), bytes("hello"), [], [0, 255, 1, 254]]
        #expect(try dealer.send(request))
        let received = try #require(try router.receive())
        #expect(received == [bytes("worker-7")] + request)

        let reply: [[UInt8]] = [bytes("welcome"), Array(repeating: 7, count: 100_000)]
        #expect(try router.send([received[0]] + reply))
        #expect(try dealer.receive() == reply)
    }

    @Test("the routing id a dealer sets is the one the router reports")
    func routingId() throws {
        let context = try Context()
        let router = try context.boundedSocket(.router)
        try router.bind(uniqueInproc("routing-id"))
        let dealer = try context.boundedSocket(.dealer)
        let id: [UInt8] = [1, 2, 3, 200]
        try dealer.setRoutingId(id)
        #expect(try dealer.routingId == id)
        try dealer.connect(try router.lastEndpoint)
        try dealer.send([bytes("ping")])
        #expect(try router.receive()?.first == id)
    }

    @Test("a bound tcp wildcard reports the real port it got")
    func lastEndpoint() throws {
        let context = try Context()
        let router = try context.boundedSocket(.router)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let port = Int(endpoint.dropFirst("tcp://127.0.0.1:".count))
        #expect(port.map { $0 > 0 && $0 < 65536 } == true)
    }

    @Test("receive(dontWait:) returns nil when nothing is queued")
    func dontWaitReceive() throws {
        let context = try Context()
        let pull = try context.boundedSocket(.pull)
        try pull.bind(uniqueInproc("empty"))
        #expect(try pull.receive(dontWait: true) == nil)
    }

    @Test("send(dontWait:) returns false when no peer can take the message")
    func dontWaitSend() throws {
        let context = try Context()
        let dealer = try context.boundedSocket(.dealer)
        #expect(try dealer.send([bytes("nobody")], dontWait: true) == false)
    }

    @Test("a receive timeout that runs out throws an error that says to try again")
    func receiveTimeout() throws {
        let context = try Context()
        let pull = try context.boundedSocket(.pull)
        try pull.setReceiveTimeout(milliseconds: 50)
        try pull.bind(uniqueInproc("timeout"))
        let started = nowMilliseconds()
        let error = try #require(throws: ZMQError.self) { try pull.receive() }
        #expect(error.isAgain)
        #expect(nowMilliseconds() - started >= 40)
    }

    @Test("a mandatory ROUTER refuses to send to a routing id nobody has")
    func routerMandatory() throws {
        let context = try Context()
        let router = try context.boundedSocket(.router)
        try router.setRouterMandatory(true)
        try router.bind(uniqueInproc("mandatory"))
        let error = try #require(throws: ZMQError.self) {
            try router.send([bytes("ghost"), bytes("assign")])
        }
        #expect(error.isHostUnreachable)
        #expect(error.function == "zmq_send")
    }

    @Test("a closed socket throws ENOTSOCK instead of touching freed memory, and closes twice safely")
    func closedSocket() throws {
        let context = try Context()
        let dealer = try context.boundedSocket(.dealer)
        dealer.close()
        dealer.close()
        #expect(dealer.isClosed)
        let error = try #require(throws: ZMQError.self) { try dealer.send([bytes("x")]) }
        #expect(error.errnoName == "ENOTSOCK")
        #expect(error.description.contains("already closed"))
    }
}
