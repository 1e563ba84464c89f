import Testing
import ZeroMQ

@Suite("Polling sockets and waking a poll", .timeLimit(.minutes(1)))
struct PollerTests {
    @Test("an idle socket reports no events once the timeout runs out")
    func idle() throws {
        let context = try Context()
        let pull = try context.boundedSocket(.pull)
        try pull.bind(uniqueInproc("idle"))
        let started = nowMilliseconds()
        let events = try Poller.poll([PollItem(socket: pull, events: .readable)], timeoutMilliseconds: 100)
        #expect(events == [[]])
        #expect(nowMilliseconds() - started >= 90)
    }

    @Test("a socket with a queued message polls readable, and only it")
    func readable() throws {
        let context = try Context()
        let endpoint = uniqueInproc("readable")
        let pull = try context.boundedSocket(.pull)
        try pull.bind(endpoint)
        let quiet = try context.boundedSocket(.pull)
        try quiet.bind(uniqueInproc("quiet"))
        let push = try context.boundedSocket(.push)
        try push.connect(endpoint)
        try push.send([bytes("task")])

        let items = [PollItem(socket: quiet, events: .readable), PollItem(socket: pull, events: .readable)]
        let events = try Poller.poll(items, timeoutMilliseconds: Int(patienceMilliseconds))
        #expect(events == [[], .readable])
        #expect(try pull.receive(dontWait: true) == [bytes("task")])
    }

    @Test("a connected dealer polls writable")
    func writable() throws {
        let context = try Context()
        let endpoint = uniqueInproc("writable")
        let router = try context.boundedSocket(.router)
        try router.bind(endpoint)
        let dealer = try context.boundedSocket(.dealer)
        try dealer.connect(endpoint)
        let events = try Poller.poll(
            [PollItem(socket: dealer, events: [.readable, .writable])], timeoutMilliseconds: 1000)
        #expect(events == [.writable])
    }

    @Test("a waker ends another thread's poll long before its timeout, and drain rearms it")
    func waker() throws {
        let context = try Context()
        let waker = try Waker(context: context)
        let outcome = Collected<(events: [PollEvents], waited: Int, afterDrain: [PollEvents])>()
        let started = Collected<Bool>()
        let thread = SocketThread.start(name: "waker-test") {
            let items = [PollItem(socket: waker.socket, events: .readable)]
            started.append(true)
            let begin = nowMilliseconds()
            do {
                let events = try Poller.poll(items, timeoutMilliseconds: Int(patienceMilliseconds))
                let waited = nowMilliseconds() - begin
                try waker.drain()
                let afterDrain = try Poller.poll(items, timeoutMilliseconds: 0)
                outcome.append((events, waited, afterDrain))
            } catch {
                Issue.record("poll failed: \(error)")
            }
        }
        for _ in 0..<5_000 where started.all.isEmpty { usleep(1000) }
        usleep(20_000)  // let the thread settle into its poll
        waker.wake()
        waker.wake()  // a second wake before the drain must not break anything
        thread.join()
        let result = try #require(outcome.all.first)
        #expect(result.events == [.readable])
        #expect(result.waited < Int(patienceMilliseconds) / 2)
        #expect(result.afterDrain == [[]])
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
