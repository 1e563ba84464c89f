import ArgumentParser
import Coordinator
import Foundation
import HTTPAPI
import ServiceLifecycle
import Store
import SweepKit
import UnixSignals
import Wire

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run a long-lived coordinator that workers join and sweeps are launched to.",
        discussion: """
            The coordinator keeps every task, attempt and metric in <state>/sparsegrid.db and every \
            checkpoint under <state>/artifacts. Stop it with Ctrl-C: a restarted coordinator picks up \
            where it left off, without rerunning finished tasks.

            It binds to loopback by default. To take workers from other hosts, bind a reachable \
            address with CURVE: --curve-key (this coordinator's secret key) and --authorized-keys (the \
            workers' public keys), made with `sparsegrid keygen`; or pass --insecure on a network you \
            trust. The control socket takes commands only with <state>/control.token (readable by \
            this user alone); with --authorized-clients it also takes CURVE clients with those keys and \
            may bind a reachable --control address.

            With --http HOST:PORT it also serves a JSON API (docs/api.md), /metrics and a browser \
            dashboard at /, reading the same state as the CLI. Off loopback it needs --http-token-file, \
            whose token every request must carry; put TLS in front of it (a reverse proxy, or an SSH \
            tunnel to a loopback address).

            --durability full (the default) fsyncs the state database at every commit, so what was \
            committed survives an OS crash or power loss; --durability normal fsyncs only at checkpoints: \
            a crash of the process loses nothing, an OS crash or power loss may undo the last commits \
            (the database stays consistent and their tasks run again). See docs/guarantees.md.

            Then:  sparsegrid worker --coordinator tcp://HOST:5555 --curve-key w.key --server-key coord.pub
                   sparsegrid launch sweeps/quick.yaml --state DIR   (finds this coordinator there)
            """)

    @Option(name: .long, help: "State directory (database, artifacts, logs).")
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "Address workers connect to.")
    var bind: String = defaultWorkerEndpoint

    @Option(name: .long, help: "Address for artifacts (checkpoints). Default: the --bind port + 1.")
    var data: String?

    @Option(name: .long, help: "Address the CLI (launch, status, cancel, retry) connects to.")
    var control: String = defaultControlEndpoint

    @Option(name: .long, help: "Seconds between heartbeats.")
    var heartbeat: Double = 1

    @Option(
        name: .customLong("dead-after"),
        help:
            "Seconds of silence after which a worker is dead and its tasks run elsewhere (a sweep's `dead_after` may ask for longer)."
    )
    var deadAfter: Double = SchedulerConfig.defaultDeadAfter

    @Option(
        name: .customLong("retry-backoff"), help: "Seconds before the first retry of a failed task (doubles each time)."
    )
    var retryBackoff: Double = 0.5

    @Option(
        name: .customLong("curve-key"),
        help: "This coordinator's CURVE secret key file (from `sparsegrid keygen`): encrypts and authenticates workers."
    )
    var curveKey: String?

    @Option(
        name: .customLong("authorized-keys"),
        help: "File of the worker public keys to admit, one per line (with --curve-key).")
    var authorizedKeys: String?

    @Option(
        name: .customLong("authorized-clients"),
        help:
            "File of the public keys of CLI users admitted to the control socket over CURVE, one per line (with --curve-key); then --control may bind a non-loopback address."
    )
    var authorizedClients: String?

    @Flag(name: .long, help: "Allow binding a non-loopback address without encryption.")
    var insecure = false

    @Option(
        name: .customLong("log-format"),
        help:
            "Operator log on stderr (workers joining, leaving, declared dead, tasks requeued): `text`, or `json` for one JSON object per line."
    )
    var logFormat: LogFormat = .text

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also serve the HTTP API (/api/, /metrics) on this address, e.g. 127.0.0.1:8080 (port 0: a free one).",
            valueName: "host:port"))
    var http: String?

    @Option(
        name: .customLong("http-token-file"),
        help:
            "A file holding the access token every HTTP request must carry (Authorization: Bearer TOKEN); required when --http is not on loopback."
    )
    var httpTokenFile: String?

    @Option(name: .long, help: durabilityHelp)
    var durability: Durability = .default

    func validate() throws {
        if httpTokenFile != nil, http == nil {
            throw ValidationError("--http-token-file goes with --http HOST:PORT, the address to serve the HTTP API on.")
        }
        if http != nil, authorizedClients != nil {
            throw ValidationError(
                "--http cannot be combined with --authorized-clients yet: the HTTP server reads the live status through the control socket with the control token, which a CURVE-only control socket does not take."
            )
        }
        if authorizedClients != nil, curveKey == nil {
            throw ValidationError(
                "--authorized-clients needs --curve-key and --authorized-keys: the control socket uses the coordinator's CURVE identity."
            )
        }
        if (curveKey == nil) != (authorizedKeys == nil) {
            throw ValidationError(
                "--curve-key and --authorized-keys go together: the coordinator's secret key and the workers it admits."
            )
        }
        if !WireLimits.intervalRange.contains(heartbeat) || !WireLimits.intervalRange.contains(deadAfter)
            || deadAfter <= heartbeat
        {
            throw ValidationError(
                "--dead-after (\(deadAfter)) must be longer than --heartbeat (\(heartbeat)), both between 0.01 and 86400 s."
            )
        }
    }

    func run() async throws {
        try await userFacing {
            // Checked before anything binds: off loopback without a token is refused.
            let httpConfig = try http.map { address in
                do {
                    return try HTTPServerConfig.make(address: address, tokenFile: httpTokenFile)
                } catch {
                    throw ValidationError("\(error)")
                }
            }
            var curve: CurveServerConfig? = nil
            if let curveKey, let authorizedKeys {
                let keys = try AllowListFile.load(authorizedKeys, what: "--authorized-keys")
                let clients = try authorizedClients.map { file throws(CoordinatorError) in
                    try AllowListFile.load(file, what: "--authorized-clients")
                }
                curve = CurveServerConfig(
                    secretKey: try readKey(curveKey, what: "coordinator's secret key"),
                    authorizedWorkerKeys: keys, authorizedClientKeys: clients ?? [])
            }
            let config = CoordinatorConfig(
                stateDirectory: state, workerEndpoint: bind, dataEndpoint: data, controlEndpoint: control,
                heartbeatInterval: heartbeat,
                scheduler: SchedulerConfig(deadAfter: deadAfter, retryBackoff: retryBackoff), insecure: insecure,
                curve: curve, log: OperatorLog(format: logFormat, source: "coordinator"), durability: durability)
            let coordinator = try Coordinator(config: config, version: sparsegridVersion)
            // SIGHUP re-reads the allow-lists (and so does a change to their files, looked at every
            // few seconds); trapped before the endpoints are announced, so an early SIGHUP does not
            // end the process.
            let reloads = await allowListReloads(coordinator: coordinator, log: config.log)
            defer { reloads.forEach { $0.cancel() } }
            let info = CoordinatorInfo(
                pid: getpid(), workerEndpoint: coordinator.workerEndpoint,
                dataEndpoint: coordinator.dataEndpoint,
                controlEndpoint: coordinator.controlEndpoint, startedAt: Date().timeIntervalSince1970)
            try info.write(state: state)
            print("sparsegrid coordinator: state \(state)")
            print("  workers connect to  \(coordinator.workerEndpoint)")
            print("  artifacts on        \(coordinator.dataEndpoint)")
            print("  control (CLI) on    \(coordinator.controlEndpoint)")
            print("  durability          \(durabilityDescription(coordinator))")
            var httpServer: RunningServer? = nil
            if let httpConfig {
                do {
                    httpServer = try await startHTTPServer(
                        httpConfig, state: state, controlEndpoint: coordinator.controlEndpoint,
                        metricsText: { [metrics = coordinator.metrics] in metrics.exposition() })
                } catch {
                    CoordinatorInfo.remove(state: state)
                    throw error
                }
                print(
                    "  HTTP API on         \(httpServer!.url)api/sweeps\(httpConfig.token == nil ? "" : " (token required)")"
                )
                print(
                    "  Dashboard on        \(httpServer!.url)\(httpConfig.token == nil ? "" : "?token=TOKEN (the token file's)")"
                )
            }
            flushOutput()
            // SIGTERM or SIGINT: each loop finishes its turn (nothing committed is half-sent), then exit.
            let group = ServiceGroup(services: [coordinator], gracefulShutdownSignals: [.sigterm, .sigint])
            do {
                try await group.run()
                await httpServer?.stop()
            } catch {
                await httpServer?.stop()
                CoordinatorInfo.remove(state: state)
                printErr("coordinator: \(error)")
                throw ExitCode(70)
            }
            print("coordinator stopped")
            CoordinatorInfo.remove(state: state)
        }
    }
}

extension CoordinatorCommand {
    /// Seconds between looks at the allow-list files' size and modification time.
    static let allowListPollSeconds = 2.0

    /// The tasks that reload the allow-lists on SIGHUP and on a change to their files (none
    /// without CURVE; then SIGHUP keeps its default action).
    private func allowListReloads(coordinator: Coordinator, log: OperatorLog?) async -> [Task<Void, Never>] {
        guard let authorizedKeys, curveKey != nil else { return [] }
        let reloader = AllowListReloader(
            coordinator: coordinator, workerKeysFile: authorizedKeys, clientKeysFile: authorizedClients)
        @Sendable func report(_ outcome: (message: String, isError: Bool)?) {
            guard let outcome else { return }
            if let log {
                log.write(event: "allow-list", level: outcome.isError ? .error : .info, outcome.message)
            } else {
                printErr("coordinator: \(outcome.message)")
            }
        }
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let onSignal = Task {
            for await _ in hangups { report(reloader.check(force: true)) }
        }
        let poll = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(Self.allowListPollSeconds))
                if Task.isCancelled { break }
                report(reloader.check(force: false))
            }
        }
        return [onSignal, poll]
    }
}

extension LogFormat: ExpressibleByArgument {}

extension Durability: ExpressibleByArgument {}

/// `--durability`'s help, the same for `coordinator` and `run`.
let durabilityHelp = ArgumentHelp(
    "What a committed state change survives: `full` (fsync at every commit: an OS crash or power loss) or `normal` (a crash of the process; an OS crash or power loss may undo the last commits, whose tasks then run again)."
)

/// The start line's account of the durability in effect, from `PRAGMA synchronous` as the
/// coordinator's store reads it back.
func durabilityDescription(_ coordinator: Coordinator) -> String {
    let level = coordinator.synchronousInEffect
    let names = ["OFF", "NORMAL", "FULL", "EXTRA"]
    let pragma = names.indices.contains(level) ? names[level] : "\(level)"
    let survives = level >= 2 ? "a commit survives an OS crash or power loss" : "a commit survives a process crash only"
    return "\(coordinator.config.durability.rawValue) (PRAGMA synchronous = \(pragma): \(survives))"
}
