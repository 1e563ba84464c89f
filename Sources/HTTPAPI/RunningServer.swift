import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// An HTTP server started in the background: where it listens, and how to stop it.
public final class RunningServer: Sendable {
    public let host: String
    public let port: Int
    private let task: Task<Void, any Error>

    init(host: String, port: Int, task: Task<Void, any Error>) {
        self.host = host
        self.port = port
        self.task = task
    }

    /// The server's base URL (an IPv6 host in brackets).
    public var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/" }

    /// Starts `server` on `config`'s address and returns once it listens; throws a sentence
    /// when it cannot bind. It runs until `stop()` (no signal handling of its own).
    public static func start(_ server: APIServer, config: HTTPServerConfig) async throws -> RunningServer {
        let (bound, continuation) = AsyncStream<Int>.makeStream()
        let app = APIServer.application(server, config: config) { port in
            continuation.yield(port)
            continuation.finish()
        }
        var logger = Logger(label: "sparsegrid.http")
        logger.logLevel = .critical
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [app], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var ports = bound.makeAsyncIterator()
        guard let port = await ports.next() else {
            var reason = "it stopped"
            do { try await task.value } catch { reason = "\(error)" }
            throw HTTPConfigError("cannot serve HTTP on \(config.host):\(config.port): \(reason)")
        }
        return RunningServer(host: config.host, port: port, task: task)
    }

    /// Stops accepting, ends open streams, and waits for the server to finish.
    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}
