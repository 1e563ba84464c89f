import Foundation
import Store
import SweepKit
import Wire

/// How a coordinator is run. Defaults: loopback only, 1 s heartbeats, dead after 30 s.
public struct CoordinatorConfig: Sendable {
    /// State directory: `sparsegrid.db`, `artifacts/`, `logs/`.
    public var stateDirectory: String
    /// ROUTER for workers, e.g. "tcp://127.0.0.1:5555" ("tcp://127.0.0.1:*" picks a port).
    public var workerEndpoint: String
    /// ROUTER for artifacts (checkpoints), separate so large frames never delay heartbeats.
    /// nil: the worker port + 1 (or any free port when the worker port is "*").
    public var dataEndpoint: String?
    /// ROUTER for the CLI (launch, status, cancel, retry).
    public var controlEndpoint: String
    public var heartbeatInterval: Double
    public var scheduler: SchedulerConfig
    /// Allow a non-loopback bind without CURVE (the user said `--insecure`).
    public var insecure: Bool
    /// Encrypt and authenticate the worker and artifact sockets (required off loopback).
    public var curve: CurveServerConfig?
    /// Caps on artifact uploads (size, partial quota, idle timeout); see `ArtifactLimits`.
    public var artifactLimits = ArtifactLimits()
    /// Where operator events go (workers joining, leaving, declared dead, tasks requeued, …),
    /// one line each, besides the `events` table; nil: only the table.
    public var log: OperatorLog?
    /// `PRAGMA synchronous` of the state database's connections: `.full` (the default) survives
    /// an OS crash or power loss, `.normal` only a process crash (docs/guarantees.md).
    public var durability: Durability
    /// A launch in parts that hears nothing for this long is dropped with what it staged
    /// (EventLoop+Launch.swift).
    public var launchSessionIdle: Double = 600

    public init(
        stateDirectory: String, workerEndpoint: String = "tcp://127.0.0.1:5555", dataEndpoint: String? = nil,
        controlEndpoint: String = "tcp://127.0.0.1:5557", heartbeatInterval: Double = 1,
        scheduler: SchedulerConfig = SchedulerConfig(), insecure: Bool = false,
        curve: CurveServerConfig? = nil, log: OperatorLog? = nil, durability: Durability = .default
    ) {
        self.stateDirectory = stateDirectory
        self.workerEndpoint = workerEndpoint
        self.dataEndpoint = dataEndpoint
        self.controlEndpoint = controlEndpoint
        self.heartbeatInterval = heartbeatInterval
        self.scheduler = scheduler
        self.insecure = insecure
        self.curve = curve
        self.log = log
        self.durability = durability
    }

    public var databasePath: String { "\(stateDirectory)/sparsegrid.db" }
    /// Absolute, because artifact paths are stored in the database and shown by `results`.
    public var artifactDirectory: String {
        URL(fileURLWithPath: stateDirectory).appendingPathComponent("artifacts").standardizedFileURL.path
    }

    /// The data endpoint implied by the worker endpoint when none is given.
    func resolvedDataEndpoint() -> String {
        if let dataEndpoint { return dataEndpoint }
        guard let colon = workerEndpoint.lastIndex(of: ":") else { return workerEndpoint + "-data" }
        let port = workerEndpoint[workerEndpoint.index(after: colon)...]
        let base = workerEndpoint[..<colon]
        if let n = Int(port) { return "\(base):\(n + 1)" }
        return "\(base):*"
    }
}

/// Errors a user can act on when starting a coordinator.
public struct CoordinatorError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Whether an endpoint stays on this machine (loopback, inproc or ipc).
public func isLoopback(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("inproc://") || endpoint.hasPrefix("ipc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    var host = String(endpoint.dropFirst("tcp://".count))
    if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
    return host == "localhost" || host.hasPrefix("127.") || host == "[::1]" || host == "::1"
}

/// The coordinator's CURVE identity, the workers it admits, and the clients (CLI users) it
/// admits to the control socket (Z85 keys, 40 characters). With client keys the control
/// socket is CURVE too and may leave loopback; a worker key does not open it.
public struct CurveServerConfig: Sendable {
    public var secretKey: String
    public var authorizedWorkerKeys: Set<String>
    public var authorizedClientKeys: Set<String>

    public init(secretKey: String, authorizedWorkerKeys: Set<String>, authorizedClientKeys: Set<String> = []) {
        self.secretKey = secretKey
        self.authorizedWorkerKeys = authorizedWorkerKeys
        self.authorizedClientKeys = authorizedClientKeys
    }

    /// Whether the control socket takes CURVE clients (and so may bind off loopback).
    public var securesControl: Bool { !authorizedClientKeys.isEmpty }
}

/// ZAP domains: each socket's handshakes are checked against its own allow-list.
enum ZAPDomain {
    static let workers = "sparsegrid-workers"
    static let control = "sparsegrid-control"
}
