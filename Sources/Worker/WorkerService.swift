import ServiceLifecycle
import ZeroMQ

/// A worker as a `Service`: `run()` serves on threads of its own (never blocking the
/// cooperative pool) until it has said `bye`. Graceful shutdown (the first SIGTERM/SIGINT in a
/// `ServiceGroup`) or `node.stop()` drains: no new work, running attempts may finish within the
/// drain grace. Cancellation or `node.stopNow()` stops running engines at once; they are
/// reported (and run again elsewhere), then `bye`. It throws the worker's own error (e.g. no
/// coordinator answered within the connect timeout).
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
                node.stopNow()
            }
        } onGracefulShutdown: {
            node.stop()
        }
    }
}
