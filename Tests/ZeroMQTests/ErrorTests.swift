import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Errors say which call failed, with errno and a readable sentence", .timeLimit(.minutes(1)))
struct ErrorTests {
    @Test("connecting to an unknown transport names zmq_connect, the endpoint and EPROTONOSUPPORT")
    func badTransport() throws {
        let context = try Context()
        let dealer = try context.boundedSocket(.dealer)
        let error = try #require(throws: ZMQError.self) { try dealer.connect("nonsense://x") }
        #expect(error.function == "zmq_connect")
        #expect(error.errno == EPROTONOSUPPORT)
        #expect(error.errnoName == "EPROTONOSUPPORT")
        #expect(!error.isAgain && !error.isTerminated && !error.isHostUnreachable)
        #expect(error.description.contains("zmq_connect failed for endpoint 'nonsense://x'"))
        #expect(error.description.contains("Protocol not supported"))
        #expect(error.description.contains("tcp://host:port"))
    }

    @Test("binding a port that is taken reports EADDRINUSE and what to do")
    func addressInUse() throws {
        let context = try Context()
        let first = try context.boundedSocket(.router)
        try first.bind("tcp://127.0.0.1:*")
        let endpoint = try first.lastEndpoint
        let second = try context.boundedSocket(.router)
        let error = try #require(throws: ZMQError.self) { try second.bind(endpoint) }
        #expect(error.function == "zmq_bind")
        #expect(error.errno == EADDRINUSE)
        #expect(error.description.contains(endpoint))
        #expect(error.description.contains("choose another port"))
    }

    @Test("a tcp endpoint without a port is rejected as invalid")
    func missingPort() throws {
        let context = try Context()
        let router = try context.boundedSocket(.router)
        let error = try #require(throws: ZMQError.self) { try router.bind("tcp://127.0.0.1") }
        #expect(error.errno == EINVAL)
        #expect(error.function == "zmq_bind")
    }

    @Test("a context with a negative number of I/O threads is refused")
    func badContext() {
        let error = #expect(throws: ZMQError.self) { try Context(ioThreads: -1) }
        #expect(error?.function == "zmq_ctx_set")
        #expect(error?.errno == EINVAL)
    }

    @Test("a message with no frames is refused before reaching libzmq")
    func emptyMessage() throws {
        let context = try Context()
        let dealer = try context.boundedSocket(.dealer)
        let error = try #require(throws: ZMQError.self) { try dealer.send([]) }
        #expect(error.errno == EINVAL)
        #expect(error.description.contains("no frames"))
    }

    @Test("errors compare by errno, function and detail")
    func equatable() {
        let a = ZMQError(errno: EAGAIN, function: "zmq_send", detail: "frame 1 of 2")
        #expect(a == ZMQError(errno: EAGAIN, function: "zmq_send", detail: "frame 1 of 2"))
        #expect(a != ZMQError(errno: EAGAIN, function: "zmq_msg_recv", detail: "frame 1 of 2"))
        #expect(a.isAgain)
    }
}
