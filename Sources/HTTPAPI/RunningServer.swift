import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// An HTTP server started in the background: where it listens, and how to stop it.
public final class RunningServer: Sendable {
    public let host: String
    public let port: Int
    private let task: Task<Void, any Error>
    private let stopping: StopFlag

    init(host: String, port: Int, task: Task<Void, any Error>, stopping: StopFlag) {
        self.host = host
        self.port = port
        self.task = task
        self.stopping = stopping
    }

    /// The server's base URL (an IPv6 host in brackets).
    public var url: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/" }

    /// Starts `server` on `config`'s address and returns once it listens; throws a sentence
    /// when it cannot bind. It runs until `stop()` (no signal handling of its own).
    public static func start(_ server: APIServer, config: HTTPServerConfig) async throws -> RunningServer {
        let (bound, continuation) = AsyncStream<Int>.makeStream()
        let stopping = StopFlag()
        var serverLogger = Logger(label: "sparsegrid.http") { label in
            QuietOnStop(inner: StreamLogHandler.standardError(label: label), stopping: stopping)
        }
        serverLogger.logLevel = .warning
        let app = APIServer.application(server, config: config, logger: serverLogger) { port in
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
        return RunningServer(host: config.host, port: port, task: task, stopping: stopping)
    }

    /// Returns when the server stops by itself (it failed) or after `stop()`; throws its error.
    public func finished() async throws {
        try await task.value
    }

    /// Stops accepting, ends open streams, and waits for the server to finish.
    public func stop() async {
        stopping.set()
        task.cancel()
        _ = try? await task.value
    }
}

final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

/// The server's log on stderr until `stop()`: cancelling the server makes Hummingbird log
/// the cancellation itself as errors ("Waiting on child channel: CancellationError", "Already
/// closed"), which would end every clean `run` and `dashboard` with two alarming lines.
struct QuietOnStop: LogHandler {
    var inner: any LogHandler
    let stopping: StopFlag

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        if !stopping.isSet { inner.log(event: event) }
    }
}
