import Foundation
import Store
import SweepKit
import Testing

/// The coordinator's HTTP API over a real socket, read with a plain HTTP/1.1 client: a real
/// coordinator and worker run a short sweep while the test watches `/api/…`.
@Suite("HTTP API", .serialized)
struct HTTPAPISystemTests {
    @Test("coordinator --http: sweeps with counts that change, tasks with attempts, workers, events, /metrics")
    func liveAPI() async throws {
        let dir = Harness.tempDir("http")
        let state = "\(dir)/state"
        let (coordinator, endpoints, http) = try await HTTPProbe.startCoordinator(state: state, deadAfter: 5)
        defer { Harness.kill9(coordinator) }
        let port = http.port

        // Before any sweep: an empty list, the live status answers.
        let empty = try await http.json("/api/sweeps")
        #expect(empty["sweeps"] == [])
        #expect(empty["live"] == true)

        let worker = try HTTPProbe.startTestWorker("W1", coordinator: endpoints.workers, in: dir)
        defer { Harness.kill9(worker) }
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "web", xs: [1, 2, 3], trainParams: "sleep: 1.5, epochs: 3"), in: dir)
        let launched = try await Harness.run(["launch", spec, "--state", state])
        #expect(launched.status == 0, "\(launched.stderr)")

        // While the first task runs, nothing has succeeded yet; the live status (cached for
        // half a second) shows the worker and its running attempt.
        var early: JSONValue = .null
        var workers: JSONValue = .null
        try await Harness.waitFor("a running task in /api/sweeps and /api/workers") {
            early = try HTTPProbe.blockingJSON(port: port, "/api/sweeps")
            workers = try HTTPProbe.blockingJSON(port: port, "/api/workers")
            let running = workers["workers"]?.arrayValue?.first { $0["id"] == "W1" }?["running"]?.arrayValue ?? []
            return early["sweeps"]?.arrayValue?.first?["counts"]?["running"] == 1 && running.count == 1
        }
        let first = try #require(early["sweeps"]?.arrayValue?.first)
        #expect(first["name"] == "web")
        #expect(first["total"] == 3)
        #expect(first["counts"]?["succeeded"] == 0, "\(early)")

        // The worker, alive, with its slot and heartbeat age.
        let w1 = try #require(workers["workers"]?.arrayValue?.first { $0["id"] == "W1" }, "\(workers)")
        #expect(w1["state"] == "alive")
        #expect(w1["slots"] == 1, "\(workers)")
        #expect(w1["heartbeatAgeSeconds"]?.doubleValue != nil)
        #expect(w1["running"]?.arrayValue?.first?["sweep"] == "web")

        // Server-sent events: at least one `event: status` with the live status.
        let events = try await http.firstEvent("/api/events")
        #expect(events.contains("event: status\ndata: {"), "\(events)")
        #expect(events.contains("\"W1\""), "\(events)")

        // The counts change as tasks finish, without anything but the API being asked.
        var done: JSONValue = .null
        try await Harness.waitFor("every task to succeed in /api/sweeps", timeout: 90) {
            done = try HTTPProbe.blockingJSON(port: port, "/api/sweeps")
            return done["sweeps"]?.arrayValue?.first?["counts"]?["succeeded"] == 3
        }
        #expect(done["sweeps"]?.arrayValue?.first?["eta"]?["state"] == "done", "\(done)")

        // A sweep's tasks, then one task with its attempt.
        let sweep = try await http.json("/api/sweeps/web")
        let tasks = try #require(sweep["tasks"]?.arrayValue)
        #expect(tasks.count == 3)
        let taskId = try #require(tasks.first?["id"]?.stringValue)
        let task = try await http.json("/api/tasks/\(taskId)")
        let attempts = try #require(task["attemptList"]?.arrayValue, "\(task)")
        #expect(attempts.count >= 1)
        #expect(attempts.last?["worker"] == "W1")
        #expect(attempts.last?["outcome"] == "succeeded")
        #expect(attempts.last?["endedAt"]?.doubleValue != nil, "\(task)")

        // The learning curve of the attempt that succeeded: the test engine's progress events
        // (epochs 1..3 over 1.5 s, every 0.1 s, step counting up, loss 1/step), as stored.
        let attemptId = try #require(attempts.last?["id"]?.stringValue)
        let curves = try #require(task["curves"]?.arrayValue, "\(task)")
        let curve = try #require(curves.first { $0["attemptId"]?.stringValue == attemptId }, "\(task)")
        #expect(curve["worker"] == "W1")
        #expect(curve["dropped"] == 0)
        let points = try #require(curve["points"]?.arrayValue)
        let epochs = points.compactMap { $0["epoch"]?.intValue }
        let steps = points.compactMap { $0["step"]?.intValue }
        #expect(points.count >= 2 && epochs.count == points.count && steps.count == points.count, "\(curve)")
        #expect(
            epochs.first == 1 && epochs == epochs.sorted() && epochs.allSatisfy { (1...3).contains($0) }, "\(epochs)")
        #expect(steps == Array(1...steps.count), "arrival order: \(steps)")
        for point in points {
            #expect(point["epochs"] == 3)
            #expect(point["loss"]?.doubleValue == 1.0 / Double(point["step"]?.intValue ?? 0), "\(point)")
            #expect(point["lr"] == .null && point["test_acc"] == .null, "\(point)")
            let at = point["at"]?.doubleValue ?? 0
            let start = attempts.last?["startedAt"]?.doubleValue ?? .infinity
            let end = attempts.last?["endedAt"]?.doubleValue ?? 0
            #expect(at >= start && at <= end, "\(point) outside the attempt \(start)...\(end)")
        }

        // The results are `sparsegrid results --format json`, byte for byte.
        let results = try await http.get("/api/sweeps/web/results")
        let cli = try await Harness.run(["results", "web", "--state", state, "--format", "json"])
        #expect(results.status == 200)
        #expect(results.body == cli.stdout)

        // Unknown names: 404 with a JSON error.
        let missing = try await http.get("/api/sweeps/nope")
        #expect(missing.status == 404)
        #expect(try JSONValue.parse(missing.body)["error"]?.stringValue?.contains("nope") == true)
        #expect(try await http.get("/api/tasks/..%2F..%2Fsparsegrid.db").status == 404)

        let metrics = try await http.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers.lowercased().contains("content-type: text/plain; version=0.0.4"), "\(metrics.headers)")
        // The coordinator's own registry, not a stub: the finished sweep's tasks are counted.
        #expect(metrics.body.contains("# TYPE sparsegrid_tasks gauge"), "\(metrics.body)")
        #expect(metrics.body.contains("sparsegrid_build_info{version=\"0.5.0\"} 1"), "\(metrics.body)")
        #expect(metrics.body.contains("sparsegrid_attempts_total{outcome=\"succeeded\"}"), "\(metrics.body)")

        await Harness.stop(worker)
        await Harness.stop(coordinator)

        // With the coordinator gone, the curve is in the database file as the API showed it.
        let stored = try SweepStore.openReadOnly(path: "\(state)/sparsegrid.db").curves(task: taskId)
        #expect(stored.first { $0.attemptId == attemptId }?.points.map(\.step) == steps)
        #expect(stored.count == curves.count)
    }

    @Test("off loopback: refused without a token file; with one, every request needs the token")
    func tokenOffLoopback() async throws {
        let dir = Harness.tempDir("http-token")
        let refused = try await Harness.run(
            [
                "coordinator", "--state", "\(dir)/a", "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                "--http", "0.0.0.0:0",
            ], timeout: 30)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--http-token-file"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/a/coordinator.json"))

        let stray = try await Harness.run(
            ["coordinator", "--state", "\(dir)/a", "--http-token-file", "\(dir)/none"], timeout: 30)
        #expect(stray.status != 0)
        #expect(stray.stderr.contains("--http-token-file goes with --http"), "\(stray.stderr)")

        let token = "t0k3n-\(UUID().uuidString)"
        let tokenFile = "\(dir)/http.token"
        try "\(token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let log = "\(dir)/coordinator.log"
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", "\(dir)/b", "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                "--http", "0.0.0.0:0", "--http-token-file", tokenFile,
            ],
            log: log)
        defer { Harness.kill9(coordinator) }
        let http = HTTPProbe(port: try await HTTPProbe.port(inLog: log))
        for path in ["/api/sweeps", "/api/workers", "/metrics", "/api/events"] {
            #expect(try await http.get(path).status == 401, "\(path)")
            #expect(try await http.get(path, headers: ["Authorization: Bearer \(token)x"]).status == 401, "\(path)")
        }
        #expect(try await http.get("/api/sweeps", headers: ["Authorization: Bearer \(token)"]).status == 200)
        #expect(try await http.get("/api/sweeps?token=\(token)").status == 200)
        let events = try await http.firstEvent("/api/events?token=\(token)")
        #expect(events.contains("event: status"), "\(events)")
        await Harness.stop(coordinator)
    }

    @Test("run prints the URL of its HTTP API; --no-http serves none")
    func runPrintsURL() async throws {
        let dir = Harness.tempDir("http-run")
        let spec = try Harness.writeSpec(Harness.testSpec(name: "one", xs: [1], trainParams: "sleep: 0"), in: dir)
        let out = try await Harness.run(
            ["run", spec, "--state", "\(dir)/s", "--workers", "1", "--engine", Harness.testEngine, "--plain"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.contains(try Regex(#"HTTP API: http://127\.0\.0\.1:\d+/api/sweeps"#)), "\(out.stdout)")
        let off = try await Harness.run(
            [
                "run", spec, "--state", "\(dir)/s2", "--workers", "1", "--engine", Harness.testEngine, "--plain",
                "--no-http",
            ])
        #expect(off.status == 0, "\(off.stderr)")
        #expect(!off.stdout.contains("HTTP API"), "\(off.stdout)")
    }
}

/// A plain HTTP/1.1 client over a POSIX socket (no library between the test and the server),
/// blocking calls made off the cooperative pool.
struct HTTPProbe {
    let port: Int

    struct Reply {
        var status: Int
        var headers: String
        var body: String
    }

    /// A real coordinator on `state` with its HTTP server on a free loopback port (its log in
    /// the state directory's parent), its socket addresses, and a client for its HTTP port.
    static func startCoordinator(state: String, deadAfter: Int, extra: [String] = []) async throws -> (
        Process, (workers: String, control: String), HTTPProbe
    ) {
        let log = URL(fileURLWithPath: state).deletingLastPathComponent().appendingPathComponent("coordinator.log").path
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                "--heartbeat", "0.2", "--dead-after", String(deadAfter), "--http", "127.0.0.1:0",
            ] + extra,
            log: log)
        do {
            let endpoints = try await Harness.coordinatorEndpoints(state)
            return (coordinator, endpoints, HTTPProbe(port: try await port(inLog: log)))
        } catch {
            Harness.kill9(coordinator)
            throw error
        }
    }

    /// A worker with one slot and the test engine only, its cache and log in `dir`.
    static func startTestWorker(_ id: String, coordinator: String, in dir: String) throws -> Process {
        try Harness.start(
            [
                "worker", "--coordinator", coordinator, "--id", id, "--cache", "\(dir)/\(id)",
                "--drain-grace", "0", "--engine", Harness.testEngine, "--only", "test",
            ],
            log: "\(dir)/\(id).log")
    }

    /// The port of the "HTTP API on http://HOST:PORT/…" line the coordinator prints.
    static func port(inLog log: String) async throws -> Int {
        var port: Int? = nil
        try await Harness.waitFor("the coordinator to print its HTTP address", timeout: 30) {
            let text = Harness.read(log)
            guard let match = text.firstMatch(of: #/HTTP API on +http://[^:/]+:(\d+)/#) else { return false }
            port = Int(match.1)
            return true
        }
        return port!
    }

    func get(_ path: String, headers: [String] = []) async throws -> Reply {
        let port = self.port
        return try await offPool { try Self.request(port: port, path, headers: headers) }
    }

    func json(_ path: String) async throws -> JSONValue {
        let reply = try await get(path)
        guard reply.status == 200 else { throw HarnessError("GET \(path): \(reply.status) \(reply.body)") }
        return try JSONValue.parse(reply.body)
    }

    static func blockingJSON(port: Int, _ path: String) throws -> JSONValue {
        let reply = try request(port: port, path)
        guard reply.status == 200 else { throw HarnessError("GET \(path): \(reply.status) \(reply.body)") }
        return try JSONValue.parse(reply.body)
    }

    /// Reads an event stream until its first `event:` block is complete (or 10 s pass).
    func firstEvent(_ path: String) async throws -> String {
        let port = self.port
        return try await offPool {
            try Self.exchange(port: port, path, headers: []) { text in
                guard let start = text.range(of: "event: ") else { return false }
                return text[start.upperBound...].contains("\n\n")
            }
        }
    }

    private func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    static func request(port: Int, _ path: String, headers: [String] = []) throws -> Reply {
        let raw = try exchange(port: port, path, headers: headers) { _ in false }
        guard let split = raw.range(of: "\r\n\r\n") else { throw HarnessError("no HTTP head in: \(raw.prefix(500))") }
        let head = String(raw[..<split.lowerBound])
        var body = String(raw[split.upperBound...])
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        if head.lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return Reply(status: status, headers: head, body: body)
    }

    /// Decodes a chunked body (sizes in hex, each chunk followed by CRLF).
    static func dechunk(_ text: String) -> String {
        var bytes = Array(text.utf8)[...]
        var out: [UInt8] = []
        while let crlf = bytes.firstIndex(of: UInt8(ascii: "\r")),
            let size = Int(String(decoding: bytes[bytes.startIndex..<crlf], as: UTF8.self), radix: 16), size > 0
        {
            let start = crlf + 2
            guard start + size <= bytes.endIndex else { break }
            out += bytes[start..<start + size]
            bytes = bytes[min(start + size + 2, bytes.endIndex)...]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Sends one GET (Connection: close) and reads until the server closes, `enough` says
    /// so, or 10 s pass.
    static func exchange(port: Int, _ path: String, headers: [String], enough: (String) -> Bool) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw HarnessError("connect to 127.0.0.1:\(port): errno \(errno)") }
        let request =
            (["GET \(path) HTTP/1.1", "Host: 127.0.0.1:\(port)", "Connection: close"] + headers).joined(
                separator: "\r\n")
            + "\r\n\r\n"
        let sent = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, 0) }
        guard sent == request.utf8.count else { throw HarnessError("send: errno \(errno)") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
            if received.count > 8 << 20 { break }
            if enough(String(decoding: received, as: UTF8.self)) { break }
        }
        return String(decoding: received, as: UTF8.self)
    }
}
