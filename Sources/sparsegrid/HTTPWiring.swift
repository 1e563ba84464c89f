import Foundation
import HTTPAPI
import Store
import Wire

/// The coordinator's status through its own control socket, the request `sparsegrid status`
/// sends: the HTTP API reads the same state as the CLI. One request at a time (a ZeroMQ
/// socket is not thread-safe); the HTTP server calls it on NIO's thread pool.
final class ControlStatusSource: LiveStatusSource, @unchecked Sendable {
    private let lock = NSLock()
    private let client: ControlClient

    init(endpoint: String, state: String) throws {
        client = try ControlClient(endpoint: endpoint, state: state)
    }

    func liveStatus() throws -> LiveStatus {
        try lock.withLock {
            let reply = try client.request(.status, StatusRequest(), timeout: 5)
            return try Codec.decodeJSON(LiveStatus.self, from: Codec.encodeJSON(reply.body))
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
    let server = APIServer(store: store, live: live, token: config.token, metricsText: metricsText)
    do {
        return try await RunningServer.start(server, config: config)
    } catch {
        throw UserError("\(error)")
    }
}
