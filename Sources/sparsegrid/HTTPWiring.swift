import Foundation
import HTTPAPI
import Store
import Wire

/// The coordinator's status through its own control socket, the request `sparsegrid status`
/// sends: the HTTP API reads the same state as the CLI. One request at a time (a ZeroMQ
/// socket is not thread-safe); the HTTP server calls it on NIO's thread pool.
///
/// `endpoint` is asked on every fetch (nil: no coordinator to ask, a failure at once), so
/// `sparsegrid dashboard` notices a coordinator started or stopped on its state directory
/// after it. After a failed request the client is dropped and the next fetch connects
/// afresh: a reply that comes after its timeout must not be read as the next one's.
final class ControlStatusSource: LiveStatusSource, @unchecked Sendable {
    private let lock = NSLock()
    private let endpoint: () -> String?
    private let connect: (String) throws -> ControlClient
    private let timeout: Double
    private var client: ControlClient?

    init(timeout: Double, endpoint: @escaping () -> String?, connect: @escaping (String) throws -> ControlClient) {
        self.timeout = timeout
        self.endpoint = endpoint
        self.connect = connect
    }

    /// The coordinator at `endpoint`, authenticated with `state`'s control token.
    convenience init(endpoint: String, state: String, timeout: Double = 5) throws {
        let client = try ControlClient(endpoint: endpoint, state: state)
        self.init(timeout: timeout, endpoint: { endpoint }, connect: { try ControlClient(endpoint: $0, state: state) })
        self.client = client
    }

    func liveStatus() throws -> LiveStatus {
        try lock.withLock {
            guard let endpoint = endpoint() else { throw UserError("no coordinator is running") }
            if client?.endpoint != endpoint { client = nil }
            do {
                let client = try self.client ?? connect(endpoint)
                self.client = client
                let reply = try client.request(.status, StatusRequest(), timeout: timeout)
                return try Codec.decodeJSON(LiveStatus.self, from: Codec.encodeJSON(reply.body))
            } catch {
                client = nil
                throw error
            }
        }
    }
}

/// Starts the HTTP API of the coordinator on `state` (its control socket at
/// `controlEndpoint`, its database read-only).
func startHTTPServer(
    _ config: HTTPServerConfig, state: String, controlEndpoint: String,
    metricsText: @escaping @Sendable () async -> String
) async throws -> RunningServer {
    let store = try openReadOnlyStore(state: state)
    let live = try ControlStatusSource(endpoint: controlEndpoint, state: state)
    return try await startHTTPServer(
        APIServer(store: store, live: live, token: config.token, metricsText: metricsText), config: config)
}

/// Starts `server` on `config`'s address; a user-facing error when it cannot bind.
func startHTTPServer(_ server: APIServer, config: HTTPServerConfig) async throws -> RunningServer {
    do {
        return try await RunningServer.start(server, config: config)
    } catch {
        throw UserError("\(error)")
    }
}
