import ArgumentParser
import Foundation
import HTTPAPI
import Store
import UnixSignals

struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the browser dashboard and the HTTP API of a state directory, without running sweeps.",
        discussion: """
            Reads the state directory's database read-only and serves the same pages and /api/ \
            routes as `coordinator --http` (docs/api.md): for a finished sweep after `run` has \
            exited, or for a coordinator started without --http. When the state directory names a \
            running coordinator (or --coordinator gives one) and it answers, the pages are live; \
            otherwise they show the database with "live": false (a coordinator that does not answer \
            is asked again every few seconds, within 1 s). /metrics is not served here: the \
            counters live in the coordinator's process (`coordinator --http`).

            Off loopback it refuses to start without --http-token-file, whose token every request \
            must carry; put TLS in front (a reverse proxy, or an SSH tunnel to a loopback address). \
            Stop it with Ctrl-C.

            Example:  sparsegrid dashboard --state .sparsegrid   (then open the printed URL)
            """)

    @OptionGroup var access: CoordinatorAccess

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The address to serve on, e.g. 127.0.0.1:8080 (port 0: a free one; [::1]:8080 for IPv6).",
            valueName: "host:port"))
    var http: String = "127.0.0.1:8080"

    @Option(
        name: .customLong("http-token-file"),
        help:
            "A file holding the access token every HTTP request must carry (Authorization: Bearer TOKEN); required when --http is not on loopback."
    )
    var httpTokenFile: String?

    /// Seconds the coordinator has to answer a status request before the pages show the
    /// database alone (a failure is remembered for a few seconds, so this is paid rarely).
    static let liveTimeout = 1.0

    func run() async throws {
        try await userFacing {
            // Checked before anything binds: off loopback without a token is refused.
            let config: HTTPServerConfig
            do {
                config = try HTTPServerConfig.make(address: http, tokenFile: httpTokenFile)
            } catch {
                throw ValidationError("\(error)")
            }
            let state = access.state
            try Self.checkState(state)
            let store = try openReadOnlyStore(state: state)
            let access = self.access
            let live = ControlStatusSource(
                timeout: Self.liveTimeout, endpoint: { access.endpoint }, connect: { try access.client($0) })
            // Trapped before the URL is printed: a signal from then on stops the server cleanly.
            let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
            let server = try await startHTTPServer(
                APIServer(store: store, live: live, token: config.token, metricsText: nil), config: config)
            let from = access.coordinator.map { "the coordinator at \($0)" } ?? "a coordinator running on \(state)"
            print("sparsegrid dashboard: state \(state) (read-only); live status from \(from) when it answers")
            print("HTTP API: \(server.url)api/sweeps\(config.token == nil ? "" : " (token required)")")
            print("Dashboard: \(server.url)\(config.token == nil ? "" : "?token=TOKEN (the token file's)")")
            flushOutput()

            let interrupted = InterruptFlag()
            let watcher = Task {
                for await _ in signals {
                    interrupted.set()
                    await server.stop()
                    break
                }
            }
            var failure: (any Error)? = nil
            do { try await server.finished() } catch { failure = error }
            watcher.cancel()
            guard interrupted.isSet else {
                printErr("dashboard: the HTTP server stopped: \(failure.map { "\($0)" } ?? "without an error")")
                throw ExitCode(70)
            }
            print("dashboard stopped")
        }
    }

    /// A clear error, naming the path and what to run first, when `state` is not a state
    /// directory with a database.
    static func checkState(_ state: String) throws {
        var isDirectory: ObjCBool = false
        let first =
            "run a sweep into it first (`sparsegrid run SPEC --state \(state)`, or `sparsegrid coordinator "
            + "--state \(state)` and `sparsegrid launch SPEC --state \(state)`), or pass --state DIR with the "
            + "directory your sweeps used."
        guard FileManager.default.fileExists(atPath: state, isDirectory: &isDirectory) else {
            throw UserError("there is no state directory at \(state): \(first)")
        }
        guard isDirectory.boolValue else { throw UserError("--state \(state) is a file, not a state directory.") }
        guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
            throw UserError("\(state) has no sweep database (\(databasePath(state: state))): \(first)")
        }
    }
}
