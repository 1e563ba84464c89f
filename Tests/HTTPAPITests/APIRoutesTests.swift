import Foundation
import Hummingbird
import HummingbirdTesting
import Reports
import Store
import SweepKit
import Synchronization
import Testing
import Wire

@testable import HTTPAPI

/// A state database of one sweep with two tasks (one succeeded after a failed attempt, one
/// running) and one worker.
struct StubStore: APIStore {
    static let done = ResultRow(
        sweep: "quick", stage: "train", taskId: "t-done", params: ["model": "resnet18", "seed": 1],
        state: .succeeded, metrics: ["accuracy": 0.91, "latency_sparse_ms": nil], attempts: 2,
        artifacts: [
            ArtifactRef(name: "model.pt", sha256: String(repeating: "ab", count: 32), bytes: 1234, path: "a/b")
        ],
        startedAt: 100, finishedAt: 160)
    static let running = ResultRow(
        sweep: "quick", stage: "train", taskId: "t-run", params: ["model": "resnet50", "seed": 1], state: .running)

    func sweepSummaries() throws -> [SweepSummary] {
        [
            SweepSummary(
                name: "quick", engine: "null", createdAt: 50, cancelled: false,
                counts: [.succeeded: 1, .running: 1], total: 2)
        ]
    }
    func resultRows(sweep: String) throws -> [ResultRow] { sweep == "quick" ? [Self.done, Self.running] : [] }
    func task(id: String) throws -> ResultRow? { [Self.done, Self.running].first { $0.taskId == id } }
    func attempts(task: String) throws -> [AttemptRow] {
        guard task == "t-done" else { return [] }
        return [
            AttemptRow(
                id: "a1", taskId: task, workerId: "w1", startedAt: 90, endedAt: 95, outcome: .failed, exitCode: 1,
                error: "engine exited 1", stderrTail: "Traceback: boom"),
            AttemptRow(
                id: "a2", taskId: task, workerId: "w1", startedAt: 100, endedAt: 160, outcome: .succeeded,
                exitCode: 0, error: nil, stderrTail: nil),
        ]
    }
    func curves(task: String) throws -> [AttemptCurve] { [] }
    func workers() throws -> [WorkerRow] {
        [WorkerRow(id: "w1", host: "node1", info: ["devices": ["cpu"]], firstSeen: 10, lastSeen: 200, state: "alive")]
    }
    func reportSpecs(sweep: String) throws -> [ReportSpec] { [] }
    func succeededAttemptsByWorker() throws -> [String: Int] { ["w1": 1] }
}

func stubStatus() -> LiveStatus {
    LiveStatus(
        now: 200, startedAt: 0,
        sweeps: [
            LiveStatus.SweepStatus(
                name: "quick", counts: ["succeeded": 1, "running": 1], total: 2, cancelled: false, waitingReason: nil,
                timing: LiveStatus.SweepTiming(
                    groups: [
                        .init(stage: "train", model: "resnet18", waiting: 0, runningElapsed: [], durations: [60]),
                        .init(stage: "train", model: "resnet50", waiting: 0, runningElapsed: [20], durations: []),
                    ], finishedInWindow: 1, window: 120))
        ],
        workers: [
            LiveStatus.WorkerStatus(
                id: "w1", host: "node1", slots: 2, alive: true, secondsSinceSeen: 0.5,
                running: [
                    LiveStatus.RunningAttempt(
                        attemptId: "a3", taskId: "t-run", label: "train resnet50 seed 1", startedAt: 180,
                        progress: ["epoch": 2, "epochs": 5, "loss": 0.75], sweep: "quick")
                ])
        ])
}

struct NoCoordinator: Error {}

func makeServer(token: String? = nil, live: Bool = true) -> APIServer {
    var server = APIServer(
        store: StubStore(),
        live: LiveStatusClosure {
            if !live { throw NoCoordinator() }
            return stubStatus()
        }, token: token, metricsText: { "# TYPE stub_total counter\nstub_total 3\n" })
    server.eventInterval = 0.05
    server.eventStreamSeconds = 0.3
    return server
}

func body(_ response: TestResponse) -> JSONValue { (try? JSONValue.parse(String(buffer: response.body))) ?? .null }

@Suite struct APIRoutesTests {
    @Test func sweepsListCountsAndETA() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            let response = try await client.execute(uri: "/api/sweeps", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let json = body(response)
            #expect(json["live"] == true)
            let sweep = json["sweeps"]?.arrayValue?.first
            #expect(sweep?["name"] == "quick")
            #expect(sweep?["counts"]?["succeeded"] == 1)
            #expect(sweep?["counts"]?["running"] == 1)
            #expect(sweep?["counts"]?["failed"] == 0)
            #expect(sweep?["total"] == 2)
            #expect(sweep?["perMinute"] == 0.5)
            // resnet50 has no finished task, but the stage borrows resnet18's 60 s: 40 s left.
            #expect(sweep?["eta"]?["state"] == "estimate")
            #expect(sweep?["eta"]?["seconds"] == 40)
        }
    }

    @Test func sweepsWithoutCoordinatorStillListTheDatabase() async throws {
        try await Application(router: makeServer(live: false).router()).test(.router) { client in
            let json = body(try await client.execute(uri: "/api/sweeps", method: .get))
            #expect(json["live"] == false)
            #expect(json["sweeps"]?.arrayValue?.first?["counts"]?["succeeded"] == 1)
            #expect(json["sweeps"]?.arrayValue?.first?["eta"] == .null)
        }
    }

    @Test func sweepHasTasksAndResultsAreTheCLIJSON() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            let sweep = body(try await client.execute(uri: "/api/sweeps/quick", method: .get))
            let tasks = sweep["tasks"]?.arrayValue ?? []
            #expect(tasks.count == 2)
            #expect(tasks.first?["id"] == "t-done")
            #expect(tasks.first?["metrics"]?["accuracy"] == 0.91)
            #expect(tasks.first?["metrics"]?["latency_sparse_ms"] == .null)
            #expect(tasks.first?["params"]?["model"] == "resnet18")

            let results = try await client.execute(uri: "/api/sweeps/quick/results", method: .get)
            #expect(results.status == .ok)
            let expected = try Reports.renderResults([StubStore.done, StubStore.running], format: .json)
            #expect(String(buffer: results.body) == expected)
        }
    }

    @Test func taskHasAttemptsArtifactsAndLiveProgress() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            let done = body(try await client.execute(uri: "/api/tasks/t-done", method: .get))
            let attempts = done["attemptList"]?.arrayValue ?? []
            #expect(attempts.count == 2)
            #expect(attempts.first?["outcome"] == "failed")
            #expect(attempts.first?["exitCode"] == 1)
            #expect(attempts.first?["stderrTail"] == "Traceback: boom")
            #expect(attempts.first?["worker"] == "w1")
            #expect(done["artifacts"]?.arrayValue?.first?["sha256"] == .string(String(repeating: "ab", count: 32)))

            let running = body(try await client.execute(uri: "/api/tasks/t-run", method: .get))
            let live = running["running"]?.arrayValue?.first
            #expect(live?["epoch"] == 2)
            #expect(live?["epochs"] == 5)
            #expect(live?["loss"] == 0.75)
            #expect(live?["elapsedSeconds"] == 20)
        }
    }

    @Test func taskCarriesItsStoredCurvesFromARealDatabase() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("httpapi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SweepStore(path: dir.appendingPathComponent("state/sparsegrid.db").path)
        let plan = SweepPlan(
            name: "quick", engine: "null", context: [:],
            tasks: [PlannedTask(id: "t-1", stage: "train", params: ["model": "resnet18"], inputs: [:], priority: 1)],
            retries: 1, device: "cpu", reports: [], specText: "name: quick\n")
        _ = try store.launch(plan, now: 100)
        try store.apply([
            .attemptStarted(attemptId: "a-1", taskId: "t-1", workerId: "w-0", at: 101),
            .attemptStarted(attemptId: "a-2", taskId: "t-1", workerId: "w-1", at: 102),
            .attemptStarted(attemptId: "a-3", taskId: "t-1", workerId: "w-1", at: 103),
            .curvePoint(
                attemptId: "a-1",
                point: CurvePoint(
                    epoch: 1, epochs: 3, step: 32, loss: 2.1, trainAcc: 12.5, testAcc: 14, lr: 0.01,
                    at: 1_764_530_101.25)),
            .curvePoint(attemptId: "a-3", point: CurvePoint(loss: 0.5, valAcc: 40, at: 7)),
            .curvePoint(attemptId: "a-1", point: CurvePoint(epoch: 2, epochs: 3, at: 1_764_530_102)),
        ])
        let server = APIServer(
            store: store, live: LiveStatusClosure { throw NoCoordinator() }, token: nil, metricsText: { "" })
        try await Application(router: server.router()).test(.router) { client in
            let response = try await client.execute(uri: "/api/tasks/t-1", method: .get)
            #expect(response.status == .ok)
            let curves = body(response)["curves"]?.arrayValue ?? []
            // a-2 has no points: no entry. a-1 before a-3 (start order).
            #expect(curves.count == 2)
            #expect(curves.first?["attemptId"] == "a-1")
            #expect(curves.first?["worker"] == "w-0")
            #expect(curves.first?["dropped"] == 0)
            let points = curves.first?["points"]?.arrayValue ?? []
            #expect(
                points == [
                    [
                        "epoch": 1, "epochs": 3, "step": 32, "loss": 2.1, "train_acc": 12.5, "test_acc": 14,
                        "val_acc": nil, "lr": 0.01, "at": 1_764_530_101.25,
                    ],
                    [
                        "epoch": 2, "epochs": 3, "step": nil, "loss": nil, "train_acc": nil, "test_acc": nil,
                        "val_acc": nil, "lr": nil, "at": 1_764_530_102,
                    ],
                ])
            #expect(curves.last?["attemptId"] == "a-3")
            #expect(curves.last?["points"]?.arrayValue?.first?["val_acc"] == 40)
            #expect(curves.last?["points"]?.arrayValue?.first?["epoch"] == .null)
            // The raw text carries the key with null, not an omitted key.
            #expect(String(buffer: response.body).contains("\"val_acc\":null"))

            let none = body(try await client.execute(uri: "/api/tasks/t-none", method: .get))
            #expect(none["error"]?.stringValue != nil)
        }
        // The stub's task without curves: an empty list, not a missing key.
        try await Application(router: makeServer().router()).test(.router) { client in
            let done = body(try await client.execute(uri: "/api/tasks/t-done", method: .get))
            #expect(done["curves"] == [])
        }
    }

    @Test func workersMergeDatabaseAndLiveStatus() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            let json = body(try await client.execute(uri: "/api/workers", method: .get))
            let worker = json["workers"]?.arrayValue?.first
            #expect(worker?["id"] == "w1")
            #expect(worker?["state"] == "alive")
            #expect(worker?["slots"] == 2)
            #expect(worker?["heartbeatAgeSeconds"] == 0.5)
            #expect(worker?["info"]?["devices"] == ["cpu"])
            #expect(worker?["tasksDone"] == 1)
            #expect(worker?["running"]?.arrayValue?.first?["taskId"] == "t-run")
        }
    }

    @Test func unknownNamesAndRoutesAre404JSON() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            for uri in [
                "/api/sweeps/nope", "/api/sweeps/nope/results", "/api/tasks/nope", "/api/nothing",
                "/api/sweeps/..%2F..%2Fetc%2Fpasswd", "/api/sweeps/" + String(repeating: "x", count: 300),
                "/api/tasks/%00",
            ] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .notFound, "\(uri)")
                #expect(body(response)["error"]?.stringValue != nil, "\(uri)")
            }
            let known = body(try await client.execute(uri: "/api/sweeps/nope", method: .get))
            #expect(known["error"]?.stringValue?.contains("\"quick\"") == true)
        }
    }

    @Test func tokenIsRequiredOnEveryRoute() async throws {
        let token = "s3cret-token-0123456789"
        try await Application(router: makeServer(token: token).router()).test(.router) { client in
            for uri in ["/api/sweeps", "/api/tasks/t-done", "/api/workers", "/api/events", "/metrics", "/api/nothing"] {
                let none = try await client.execute(uri: uri, method: .get)
                #expect(none.status == .unauthorized, "\(uri)")
                #expect(none.headers[.wwwAuthenticate] == "Bearer")
                let wrong = try await client.execute(
                    uri: uri, method: .get, headers: [.authorization: "Bearer s3cret-token-0123456788"])
                #expect(wrong.status == .unauthorized, "\(uri)")
                let prefix = try await client.execute(
                    uri: uri, method: .get, headers: [.authorization: "Bearer s3cret"])
                #expect(prefix.status == .unauthorized, "\(uri)")
            }
            let ok = try await client.execute(
                uri: "/api/sweeps", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(ok.status == .ok)
            let query = try await client.execute(uri: "/api/sweeps?token=\(token)", method: .get)
            #expect(query.status == .ok)
        }
    }

    @Test func metricsServeTheClosuresText() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(String(buffer: response.body) == "# TYPE stub_total counter\nstub_total 3\n")
        }
    }

    @Test func withoutARegistryMetricsIsA404SayingWhereItIsServed() async throws {
        let server = APIServer(
            store: StubStore(), live: LiveStatusClosure { stubStatus() }, token: nil, metricsText: nil)
        try await Application(router: server.router()).test(.router) { client in
            let response = try await client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .notFound)
            #expect(body(response)["error"]?.stringValue?.contains("sparsegrid coordinator --http") == true)
            // The rest of the API is there.
            #expect(try await client.execute(uri: "/api/sweeps", method: .get).status == .ok)
        }
    }

    @Test func eventsSendTheStatusOnceWhileUnchanged() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            let response = try await client.execute(uri: "/api/events", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let text = String(buffer: response.body)
            // The status does not change in the stub: one event however many looks.
            #expect(text.components(separatedBy: "event: status\n").count == 2)
            let data = text.components(separatedBy: "data: ").last?.components(separatedBy: "\n").first ?? ""
            let status = try Codec.decodeJSON(LiveStatus.self, from: Array(data.utf8))
            #expect(status.workers.first?.running.first?.taskId == "t-run")
        }
    }

    @Test func eventStreamsAreBounded() async throws {
        var server = makeServer()
        server.maxEventStreams = 0
        try await Application(router: server.router()).test(.router) { client in
            let response = try await client.execute(uri: "/api/events", method: .get)
            #expect(response.status == .serviceUnavailable)
        }
    }
}

@Suite struct HTTPServerConfigTests {
    @Test func offLoopbackNeedsAToken() throws {
        #expect(throws: HTTPConfigError.self) { try HTTPServerConfig.make(address: "0.0.0.0:8080", tokenFile: nil) }
        #expect(throws: HTTPConfigError.self) { try HTTPServerConfig.make(address: "[::]:8080", tokenFile: nil) }
        #expect(throws: HTTPConfigError.self) { try HTTPServerConfig.make(address: "10.0.0.5:0", tokenFile: nil) }
        #expect(throws: HTTPConfigError.self) { try HTTPServerConfig.make(address: "127.evil.com:80", tokenFile: nil) }
        let local = try HTTPServerConfig.make(address: "127.0.0.1:0", tokenFile: nil)
        #expect(local == HTTPServerConfig(host: "127.0.0.1", port: 0, token: nil))
        #expect(try HTTPServerConfig.make(address: "[::1]:9000", tokenFile: nil).host == "::1")
        #expect(try HTTPServerConfig.make(address: "localhost:9000", tokenFile: nil).token == nil)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("httpapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("token").path
        try "abcdefghijklmnop0123\n".write(toFile: good, atomically: true, encoding: .utf8)
        let remote = try HTTPServerConfig.make(address: "0.0.0.0:8080", tokenFile: good)
        #expect(remote.token == "abcdefghijklmnop0123")
        let short = dir.appendingPathComponent("short").path
        try "abc\n".write(toFile: short, atomically: true, encoding: .utf8)
        #expect(throws: HTTPConfigError.self) { try HTTPServerConfig.make(address: "0.0.0.0:8080", tokenFile: short) }
        #expect(throws: HTTPConfigError.self) {
            try HTTPServerConfig.make(address: "0.0.0.0:8080", tokenFile: dir.appendingPathComponent("missing").path)
        }
    }

    @Test func addressesAreChecked() {
        for bad in ["8080", "127.0.0.1", "127.0.0.1:70000", "127.0.0.1:-1", ":80", "a b:80", "::1:80", "[::1:80"] {
            #expect(throws: HTTPConfigError.self, "\(bad)") { try HTTPServerConfig.make(address: bad, tokenFile: nil) }
        }
    }

    @Test func constantTimeComparison() {
        let eq = TokenMiddleware<BasicRequestContext>.constantTimeEqual
        #expect(eq(Array("token".utf8), Array("token".utf8)))
        #expect(!eq(Array("toke".utf8), Array("token".utf8)))
        #expect(!eq(Array("tokens".utf8), Array("token".utf8)))
        #expect(!eq(Array("tokeN".utf8), Array("token".utf8)))
        #expect(!eq([], Array("token".utf8)))
    }
}

/// A live status source that counts its calls and fails or answers as told.
final class CountingSource: LiveStatusSource, @unchecked Sendable {
    private let lock = NSLock()
    private var calls = 0
    private var failing: Bool
    init(failing: Bool) { self.failing = failing }
    var count: Int { lock.withLock { calls } }
    func set(failing: Bool) { lock.withLock { self.failing = failing } }
    func liveStatus() throws -> LiveStatus {
        let fail = lock.withLock {
            calls += 1
            return failing
        }
        if fail { throw NoCoordinator() }
        return stubStatus()
    }
}

@Suite struct StatusCacheTests {
    @Test func aFailureIsRememberedLongerThanAStatus() async throws {
        // A clock the test moves: no sleeps, so a loaded machine cannot change the outcome.
        let clock = Mutex(0.0)
        let source = CountingSource(failing: true)
        let cache = StatusCache(source: source, maxAge: 0.3, failureMaxAge: 1.0) { clock.withLock { $0 } }
        func advance(_ seconds: Double) { clock.withLock { $0 += seconds } }
        for _ in 0..<5 { #expect(await cache.get() == nil) }
        #expect(source.count == 1)
        // Still within the failure's time: not asked again, even once it would answer.
        source.set(failing: false)
        advance(0.9)
        #expect(await cache.get() == nil)
        #expect(source.count == 1)
        // After it, asked again; a status is then reused only for maxAge.
        advance(0.2)
        #expect(await cache.get() != nil)
        #expect(source.count == 2)
        advance(0.25)
        #expect(await cache.get() != nil)
        #expect(source.count == 2)
        advance(0.1)
        #expect(await cache.get() != nil)
        #expect(source.count == 3)
    }

    @Test func concurrentRequestsShareOneFailedFetch() async throws {
        let source = CountingSource(failing: true)
        // A clock that stands still: on a loaded machine the eight tasks may start seconds apart,
        // and with the real clock the failure could age out between them (seen under load 15).
        let cache = StatusCache(source: source) { 0 }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = await cache.get() } }
        }
        #expect(source.count == 1)
        #expect(cache.failureMaxAge >= 2 && cache.failureMaxAge <= 10)
    }
}
