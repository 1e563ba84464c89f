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
    public init(config: CoordinatorConfig) throws {
        self.config = config
        // Workers and artifacts may leave loopback with CURVE; the control socket takes
        // commands, so it stays on loopback unless the user says --insecure.
        var exposed = [(config.controlEndpoint, "control")]
        if config.curve == nil {
            exposed += [(config.workerEndpoint, "worker"), (config.resolvedDataEndpoint(), "artifact")]
        }
        for (endpoint, what) in exposed where !isLoopback(endpoint) && !config.insecure {
            throw CoordinatorError(
                "refusing to bind the \(what) socket to \(endpoint): it is reachable from other machines "
                    + (what == "control" ? "and takes commands without authentication. Keep --control on 127.0.0.1 "
                        + "(tunnel it with ssh -L to use it remotely)"
                        : "and no CURVE keys are configured. Give --curve-key and --authorized-keys "
                        + "(see `sparsegrid keygen`), bind 127.0.0.1 and tunnel, ")
                    + " or pass --insecure on a network you trust.")
        }
        try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)
        let store = try SweepStore(path: config.databasePath)
        let context = try Context()
        self.context = context
        // The ZAP handler must exist before a CURVE server binds, or libzmq admits any client.
        if let curve = config.curve {
            authenticator = try CurveAuthenticator(context: context, allowedPublicKeys: curve.authorizedWorkerKeys) {
                FileHandle.standardError.write(Data("coordinator: refused a worker: \($0)\n".utf8))
            }
        } else {
            authenticator = nil
        }

        func bound(_ type: SocketType, _ endpoint: String, what: String, curve: Bool = false) throws -> (Socket, String) {
            let socket = try context.socket(type)
            try socket.setLinger(milliseconds: 0)
            if curve, let server = config.curve {
                do {
                    try socket.setCurveServer(secretKey: server.secretKey)
                } catch {
                    throw CoordinatorError("the coordinator's CURVE secret key is not usable: \(error). "
                        + "Make one with `sparsegrid keygen PATH` and pass --curve-key PATH.key.")
                }
            }
            try socket.setSendHighWaterMark(0)
            try socket.setReceiveHighWaterMark(0)
            do {
                try socket.bind(endpoint)
            } catch let error as ZMQError {
                throw CoordinatorError("cannot bind the \(what) socket to \(endpoint): \(error). "
                    + "Is another coordinator running there? Pick another address or stop it.")
            }
            return (socket, try socket.lastEndpoint)
        }
        let (workerSocket, workerEndpoint) = try bound(.router, config.workerEndpoint, what: "worker", curve: true)
        let (dataSocket, dataEndpoint) = try bound(.router, config.resolvedDataEndpoint(), what: "artifact", curve: true)
        let (controlSocket, controlEndpoint) = try bound(.router, config.controlEndpoint, what: "control")
        self.workerEndpoint = workerEndpoint
        self.dataEndpoint = dataEndpoint
        self.controlEndpoint = controlEndpoint

        let loop = try EventLoop(workers: workerSocket, control: controlSocket, store: store, config: config,
                                 dataEndpoint: dataEndpoint)
        let artifacts = try ArtifactService(socket: dataSocket, root: config.artifactDirectory,
                                            limits: config.artifactLimits)
        let flag = stopFlag
        let stopped: @Sendable () -> Bool = { flag.isSet }
        let main = SocketThread.start(name: "sg-coordinator") {
            loop.run(until: stopped)
            workerSocket.close()
            controlSocket.close()
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
