import Foundation
import ServiceLifecycle
import Store
import Synchronization
import Wire
import ZeroMQ

/// A coordinator as a `Service`: `init` opens the store, binds the three ROUTER sockets
/// (workers, artifacts, control) and restores state, throwing a sentence a user can act on;
/// `run()` serves until graceful shutdown (SIGTERM/SIGINT in a `ServiceGroup`), cancellation
/// or `stop()`, and throws if the loop stopped because a commit failed (the database stays
/// the truth; a restart resumes from it). Each loop runs on a thread of its own
/// (`ThreadService`) so blocking zmq calls never sit on Swift's cooperative pool.
public final class Coordinator: Service, Sendable {
    public let config: CoordinatorConfig
    /// The endpoints actually bound (ports resolved when the config asked for "*").
    public let workerEndpoint: String
    public let dataEndpoint: String
    public let controlEndpoint: String
    /// Its Prometheus metrics: `metrics.exposition()` is what `GET /metrics` serves.
    public let metrics: CoordinatorMetrics
    /// `PRAGMA synchronous` as the store's writer connection reads it back after opening
    /// (2 = FULL, 1 = NORMAL): what `config.durability` actually put in effect.
    public let synchronousInEffect: Int
    private let context: Context
    private let loopService: ThreadService
    private let dataService: ThreadService
    /// Why the worker loop stopped on its own (a failed commit), if it did.
    private let fatal = FatalReason()
    private let authenticator: CurveAuthenticator?

    /// Opens the store, binds the sockets and restores the scheduler; nothing runs until
    /// `run()`. Throws a `CoordinatorError` with a sentence a user can act on (address in use,
    /// non-loopback without CURVE…). `version` is this build's (`sparsegrid_build_info`).
    public init(config: CoordinatorConfig, version: String = "unknown") throws {
        self.config = config
        let metrics = CoordinatorMetrics(version: version)
        self.metrics = metrics
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
                    + (what == "control"
                        ? "and takes commands without CURVE. Keep --control on 127.0.0.1 "
                            + "(tunnel it with ssh -L), or give --authorized-clients with the CLI users' public keys"
                        : "and no CURVE keys are configured. Give --curve-key and --authorized-keys "
                            + "(see `sparsegrid keygen`), bind 127.0.0.1 and tunnel, ")
                    + " or pass --insecure on a network you trust.")
        }
        // A new state directory is its owner's alone: the database holds every result and the
        // control token lives there.
        if !FileManager.default.fileExists(atPath: config.stateDirectory) {
            try FileManager.default.createDirectory(
                atPath: config.stateDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        }
        let controlToken = try ControlToken.loadOrCreate(state: config.stateDirectory)
        let store = try SweepStore(path: config.databasePath, durability: config.durability)
        synchronousInEffect = try store.synchronousInEffect()
        let context = try Context()
        self.context = context
        // The ZAP handler must exist before a CURVE server binds, or libzmq admits any client.
        if let curve = config.curve {
            var domains = [ZAPDomain.workers: curve.authorizedWorkerKeys]
            if curve.securesControl { domains[ZAPDomain.control] = curve.authorizedClientKeys }
            let log = config.log
            let limiter = RefusalLimiter()
            authenticator = try CurveAuthenticator(context: context, allowedPublicKeys: [], domains: domains) {
                // A refused peer retries every second or so: one line per reason per minute.
                guard let line = limiter.line(for: $0, now: Date()) else { return }
                if let log {
                    log.write(event: "refused", level: .warn, "refused a connection: \(line)")
                } else {
                    FileHandle.standardError.write(Data("coordinator: refused a connection: \(line)\n".utf8))
                }
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
                    throw CoordinatorError(
                        "the coordinator's CURVE secret key is not usable: \(error). "
                            + "Make one with `sparsegrid keygen PATH` and pass --curve-key PATH.key.")
                }
            }
            try socket.setSendHighWaterMark(0)
            try socket.setReceiveHighWaterMark(0)
            try socket.setMaxMessageSize(
                Int64(
                    what == "control"
                        ? WireLimits.maxControlBytes
                        : WireLimits.maxMessageBytes))
            if type == .router { try socket.setRouterHandover(true) }
            do {
                try socket.bind(endpoint)
            } catch let error as ZMQError {
                throw CoordinatorError(
                    "cannot bind the \(what) socket to \(endpoint): \(error). "
                        + "Is another coordinator running there? Pick another address or stop it.")
            }
            return (socket, try socket.lastEndpoint)
        }
        let (workerSocket, workerEndpoint) = try bound(
            .router, config.workerEndpoint, what: "worker",
            domain: ZAPDomain.workers)
        let (dataSocket, dataEndpoint) = try bound(
            .router, config.resolvedDataEndpoint(), what: "artifact",
            domain: ZAPDomain.workers)
        let (controlSocket, controlEndpoint) = try bound(
            .router, config.controlEndpoint, what: "control",
            domain: config.curve?.securesControl == true ? ZAPDomain.control : nil)
        self.workerEndpoint = workerEndpoint
        self.dataEndpoint = dataEndpoint
        self.controlEndpoint = controlEndpoint

        let loop = try EventLoop(
            workers: workerSocket, control: controlSocket, store: store, config: config,
            dataEndpoint: dataEndpoint, controlToken: controlToken, metrics: metrics)
        let artifacts = try ArtifactService(
            socket: dataSocket, root: config.artifactDirectory,
            limits: config.artifactLimits)
        let fatal = self.fatal
        let databasePath = config.databasePath
        loopService = ThreadService(name: "sg-coordinator") { stopped in
            loop.run(until: stopped)
            workerSocket.close()
            controlSocket.close()
            if let error = loop.fatalStoreError {
                fatal.set("could not commit to \(databasePath): \(error)")
            }
        }
        dataService = ThreadService(name: "sg-artifacts") { stopped in
            artifacts.run(until: stopped)
            dataSocket.close()
        }
    }

    /// Serves until graceful shutdown, cancellation or `stop()`. When one loop ends (the
    /// worker loop after a failed commit), the other is stopped too.
    public func run() async throws {
        let (loopService, dataService) = (self.loopService, self.dataService)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await loopService.run() }
            group.addTask { await dataService.run() }
            await group.next()
            loopService.stop()
            dataService.stop()
            await group.waitForAll()
        }
        authenticator?.stop()
        if let reason = fatal.value {
            throw CoordinatorError(
                "\(reason). Nothing of that turn was sent; restart the coordinator to resume "
                    + "from the last commit.")
        }
    }

    /// Replaces the allow-lists the ZAP handler checks, from the next handshake on (a peer
    /// already connected stays connected). `clients`: the control socket's list, only for a
    /// coordinator started with one (nil: leave it). Throws, changing nothing, for a key that is
    /// not a Z85 public key, or when this coordinator has no such list to replace.
    public func replaceAuthorizedKeys(workers: Set<String>, clients: Set<String>?) throws(CoordinatorError) {
        guard let authenticator, let curve = config.curve else {
            throw CoordinatorError("this coordinator runs without CURVE, so it has no allow-list to reload.")
        }
        var domains = [ZAPDomain.workers: workers]
        if let clients {
            guard curve.securesControl else {
                throw CoordinatorError(
                    "the control socket was started without --authorized-clients; restart to add client keys.")
            }
            domains[ZAPDomain.control] = clients
        }
        do {
            try authenticator.setDomainKeys(domains)
        } catch {
            throw CoordinatorError("the new allow-list was not applied: \(error)")
        }
    }

    /// Asks `run()` to finish: each loop completes its current turn, so nothing committed is half-sent.
    public func stop() {
        loopService.stop()
        dataService.stop()
    }
}

final class FatalReason: Sendable {
    private let reason = Mutex<String?>(nil)
    var value: String? { reason.withLock { $0 } }
    func set(_ text: String) { reason.withLock { $0 = text } }
}

/// Rate limit for the authenticator's refusal lines: the first refusal for a reason is logged at
/// once, repeats within `interval` are counted and reported with the next line for that reason.
/// Bounded: at most `capacity` distinct reasons are remembered (a peer can vary its key).
final class RefusalLimiter: Sendable {
    private struct Entry { var last: Date; var suppressed: Int }
    private let entries = Mutex<[String: Entry]>([:])
    let interval: TimeInterval
    let capacity: Int

    init(interval: TimeInterval = 60, capacity: Int = 1024) {
        self.interval = interval
        self.capacity = capacity
    }

    /// The line to log for `reason` now, or nil to stay quiet.
    func line(for reason: String, now: Date) -> String? {
        entries.withLock { entries in
            if var entry = entries[reason], now.timeIntervalSince(entry.last) < interval {
                entry.suppressed += 1
                entries[reason] = entry
                return nil
            }
            let suppressed = entries[reason]?.suppressed ?? 0
            if entries.count >= capacity, entries[reason] == nil {
                entries = entries.filter { now.timeIntervalSince($0.value.last) < interval }
                if entries.count >= capacity { entries.removeAll() }
            }
            entries[reason] = Entry(last: now, suppressed: 0)
            return suppressed == 0
                ? reason : "\(reason) (refused \(suppressed) more time(s) for the same reason in the last minute)"
        }
    }
}
