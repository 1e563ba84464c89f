import Foundation
import Store
import SweepKit
import Testing
import ZeroMQ

/// `sparsegrid dashboard`: the HTTP API and pages of a state directory, served by a process
/// of their own over the real database, read with the plain HTTP client of the API tests.
@Suite("Dashboard command", .serialized)
struct DashboardSystemTests {
    /// Starts `dashboard` with `arguments` and returns it with its port (from its
    /// "Dashboard: http://HOST:PORT/" line).
    static func startDashboard(_ arguments: [String], log: String) async throws -> (Process, HTTPProbe) {
        let process = try Harness.start(["dashboard"] + arguments, log: log)
        var port: Int? = nil
        do {
            try await Harness.waitFor("the dashboard to print its URL", timeout: 30) {
                guard let match = Harness.read(log).firstMatch(of: #/Dashboard: http://[^:/]+:(\d+)//#) else {
                    return false
                }
                port = Int(match.1)
                return true
            }
        } catch {
            Harness.kill9(process)
            throw HarnessError("\(error); its output: \(Harness.read(log).suffix(2000))")
        }
        return (process, HTTPProbe(port: port!))
    }

    /// Times one GET.
    static func timed(_ http: HTTPProbe, _ path: String) async throws -> (HTTPProbe.Reply, Double) {
        let start = Date()
        let reply = try await http.get(path)
        return (reply, Date().timeIntervalSince(start))
    }

    @Test("after run --no-http: the finished sweep from the database, fast although the coordinator is silent")
    func finishedSweep() async throws {
        let dir = Harness.tempDir("dash")
        let state = "\(dir)/state"
        let spec = try Harness.writeSpec(Harness.testSpec(name: "tiny", xs: [1, 2], trainParams: "sleep: 0"), in: dir)
        let ran = try await Harness.run(
            ["run", spec, "--state", state, "--workers", "1", "--engine", Harness.testEngine, "--plain", "--no-http"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(state)/control.token"))

        // The state directory names a coordinator whose process is alive (this test's) but whose
        // control address takes requests and never answers: a hung coordinator, the slowest
        // case. The silent socket counts the requests it gets.
        let hung = try SilentControl()
        defer { hung.stop() }
        let silent = hung.endpoint
        let info: [String: Any] = [
            "pid": Int(getpid()), "workerEndpoint": silent, "dataEndpoint": silent, "controlEndpoint": silent,
            "startedAt": Date().timeIntervalSince1970,
        ]
        try JSONSerialization.data(withJSONObject: info).write(to: URL(fileURLWithPath: "\(state)/coordinator.json"))

        let log = "\(dir)/dashboard.log"
        let (dashboard, http) = try await Self.startDashboard(["--state", state, "--http", "127.0.0.1:0"], log: log)
        defer { Harness.kill9(dashboard) }
        #expect(Harness.read(log).contains(try Regex(#"HTTP API: http://127\.0\.0\.1:\d+/api/sweeps"#)))

        let (page, pageTime) = try await Self.timed(http, "/")
        #expect(page.status == 200)
        #expect(page.headers.lowercased().contains("content-security-policy: default-src 'self'"), "\(page.headers)")
        #expect(page.body.contains("<script src=\"app.js"), "\(page.body.prefix(500))")
        #expect(pageTime < 10, "the page took \(pageTime) s")

        // Each route that asks for the live status answers after at most one short timeout (a
        // bound of 10 s: a sanity check on a loaded machine, not a benchmark). The failure is
        // remembered for 3 s, so six requests 0.6 s apart (longer than a status is reused) ask
        // the hung coordinator about once per 4 s (a 1 s timeout, then 3 s remembered), not six
        // times: counted on its socket, so the machine's speed does not decide.
        var sweeps: JSONValue = .null
        let started = Date()
        for path in ["/api/sweeps", "/api/sweeps/tiny", "/api/workers", "/api/sweeps", "/api/sweeps", "/api/sweeps"] {
            try await Task.sleep(nanoseconds: 600_000_000)
            let (reply, seconds) = try await Self.timed(http, path)
            #expect(reply.status == 200, "\(path): \(reply.body)")
            #expect(seconds < 10, "\(path) took \(seconds) s")
            if path == "/api/sweeps" { sweeps = try JSONValue.parse(reply.body) }
        }
        let span = Date().timeIntervalSince(started)
        let asked = hung.requests
        #expect(asked >= 1, "the dashboard never asked the coordinator")
        #expect(
            Double(asked) <= span / 4 + 1.5,
            "six requests in \(span) s asked the hung coordinator \(asked) times: the failure was not remembered")
        #expect(sweeps["live"] == false, "\(sweeps)")
        let tiny = try #require(sweeps["sweeps"]?.arrayValue?.first, "\(sweeps)")
        #expect(tiny["name"] == "tiny")
        #expect(tiny["total"] == 2)
        #expect(tiny["counts"]?["succeeded"] == 2, "\(tiny)")
        #expect(tiny["counts"]?["failed"] == 0)

        let sweep = try await http.json("/api/sweeps/tiny")
        let taskId = try #require(sweep["tasks"]?.arrayValue?.first?["id"]?.stringValue, "\(sweep)")
        let task = try await http.json("/api/tasks/\(taskId)")
        #expect(task["attemptList"]?.arrayValue?.last?["outcome"] == "succeeded", "\(task)")
        let workers = try await http.json("/api/workers")
        #expect(workers["live"] == false)
        #expect(workers["workers"]?.arrayValue?.first?["tasksDone"] == 2, "\(workers)")
        let results = try await http.get("/api/sweeps/tiny/results")
        let cli = try await Harness.run(["results", "tiny", "--state", state, "--format", "json"])
        #expect(results.body == cli.stdout)

        // No metrics registry in this process: a 404 that says where /metrics is served.
        let metrics = try await http.get("/metrics")
        #expect(metrics.status == 404)
        #expect(
            try JSONValue.parse(metrics.body)["error"]?.stringValue?.contains("sparsegrid coordinator --http") == true,
            "\(metrics.body)")

        let event = try await http.firstEvent("/api/events")
        #expect(event.contains("the coordinator does not answer"), "\(event)")

        // SIGTERM with an event stream open: the stream is ended, the process exits 0 at once,
        // without error lines.
        let stream = Task.detached {
            let start = Date()
            _ = try? HTTPProbe.exchange(port: http.port, "/api/events", headers: []) { _ in false }
            return Date().timeIntervalSince(start)
        }
        try await Task.sleep(nanoseconds: 500_000_000)
        let stopStart = Date()
        await Harness.stop(dashboard)
        #expect(Date().timeIntervalSince(stopStart) < 5)
        #expect(dashboard.terminationReason == .exit)
        #expect(dashboard.terminationStatus == 0, "\(Harness.read(log))")
        let streamSeconds = await stream.value
        #expect(streamSeconds < 8, "the open event stream was not ended")
        let output = Harness.read(log)
        #expect(output.contains("dashboard stopped"), "\(output)")
        #expect(!output.lowercased().contains("error"), "\(output)")
        // Read-only: the dashboard left the state directory's coordinator.json as it was.
        let kept = try JSONSerialization.jsonObject(
            with: FileManager.default.contents(atPath: "\(state)/coordinator.json") ?? Data())
        #expect((kept as? [String: Any])?["controlEndpoint"] as? String == silent)
    }

    @Test("a coordinator started without --http: live while it runs, the database once it stops, live again")
    func liveCoordinator() async throws {
        let dir = Harness.tempDir("dash-live")
        let state = "\(dir)/state"
        let coordinatorArguments = [
            "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
        ]
        let coordinator = try Harness.start(coordinatorArguments, log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        _ = try await Harness.coordinatorEndpoints(state)
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "held", xs: [1, 2, 3], trainParams: "sleep: 0"), in: dir)
        let launched = try await Harness.run(["launch", spec, "--state", state])
        #expect(launched.status == 0, "\(launched.stderr)")

        let log = "\(dir)/dashboard.log"
        let (dashboard, http) = try await Self.startDashboard(["--state", state, "--http", "127.0.0.1:0"], log: log)
        defer { Harness.kill9(dashboard) }
        let live = try await http.json("/api/sweeps")
        #expect(live["live"] == true, "\(live)")
        let held = try #require(live["sweeps"]?.arrayValue?.first, "\(live)")
        #expect(held["name"] == "held")
        #expect(held["counts"]?["ready"] == 3, "\(held)")
        // Live fields come from the coordinator: no worker has joined, so the ETA says so.
        #expect(held["eta"]?["state"] == "no_workers", "\(held)")
        let event = try await http.firstEvent("/api/events")
        #expect(event.contains("\"startedAt\""), "\(event)")

        // The coordinator stops: the pages fall back to the database within a few seconds.
        await Harness.stop(coordinator)
        try await Harness.waitFor("live: false once the coordinator stopped", timeout: 15) {
            try HTTPProbe.blockingJSON(port: http.port, "/api/sweeps")["live"] == false
        }
        let offline = try await http.json("/api/sweeps")
        #expect(offline["sweeps"]?.arrayValue?.first?["counts"]?["ready"] == 3, "\(offline)")

        // A coordinator started again on the same state directory (on other ports) is found.
        let again = try Harness.start(coordinatorArguments, log: "\(dir)/coordinator2.log")
        defer { Harness.kill9(again) }
        _ = try await Harness.coordinatorEndpoints(state)
        try await Harness.waitFor("live: true from the restarted coordinator", timeout: 15) {
            try HTTPProbe.blockingJSON(port: http.port, "/api/sweeps")["live"] == true
        }
        await Harness.stop(dashboard)
        #expect(dashboard.terminationStatus == 0, "\(Harness.read(log))")
        await Harness.stop(again)
    }

    @Test("refuses off loopback without a token file; a missing state directory or database is a clear error")
    func refusals() async throws {
        let dir = Harness.tempDir("dash-refuse")
        let state = "\(dir)/state"
        _ = try SweepStore(path: "\(state)/sparsegrid.db")

        let offLoopback = try await Harness.run(["dashboard", "--state", state, "--http", "0.0.0.0:0"], timeout: 30)
        #expect(offLoopback.status != 0)
        #expect(offLoopback.stderr.contains("--http-token-file"), "\(offLoopback.stderr)")
        #expect(!offLoopback.stdout.contains("Dashboard:"), "\(offLoopback.stdout)")

        let missing = try await Harness.run(["dashboard", "--state", "\(dir)/nowhere", "--http", "127.0.0.1:0"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("there is no state directory at \(dir)/nowhere"), "\(missing.stderr)")
        #expect(missing.stderr.contains("sparsegrid run SPEC --state \(dir)/nowhere"), "\(missing.stderr)")

        try FileManager.default.createDirectory(atPath: "\(dir)/empty", withIntermediateDirectories: true)
        let empty = try await Harness.run(["dashboard", "--state", "\(dir)/empty", "--http", "127.0.0.1:0"])
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("\(dir)/empty/sparsegrid.db"), "\(empty.stderr)")
        #expect(empty.stderr.contains("sparsegrid run SPEC"), "\(empty.stderr)")

        // With a token file it serves off loopback, and every request needs the token.
        let token = "t0k3n-\(UUID().uuidString)"
        let tokenFile = "\(dir)/http.token"
        try "\(token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let log = "\(dir)/dashboard.log"
        let (dashboard, http) = try await Self.startDashboard(
            ["--state", state, "--http", "0.0.0.0:0", "--http-token-file", tokenFile], log: log)
        defer { Harness.kill9(dashboard) }
        #expect(Harness.read(log).contains("?token=TOKEN"), "\(Harness.read(log))")
        for path in ["/", "/api/sweeps", "/metrics"] {
            #expect(try await http.get(path).status == 401, "\(path)")
        }
        let allowed = try await http.get("/api/sweeps", headers: ["Authorization: Bearer \(token)"])
        #expect(allowed.status == 200)
        #expect(try JSONValue.parse(allowed.body)["sweeps"] == [], "\(allowed.body)")
        await Harness.stop(dashboard, signal: SIGINT)
        #expect(dashboard.terminationStatus == 0, "\(Harness.read(log))")
    }
}

/// A control socket that takes every request and never answers (a hung coordinator), counting
/// the messages it gets, on a thread of its own.
final class SilentControl: @unchecked Sendable {
    private let context: Context
    private let socket: Socket
    private let lock = NSLock()
    private var count = 0
    private var stopped = false
    private var thread: Thread?
    let endpoint: String

    init() throws {
        context = try Context()
        socket = try context.socket(.router)
        try socket.setLinger(milliseconds: 0)
        try socket.setReceiveTimeout(milliseconds: 100)
        try socket.bind("tcp://127.0.0.1:*")
        endpoint = try socket.lastEndpoint
        let thread = Thread { [self] in
            while !lock.withLock({ stopped }) {
                if (try? socket.receive()) != nil { lock.withLock { count += 1 } }
            }
            socket.close()
        }
        self.thread = thread
        thread.start()
    }

    var requests: Int { lock.withLock { count } }

    func stop() { lock.withLock { stopped = true } }
}
