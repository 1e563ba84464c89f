import Synchronization

/// A ZAP handler (RFC 27) that admits CURVE clients by public key.
///
/// It binds `inproc://zeromq.zap.01` on the context — one authenticator per context — and
/// answers every handshake of that context's CURVE servers on its own `SocketThread`.
///
/// Create it **before** binding a CURVE server, and stop it only after closing those
/// servers: when no ZAP handler is bound, libzmq lets every client that knows the server's
/// public key in.
public final class CurveAuthenticator: @unchecked Sendable {
    private let state: State
    private let waker: Waker
    private let thread: SocketThread
    private let stopped = Mutex(false)

    /// - Parameters:
    ///   - allowedPublicKeys: Z85 public keys (40 characters) of the clients to admit.
    ///   - domains: ZAP domain → the only keys admitted on sockets of that domain.
    ///   - onReject: called on the handler's thread with a sentence for each refused
    ///     handshake (and for handler errors), e.g. to log it.
    public init(
        context: Context,
        allowedPublicKeys: Set<String>,
        domains: [String: Set<String>] = [:],
        onReject: (@Sendable (String) -> Void)? = nil
    ) throws {
        let policy = ZAPPolicy(
            allowedPublicKeys: try Set(allowedPublicKeys.map(ZAPPolicy.normalise)),
            domainKeys: try domains.mapValues { try Set($0.map(ZAPPolicy.normalise)) })
        let state = State(policy: policy, onReject: onReject)
        let zap = try context.socket(.rep)
        try zap.setLinger(milliseconds: 0)
        try zap.bind("inproc://zeromq.zap.01")
        let waker = try Waker(context: context)
        self.state = state
        self.waker = waker
        self.thread = SocketThread.start(name: "zmq-zap") {
            Self.serve(zap: zap, waker: waker, state: state)
        }
    }

    deinit { stop() }

    /// Replaces the allow-list; takes effect from the next handshake.
    public func setAllowedPublicKeys(_ keys: Set<String>) throws {
        let normalised = try Set(keys.map(ZAPPolicy.normalise))
        state.policy.withLock { $0.allowedPublicKeys = normalised }
    }

    /// Replaces the allow-lists of the given ZAP domains (other domains keep theirs); takes
    /// effect from the next handshake. Every key is checked first, so a bad key changes nothing.
    /// Connections admitted before stay connected: ZAP runs only at a handshake.
    public func setDomainKeys(_ domains: [String: Set<String>]) throws {
        let normalised = try domains.mapValues { try Set($0.map(ZAPPolicy.normalise)) }
        state.policy.withLock { policy in
            for (domain, keys) in normalised { policy.domainKeys[domain] = keys }
        }
    }

    /// Stops the handler and waits for its thread. Safe to call more than once.
    public func stop() {
        let first = stopped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        state.stopRequested.store(true, ordering: .sequentiallyConsistent)
        waker.wake()
        thread.join()
    }

    /// What the handler thread shares with the owner.
    private final class State: Sendable {
        let policy: Mutex<ZAPPolicy>
        let onReject: (@Sendable (String) -> Void)?
        let stopRequested = Atomic<Bool>(false)

        init(policy: ZAPPolicy, onReject: (@Sendable (String) -> Void)?) {
            self.policy = Mutex(policy)
            self.onReject = onReject
        }
    }

    private static func serve(zap: Socket, waker: Waker, state: State) {
        defer {
            zap.close()
            waker.socket.close()
        }
        let items = [PollItem(socket: zap, events: .readable), PollItem(socket: waker.socket, events: .readable)]
        while !state.stopRequested.load(ordering: .sequentiallyConsistent) {
            do {
                let fired = try Poller.poll(items, timeoutMilliseconds: -1)
                if fired[1].contains(.readable) { try waker.drain() }
                guard fired[0].contains(.readable), let frames = try zap.receive(dontWait: true) else { continue }
                guard let request = ZAPRequest(frames: frames) else {
                    state.onReject?("Answered a malformed ZAP request of \(frames.count) frames with status 500.")
                    try zap.send(ZAPPolicy.replyToMalformed(frames))
                    continue
                }
                let decision = state.policy.withLock { $0.decide(request) }
                if case .reject(let reason) = decision { state.onReject?(reason) }
                try zap.send(ZAPPolicy.reply(to: request.requestId, decision))
            } catch let error as ZMQError where error.isTerminated {
                return
            } catch {
                // Leaving would unbind the handler and let every client in, so keep serving.
                state.onReject?("The CURVE authenticator hit an error and keeps running: \(error)")
            }
        }
    }
}
