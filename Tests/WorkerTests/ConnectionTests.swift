import SweepKit
import Testing
import Wire

@testable import Worker

@Suite("WorkerSession: saying hello and staying connected")
struct ConnectionTests {
    @Test("start says hello with the slots, the engines and no running attempts")
    func helloOnStart() throws {
        var s = makeSession(slots: 3)
        s.start(now: 100)
        let effects = s.drainEffects()
        #expect(effects.map(Seen.init) == [.hello(running: [], slots: 3)])
        guard case .send(.hello, let frames) = effects.first else { Issue.record("no hello"); return }
        let hello = try Codec.parse(frames).decode(Hello.self)
        #expect(hello.workerId == "w1")
        #expect(hello.host == "node1")
        #expect(hello.pid == 4242)
        #expect(hello.engines["null"] != nil)
        #expect(!s.welcomed)
    }

    @Test("a welcome makes the worker ready with all its free slots and resends unacknowledged results")
    func welcomeReady() {
        var s = makeSession(slots: 3)
        s.start(now: 0)
        _ = s.drainEffects()
        s.received(welcome(), now: 0.1)
        #expect(s.drain() == [.log("connected to \(coordinatorAddress) as w1"), .ready(3)])
        #expect(s.welcomed)
        #expect(s.dataEndpoint == dataAddress)

        // One attempt runs and ends while the coordinator does not know us: its result is kept.
        s.received(assign("a1"), now: 0.2)
        _ = s.drainEffects()
        s.received(.reject(Reject(.unknownWorker, "unknown worker: send hello")), now: 0.3)
        #expect(s.drainQuiet() == [.hello(running: ["a1"], slots: 3)])
        s.jobFinished(attemptId: "a1", type: .result, frames: resultFrames("a1"), now: 0.4)
        #expect(s.drainQuiet() == [], "nothing is sent before the next welcome")

        s.received(welcome(), now: 0.5)
        #expect(s.drainQuiet() == [.result("a1", credit: 0), .ready(3)])
    }

    @Test("a reject for an unknown worker says hello again at once")
    func rejectUnknownWorker() {
        var s = welcomedSession()
        s.received(assign("a1"), now: 1)
        _ = s.drainEffects()
        s.received(.reject(Reject(.unknownWorker, "unknown worker: send hello")), now: 2)
        #expect(s.drain() == [.hello(running: ["a1"], slots: 2)])
        #expect(!s.welcomed)
    }

    @Test("a reject because the id is in use waits for the backoff, then says hello on a fresh socket")
    func rejectIdInUse() {
        // The coordinator went silent; our new connection's hello meets our old, still live one.
        var s = welcomedSession(deadAfter: 5)
        s.tick(now: 5.5)
        #expect(s.drainQuiet() == [.heartbeat([]), .reconnect, .hello(running: [], slots: 2)])
        s.received(.reject(Reject(.idInUse, "worker id w1 is live on another connection")), now: 5.6)
        #expect(
            s.drain() == [
                .log(
                    "the coordinator refused our hello: worker id w1 is live on another connection; "
                        + "trying again")
            ])
        #expect(!s.welcomed)
        s.tick(now: 5.9)
        #expect(s.drain() == [], "the backoff of 0.5 s from the socket's opening has not passed")
        s.tick(now: 6.1)
        #expect(s.drainQuiet() == [.reconnect, .hello(running: [], slots: 2)])
        s.received(.reject(Reject(.idInUse, "worker id w1 is live on another connection")), now: 6.2)
        s.tick(now: 7.0)
        #expect(s.drainQuiet() == [], "the backoff doubled to 1 s")
        s.tick(now: 7.2)
        #expect(s.drainQuiet() == [.reconnect, .hello(running: [], slots: 2)])
        s.received(welcome(), now: 7.3)
        #expect(s.welcomed)
        #expect(s.backoff == 0.5)
    }

    @Test("other reject codes are logged and change nothing")
    func rejectOther() {
        var s = welcomedSession()
        s.received(.reject(Reject(.tooLarge, "attempt a9 is too large")), now: 1)
        #expect(s.drain() == [.log("the coordinator rejected a message (too_large): attempt a9 is too large")])
        #expect(s.welcomed)
    }

    @Test("a coordinator silent for longer than deadAfter means a reconnect and a new hello")
    func silence() {
        var s = welcomedSession(heartbeatInterval: 1, deadAfter: 5)
        s.received(.heartbeat, now: 3)
        s.tick(now: 3)
        _ = s.drainEffects()
        s.tick(now: 8)
        #expect(!s.drain().contains(.reconnect), "5 s of silence is not more than deadAfter")
        s.tick(now: 8.5)
        #expect(
            s.drain() == [
                .log("the coordinator went silent for 5 s; reconnecting"), .reconnect,
                .hello(running: [], slots: 2),
            ])
        #expect(!s.welcomed)
        #expect(s.dataEndpoint == nil)
        // Nothing is sent on the new socket but hellos until the next welcome.
        s.tick(now: 8.7)
        #expect(s.drain() == [])
        s.received(welcome(), now: 8.8)
        #expect(s.drainQuiet() == [.ready(2)])
    }

    @Test("anything from the coordinator, even a message that cannot be read, counts as hearing from it")
    func unreadableCountsAsHeard() {
        var s = welcomedSession(deadAfter: 5)
        s.receivedUnreadable("`assign`.attemptId is missing", now: 4)
        #expect(s.drain() == [.log("ignored a message from the coordinator: `assign`.attemptId is missing")])
        s.tick(now: 8)
        #expect(!s.drain().contains(.reconnect))
        #expect(s.lastHeard == 4)
    }

    @Test("the backoff doubles up to 10 s and starts again at 0.5 s after a welcome")
    func backoff() {
        var s = makeSession()
        s.start(now: 0)
        _ = s.drainEffects()
        var waits: [Double] = []
        for _ in 0..<7 {
            let wait = s.backoff
            s.tick(now: s.connectedAt + wait - 0.01)
            #expect(!s.drain().contains(.reconnect))
            let at = s.connectedAt + wait + 0.01
            s.tick(now: at)
            #expect(s.drainQuiet() == [.reconnect, .hello(running: [], slots: 2)])
            #expect(s.connectedAt == at)
            waits.append(wait)
        }
        #expect(waits == [0.5, 1, 2, 4, 8, 10, 10])

        s.received(welcome(), now: s.connectedAt + 0.1)
        #expect(s.backoff == 0.5)
        let now = s.connectedAt + 0.2
        s.received(.reject(Reject(.idInUse, "in use")), now: now)
        s.tick(now: s.connectedAt + 0.51)
        #expect(s.drainQuiet().contains(.reconnect))
        #expect(s.backoff == 1)
    }

    @Test("with no welcome within the connect timeout the worker fails with the sentence that says what to check")
    func connectTimeout() {
        var s = makeSession(connectTimeout: 2)
        s.start(now: 0)
        _ = s.drainEffects()
        var failure: String? = nil
        var t = 0.0
        while t < 10, failure == nil {
            t += 0.05
            s.tick(now: t)
            for seen in s.drain() { if case .fail(let sentence) = seen { failure = sentence } }
        }
        #expect(
            failure == "no coordinator answered at \(coordinatorAddress) within 2 s. Check that "
                + "`sparsegrid coordinator` is running there and that this address is the one it printed "
                + "(--bind); a remote coordinator must bind a non-loopback address.")
        #expect(t > 2)
        #expect(s.hasEnded)
        s.tick(now: t + 20)
        #expect(s.drain() == [], "a session that gave up decides nothing more")
    }

    @Test("the connect timeout applies only before the first welcome")
    func connectTimeoutOnlyBeforeWelcome() {
        var s = makeSession(connectTimeout: 2)
        s.start(now: 0)
        s.received(welcome(deadAfter: 1), now: 0.1)
        s.tick(now: 5)  // silent: reconnect
        _ = s.drainEffects()
        for t in stride(from: 5.1, through: 40, by: 0.1) { s.tick(now: t) }
        #expect(!s.drain().contains { if case .fail = $0 { true } else { false } })
        #expect(!s.hasEnded)
    }

    @Test("waiting for a coordinator is logged once, after 3 s without a welcome")
    func waitingNotice() {
        var s = makeSession()
        s.start(now: 0)
        _ = s.drainEffects()
        var logs: [(Double, String)] = []
        for t in stride(from: 0.1, through: 30, by: 0.1) {
            s.tick(now: t)
            for case .log(let line) in s.drain() { logs.append((t, line)) }
        }
        #expect(
            logs.map(\.1) == [
                "waiting for a coordinator at \(coordinatorAddress) (is `sparsegrid coordinator` "
                    + "running?)"
            ])
        #expect(logs.first.map { $0.0 > 3 } == true)
    }

    @Test("heartbeats go every interval and list the running attempts")
    func heartbeats() {
        var s = welcomedSession(heartbeatInterval: 2, deadAfter: 10)
        s.tick(now: 0)
        #expect(s.drain() == [.heartbeat([])], "the first goes right after the welcome")
        s.received(assign("b2"), now: 0.5)
        s.received(assign("a1"), now: 0.5)
        _ = s.drainEffects()
        s.tick(now: 1.9)
        #expect(s.drain() == [])
        s.tick(now: 2)
        #expect(s.drain() == [.heartbeat(["a1", "b2"])])
        s.jobFinished(attemptId: "b2", type: .result, frames: resultFrames("b2"), now: 3)
        _ = s.drainEffects()
        s.tick(now: 3.5)
        #expect(s.drain() == [])
        s.tick(now: 4.1)
        #expect(s.drain() == [.heartbeat(["a1"])])
    }

    @Test("no heartbeat is sent while not welcomed")
    func noHeartbeatBeforeWelcome() {
        var s = makeSession()
        s.start(now: 0)
        _ = s.drainEffects()
        s.tick(now: 0.1)
        s.tick(now: 0.4)
        #expect(s.drain() == [])
    }
}

@Suite("Incoming: decoding what the coordinator sends")
struct IncomingTests {
    @Test("coordinator messages decode into their cases")
    func decodes() throws {
        let welcome = Welcome(heartbeatInterval: 1, deadAfter: 5, dataEndpoint: dataAddress)
        guard case .welcome(let w) = try Incoming.decode(Codec.frames(.welcome, welcome)) else {
            Issue.record("not a welcome")
            return
        }
        #expect(w.dataEndpoint == dataAddress)
        guard case .ack(let ack) = try Incoming.decode(Codec.frames(.ack, Ack(attemptId: "a1", outcome: .duplicate)))
        else {
            Issue.record("not an ack")
            return
        }
        #expect(ack.outcome == .duplicate)
        guard case .reject(let reject) = try Incoming.decode(Codec.frames(.reject, Reject(.idInUse, "in use"))) else {
            Issue.record("not a reject")
            return
        }
        #expect(reject.code == .idInUse)
        guard case .heartbeat = try Incoming.decode(Codec.frames(.heartbeat, Empty())) else {
            Issue.record("not a heartbeat")
            return
        }
    }

    @Test("a worker's own message types and malformed headers are refused")
    func refuses() {
        #expect(throws: WireError.self) { try Incoming.decode(Codec.frames(.ready, Ready(credits: 1))) }
        #expect(throws: WireError.self) {
            try Incoming.decode([Array("SG1".utf8), Array("assign".utf8), Array("{}".utf8)])
        }
        #expect(throws: WireError.self) {
            try Incoming.decode([Array("SG9".utf8), Array("welcome".utf8), Array("{}".utf8)])
        }
    }
}
