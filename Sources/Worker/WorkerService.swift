import ServiceLifecycle
import ZeroMQ

/// A worker as a `Service`: `run()` serves on threads of its own (never blocking the
/// cooperative pool) until graceful shutdown (SIGTERM/SIGINT in a `ServiceGroup`),
/// cancellation or `node.stop()`; running engines are stopped and reported, then `bye`.
/// It throws the worker's own error (e.g. no coordinator answered within the connect timeout).
public struct WorkerService: Service {
    public let node: WorkerNode

    public init(node: WorkerNode) { self.node = node }

    public func run() async throws {
        let node = self.node
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                    _ = SocketThread.start(name: "sg-worker-run") {
                        do {
                            try node.run()
                            done.resume()
                        } catch {
                            done.resume(throwing: error)
                        }
                    }
                }
            } onCancel: {
                node.stop()
            }
        } onGracefulShutdown: {
            node.stop()
        }
    }
}
