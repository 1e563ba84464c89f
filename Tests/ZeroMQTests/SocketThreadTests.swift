import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Socket loops on their own threads", .timeLimit(.minutes(1)))
struct SocketThreadTests {
    @Test("blocking receive loops on SocketThreads leave the cooperative pool free for async work")
    func noPoolStarvation() async throws {
        let context = try Context()
        // More blocked loops than the pool has threads: had they run on the pool, the async
        // work below could never be scheduled.
        let loops = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) + 2
        var peers: [Socket] = []
        var threads: [SocketThread] = []
        let received = Collected<String>()
        for index in 0..<loops {
            let endpoint = uniqueInproc("loop-\(index)")
            let owned = try context.boundedSocket(.pair)
            try owned.setReceiveTimeout(milliseconds: 20_000)
            try owned.bind(endpoint)
            let peer = try context.boundedSocket(.pair)
            try peer.connect(endpoint)
            peers.append(peer)
            threads.append(
                SocketThread.start(name: "loop-\(index)") {
                    do {
                        try owned.send([bytes("ready")])
                        // Blocks this thread until the test sends "stop".
                        while let frames = try owned.receive() {
                            received.append(String(decoding: frames[0], as: UTF8.self))
                            if frames[0] == bytes("stop") { break }
                        }
                    } catch {
                        received.append("error: \(error)")
                    }
                    owned.close()
                })
        }
        for peer in peers { #expect(try peer.receive() == [bytes("ready")]) }

        // Every loop is now blocked in zmq_msg_recv; two tasks on the pool still make progress.
        async let first = pooledWork(steps: 20)
        async let second = pooledWork(steps: 20)
        let results = try await [first, second]
        #expect(results == [20, 20])
        #expect(received.all.isEmpty, "the loops should still be blocked while the tasks ran")

        for peer in peers { try peer.send([bytes("stop")]) }
        for thread in threads { thread.join() }
        #expect(received.all == Array(repeating: "stop", count: loops))
    }

    @Test("shutting the context down makes a blocked receive throw isTerminated")
    func shutdownUnblocksReceive() throws {
        let context = try Context()
        let pull = try context.socket(.pull)
        try pull.setLinger(milliseconds: 0)
        try pull.setReceiveTimeout(milliseconds: 20_000)
        try pull.bind(uniqueInproc("shutdown"))
        let errors = Collected<ZMQError>()
        let entered = Collected<Bool>()
        let thread = SocketThread.start(name: "blocked-recv") {
            entered.append(true)
            do {
                _ = try pull.receive()
            } catch let error as ZMQError {
                errors.append(error)
            } catch {
                Issue.record("unexpected error \(error)")
            }
            pull.close()
        }
        for _ in 0..<5_000 where entered.all.isEmpty { usleep(1000) }
        usleep(50_000)  // let it block in zmq_msg_recv
        let started = nowMilliseconds()
        context.shutdown()
        thread.join()
        let error = try #require(errors.all.first)
        #expect(error.isTerminated)
        #expect(error.function == "zmq_msg_recv")
        #expect(error.description.contains("ETERM"))
        #expect(nowMilliseconds() - started < 10_000, "shutdown, not the 20 s timeout, ended the receive")
    }

    @Test("join waits for the body and can be called twice")
    func joinTwice() {
        let done = Collected<Int>()
        let thread = SocketThread.start(name: "short") {
            usleep(20_000)
            done.append(1)
        }
        thread.join()
        #expect(done.all == [1])
        thread.join()
        #expect(thread.name == "short")
    }
}

/// Sleeps and yields in small steps, so it needs a pool thread many times over.
private func pooledWork(steps: Int) async throws -> Int {
    var count = 0
    for _ in 0..<steps {
        try await Task.sleep(for: .milliseconds(2))
        await Task.yield()
        count += 1
    }
    return count
}
