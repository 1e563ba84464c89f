import Foundation
import Store
import Synchronization
import Wire
import ZeroMQ

/// A running coordinator: three ROUTER sockets (workers, artifacts, control), each loop on
/// its own thread so blocking zmq calls never sit on Swift's cooperative pool.
public final class Coordinator: Sendable {
    public let config: CoordinatorConfig
    /// The endpoints actually bound (ports resolved when the config asked for "*").
    public let workerEndpoint: String
    public let dataEndpoint: String
    public let controlEndpoint: String
    private let context: Context
    private let stopFlag = StopFlag()
    private let threads: Mutex<[SocketThread]>
    private let authenticator: CurveAuthenticator?

    /// Opens the store, binds the sockets and starts the loops. Throws a `CoordinatorError`
    /// with a sentence a user can act on (address in use, non-loopback without CURVE…).
    /// `onFatal` is called (from the loop's thread) when the loop stops because a commit
    /// failed; the database stays the truth and a restart resumes from it.
    public init(config: CoordinatorConfig, onFatal: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.config = config
        // Workers and artifacts may leave loopback with CURVE; the control socket takes
        // commands, so it stays on loopback unless it has CURVE client keys (or --insecure).
        var exposed: [(String, String)] = []
        if config.curve?.securesControl != true { exposed.append((config.controlEndpoint, "control")) }
        if config.curve == nil {
            exposed += [(config.workerEndpoint, "worker"), (config.resolvedDataEndpoint(), "artifact")]
        }
        for (endpoint, what) in exposed where !isLoopback(endpoint) && !config.insecure {
            throw CoordinatorError(
                "refusing to bind the \(what) socket to \(endpoint): it is reachable from other machines "
                    + (what == "control" ? "and takes commands without CURVE. Keep --control on 127.0.0.1 "
                        + "(tunnel it with ssh -L), or give --authorized-clients with the CLI users' public keys"
                        : "and no CURVE keys are configured. Give --curve-key and --authorized-keys "
                        + "(see `sparsegrid keygen`), bind 127.0.0.1 and tunnel, ")
                    + " or pass --insecure on a network you trust.")
        }
        try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)
        let controlToken = try ControlToken.loadOrCreate(state: config.stateDirectory)
        let store = try SweepStore(path: config.databasePath)
        let context = try Context()
        self.context = context
        // The ZAP handler must exist before a CURVE server binds, or libzmq admits any client.
        if let curve = config.curve {
            var domains = [ZAPDomain.workers: curve.authorizedWorkerKeys]
            if curve.securesControl { domains[ZAPDomain.control] = curve.authorizedClientKeys }
            authenticator = try CurveAuthenticator(context: context, allowedPublicKeys: [], domains: domains) {
                FileHandle.standardError.write(Data("coordinator: refused a worker: \($0)\n".utf8))
            }
        } else {
            authenticator = nil
        }

        func bound(_ type: SocketType, _ endpoint: String, what: String, domain: String?) throws -> (Socket, String) {
            let socket = try context.socket(type)
            try socket.setLinger(milliseconds: 0)
            if let domain, let server = config.curve {
                try socket.setZapDomain(domain)
                do {
                    try socket.setCurveServer(secretKey: server.secretKey)
                } catch {
                    throw CoordinatorError("the coordinator's CURVE secret key is not usable: \(error). "
                        + "Make one with `sparsegrid keygen PATH` and pass --curve-key PATH.key.")
                }
            }
            try socket.setSendHighWaterMark(0)
            try socket.setReceiveHighWaterMark(0)
            try socket.setMaxMessageSize(Int64(WireLimits.maxMessageBytes))
            if type == .router { try socket.setRouterHandover(true) }
            do {
                try socket.bind(endpoint)
            } catch let error as ZMQError {
                throw CoordinatorError("cannot bind the \(what) socket to \(endpoint): \(error). "
                    + "Is another coordinator running there? Pick another address or stop it.")
            }
            return (socket, try socket.lastEndpoint)
        }
        let (workerSocket, workerEndpoint) = try bound(.router, config.workerEndpoint, what: "worker",
                                                       domain: ZAPDomain.workers)
        let (dataSocket, dataEndpoint) = try bound(.router, config.resolvedDataEndpoint(), what: "artifact",
                                                   domain: ZAPDomain.workers)
        let (controlSocket, controlEndpoint) = try bound(
            .router, config.controlEndpoint, what: "control",
            domain: config.curve?.securesControl == true ? ZAPDomain.control : nil)
        self.workerEndpoint = workerEndpoint
        self.dataEndpoint = dataEndpoint
        self.controlEndpoint = controlEndpoint

        let loop = try EventLoop(workers: workerSocket, control: controlSocket, store: store, config: config,
                                 dataEndpoint: dataEndpoint, controlToken: controlToken)
        let artifacts = try ArtifactService(socket: dataSocket, root: config.artifactDirectory,
                                            limits: config.artifactLimits)
        let flag = stopFlag
        let stopped: @Sendable () -> Bool = { flag.isSet }
        let main = SocketThread.start(name: "sg-coordinator") {
            loop.run(until: stopped)
            workerSocket.close()
            controlSocket.close()
            if let error = loop.fatalStoreError {
                onFatal("could not commit to \(config.databasePath): \(error)")
            }
        }
        let data = SocketThread.start(name: "sg-artifacts") {
            artifacts.run(until: stopped)
            dataSocket.close()
        }
        threads = Mutex([main, data])
    }

    /// Stops the loops (each finishes its current turn, so nothing committed is half-sent)
    /// and waits for them.
    public func stop() {
        stopFlag.set()
        let all = threads.withLock { t -> [SocketThread] in
            defer { t.removeAll() }
            return t
        }
        for thread in all { thread.join() }
        authenticator?.stop()
    }

    deinit { stop() }
}

/// A flag one thread sets and socket loops poll between turns.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
