import Foundation
import SweepKit
import Testing
import Wire
import Worker
import ZeroMQ

@testable import Coordinator

/// A real coordinator and a real worker (the built-in null engine) in this process, over tcp
/// loopback: a sweep launched through the control socket runs to the end, and the exposition
/// tells the same story as the sweep (every task succeeded, one attempt each, the worker alive
/// and then left after its bye).
@Suite("Metrics of a real null-engine sweep")
struct MetricsSweepTests {
    static let tasks = 12

    @Test("the exposition's counts match the sweep")
    func sweepCounts() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("sg-metrics-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let coordinator = try Coordinator(
            config: CoordinatorConfig(
                stateDirectory: state, workerEndpoint: "tcp://127.0.0.1:*", controlEndpoint: "tcp://127.0.0.1:*"),
            version: "9.9.9-test")
        let running = Task { try await coordinator.run() }
        defer { coordinator.stop() }

        let grid = (0..<Self.tasks).map(String.init).joined(separator: ", ")
        let plan = try SpecLoader.plan(
            yaml: """
                name: metrics
                engine: null
                data: {dataset: synthetic, train: 8, test: 8}
                grid:
                  i: [\(grid)]
                stages:
                  work:
                    params: {}
                retries: 0
                """, file: "metrics.yaml")
        // The blocking ZeroMQ call runs on a thread of its own, not on the cooperative pool (two
        // threads on a two-core machine), and waits up to 120 s: `coordinator.run()` starts the
        // loop thread only once the pool runs its task, and in a full parallel test run the pool
        // can be busy for half a minute (a 30 s wait on the pool saw no reply, twice).
        let reply = try await Thread.offPool { [controlEndpoint = coordinator.controlEndpoint] in
            try Self.control(controlEndpoint, state: state, .launch, LaunchRequest(plan: plan))
        }
        #expect(reply.ok, "launch: \(reply.error ?? "")")

        let worker = try WorkerNode(
            config: WorkerConfig(
                coordinator: coordinator.workerEndpoint, workerId: "metrics-w1", host: "test",
                slots: [SlotInfo(index: 0, device: "cpu"), SlotInfo(index: 1, device: "cpu")], engines: [:],
                cacheDirectory: "\(state)/cache", describeEngines: false, drainGrace: 0))
        let workerDone = Thread.detachedThread { try? worker.run() }

        var e = try await waitFor(coordinator, "every task succeeded") {
            $0["sparsegrid_tasks{state=\"succeeded\"}"] == Double(Self.tasks)
        }
        let n = Double(Self.tasks)
        #expect(e["sparsegrid_attempts_total{outcome=\"succeeded\"}"] == n)
        for outcome in AttemptOutcome.allCases where outcome != .running && outcome != .succeeded {
            #expect(e["sparsegrid_attempts_total{outcome=\"\(outcome.rawValue)\"}"] == 0, "\(outcome)")
        }
        for state in TaskState.allCases where state != .succeeded {
            #expect(e["sparsegrid_tasks{state=\"\(state.rawValue)\"}"] == 0, "\(state)")
        }
        #expect(e["sparsegrid_queue_depth"] == 0)
        #expect(e["sparsegrid_task_duration_seconds_count{stage=\"work\"}"] == n)
        // Launched as ready, each observed once from its launch to its assign.
        #expect(e["sparsegrid_dispatch_latency_seconds_count"] == n)
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 1)
        #expect(e["sparsegrid_build_info{version=\"9.9.9-test\"}"] == 1)

        worker.stop()
        e = try await waitFor(coordinator, "the worker left") { $0["sparsegrid_workers{state=\"left\"}"] == 1 }
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 0)
        #expect(e["sparsegrid_workers{state=\"dead\"}"] == 0)
        await workerDone.value
        coordinator.stop()
        try await running.value
    }

    /// Polls the exposition (the gauges are recounted about once a second) until `condition`.
    private func waitFor(
        _ coordinator: Coordinator, _ what: String, timeout: Double = 120, _ condition: (Exposition) -> Bool
    ) async throws -> Exposition {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let e = Exposition(coordinator.metrics.exposition())
            if condition(e) { return e }
            if Date() > deadline {
                Issue.record("timed out waiting until \(what); last exposition:\n\(coordinator.metrics.exposition())")
                return e
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    private static func control<T: Encodable>(
        _ endpoint: String, state: String, _ type: MessageType, _ header: T
    ) throws -> ControlReply {
        let context = try Context()
        return try withExtendedLifetime(context) {
            let socket = try context.socket(.dealer)
            defer { socket.close() }
            try socket.setLinger(milliseconds: 0)
            try socket.connect(endpoint)
            let token = try ControlToken.read(path: ControlToken.path(state: state))
            try socket.send(Codec.frames(type, header, payload: token))
            let fired = try Poller.poll([PollItem(socket: socket, events: .readable)], timeoutMilliseconds: 120_000)
            guard fired[0].contains(.readable), let frames = try socket.receive(dontWait: true) else {
                throw CoordinatorError("no reply from the control socket")
            }
            return try Codec.parse(frames, maxHeaderBytes: WireLimits.maxControlBytes).decode(ControlReply.self)
        }
    }
}

extension Thread {
    /// Runs a blocking `body` on a new thread and awaits its value, leaving the cooperative pool
    /// free while it blocks.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Runs `body` on a new thread (a blocking loop must not hold a cooperative-pool thread);
    /// the task completes when it returns.
    static func detachedThread(_ body: @escaping @Sendable () -> Void) -> Task<Void, Never> {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        Thread {
            body()
            continuation.finish()
        }.start()
        return Task { for await _ in stream {} }
    }
}
