import Foundation
import SweepKit
import Testing

/// The dashboard in real headless Chromium (Debian's `chromium`, driven through
/// `chromedriver`): a real coordinator serves it while a real worker runs a short sweep. The
/// page must show the sweep appear and its counts change without a reload, a task's learning
/// curve, the workers; a screenshot of each view is kept as a test artifact. The JSON API and
/// `/metrics` are read with a plain HTTP client in the same run.
@Suite(
    "The dashboard in headless Chromium", .serialized,
    .enabled(if: WebDriver.missing == nil, "\(WebDriver.missing ?? "")"))
struct DashboardBrowserTests {
    /// Where screenshots go: $SPARSEGRID_TEST_ARTIFACTS, else .build/test-artifacts.
    static let artifacts: String =
        ProcessInfo.processInfo.environment["SPARSEGRID_TEST_ARTIFACTS"]
        ?? "\(Harness.repoRoot)/.build/test-artifacts"

    @Test("sweeps, a sweep, a task with its learning curve and the workers, live, in Chromium")
    func liveDashboard() async throws {
        let dir = Harness.tempDir("browser")
        let state = "\(dir)/state"
        let (coordinator, endpoints, http) = try await HTTPProbe.startCoordinator(state: state, deadAfter: 10)
        defer { Harness.kill9(coordinator) }
        let base = "http://127.0.0.1:\(http.port)/"

        let browser = try await WebDriver.start(log: "\(dir)/chromedriver.log")
        defer { Harness.kill9(browser.process) }

        // The sweeps view, open before anything is launched.
        try await browser.open(base + "#/")
        try await browser.waitFor("the sweeps view", "return document.body.dataset.view || null") { $0 == "sweeps" }
        _ = try await browser.script("window.sparsegridMarker = 'no reload'; return true")

        let worker = try HTTPProbe.startTestWorker("W1", coordinator: endpoints.workers, in: dir)
        defer { Harness.kill9(worker) }
        let spec = try Harness.writeSpec(
            """
            name: web
            engine: test
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
              model: [resnet18, resnet50, densenet121]
              method: [dense, nm_2_4]
            stages:
              train:
                params: {sleep: 1.5, epochs: 3, artifact_bytes: 4096}
            retries: 1
            """, in: dir)
        #expect(try await Harness.run(["launch", spec, "--state", state]).status == 0)

        // The sweep appears and its succeeded count rises, without a reload.
        let counts = """
            const s = document.querySelector('section.sweep[data-sweep="web"]');
            if (!s) return null;
            const n = (k) => Number(s.querySelector('.count[data-state="' + k + '"]').textContent);
            return {succeeded: n('succeeded'), running: n('running'), events: window.sparsegridEvents,
                    cells: s.querySelectorAll('table.matrix td[data-task-id]').length,
                    marker: window.sparsegridMarker || null};
            """
        let first = try await browser.waitFor("the sweep in the sweeps view", counts) {
            $0["cells"] == 6 && ($0["succeeded"]?.doubleValue ?? 9) < 6
        }
        let seen = first["succeeded"]?.doubleValue ?? 0
        let later = try await browser.waitFor("the succeeded count to rise", timeout: 120, counts) {
            ($0["succeeded"]?.doubleValue ?? 0) > seen
        }
        #expect(later["marker"] == "no reload", "the page reloaded: \(later)")
        #expect((later["events"]?.doubleValue ?? 0) >= 2, "\(later)")
        try await save(browser, "dashboard-sweeps.png")

        // Every task done, still the same page.
        let done = try await browser.waitFor("all six tasks to succeed", timeout: 120, counts) {
            $0["succeeded"] == 6
        }
        #expect(done["marker"] == "no reload")

        // The sweep view: counts, the report's tables and figures, the Pareto view, the tasks.
        try await browser.open(base + "#/sweeps/web")
        let sweep = try await browser.waitFor(
            "the sweep view",
            """
            if (document.body.dataset.view !== 'sweep') return null;
            const c = document.querySelector('#sweep-counts .count[data-state="succeeded"]');
            return {succeeded: c ? Number(c.textContent) : null,
                    rows: document.querySelectorAll('#tasks table tr[data-task-id]').length,
                    figures: document.querySelectorAll('#figures img, #figures svg').length,
                    pareto: document.querySelectorAll('#pareto svg').length,
                    points: document.querySelectorAll('#pareto circle.point').length,
                    tables: document.querySelectorAll('#tables table').length};
            """
        ) { $0["succeeded"] == 6 && $0["rows"] == 6 }
        #expect(sweep["pareto"] == 2, "\(sweep)")
        #expect((sweep["figures"]?.doubleValue ?? 0) >= 1, "\(sweep)")
        try await save(browser, "dashboard-sweep.png")

        // A task: its attempt and its learning curve, from the stored progress.
        let detail = try await http.json("/api/sweeps/web")
        let taskId = try #require(detail["tasks"]?.arrayValue?.first?["id"]?.stringValue)
        try await browser.open(base + "#/tasks/" + taskId)
        let task = try await browser.waitFor(
            "the task view with a learning curve",
            """
            if (document.body.dataset.view !== 'task') return null;
            const loss = document.querySelector('#curves svg.curve polyline[data-series="loss"]');
            const pairs = loss ? loss.getAttribute('points').trim().split(/\\s+/).length : 0;
            return {pairs: pairs, attempts: document.querySelectorAll('#attempts tr[data-attempt-id]').length,
                    artifacts: document.querySelectorAll('#artifacts tr').length};
            """
        ) { ($0["pairs"]?.doubleValue ?? 0) >= 3 }
        #expect(task["attempts"] == 1, "\(task)")
        #expect((task["artifacts"]?.doubleValue ?? 0) >= 1, "\(task)")
        // The points drawn are the points stored.
        let stored = try await http.json("/api/tasks/\(taskId)")
        let points = stored["curves"]?.arrayValue?.first?["points"]?.arrayValue ?? []
        #expect(points.count >= 3, "\(stored)")
        #expect(task["pairs"]?.doubleValue == Double(points.count), "drawn \(task), stored \(points.count)")
        _ = try await browser.script("document.querySelector('#curves').scrollIntoView(); return true")
        try await save(browser, "dashboard-task.png")

        // The workers.
        try await browser.open(base + "#/workers")
        let workers = try await browser.waitFor(
            "the workers view",
            """
            if (document.body.dataset.view !== 'workers') return null;
            const row = document.querySelector('#workers tr[data-worker-id="W1"]');
            return row ? {state: row.querySelector('td.state').textContent.trim()} : null;
            """
        ) { $0["state"] == "alive" }
        #expect(workers["state"] == "alive")
        try await save(browser, "dashboard-workers.png")
        await browser.quit()

        // The same run through a plain HTTP client: the API and the metrics agree with the page.
        let sweeps = try await http.json("/api/sweeps")
        #expect(sweeps["sweeps"]?.arrayValue?.first?["counts"]?["succeeded"] == 6, "\(sweeps)")
        let metrics = try await http.get("/metrics")
        #expect(metrics.status == 200)
        #expect(
            metrics.body.contains(try Regex(#"\nsparsegrid_tasks\{state="succeeded"\} 6(\.0)?\n"#)), "\(metrics.body)")
        let page = try await http.get("/")
        #expect(page.status == 200)
        #expect(page.headers.lowercased().contains("content-security-policy: default-src 'self'"), "\(page.headers)")

        await Harness.stop(worker)
        await Harness.stop(coordinator)
    }

    @Test("a token with + / = pasted raw into ?token= opens the dashboard and its live stream")
    func tokenWithPlus() async throws {
        let dir = Harness.tempDir("browser-token")
        let state = "\(dir)/state"
        // A base64-looking token: `+` is the character URLSearchParams would turn into a space.
        let token = "ab+cd/ef=gh+ij/kl=mn+op"
        let tokenFile = "\(dir)/http.token"
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let (coordinator, _, http) = try await HTTPProbe.startCoordinator(
            state: state, deadAfter: 10, extra: ["--http-token-file", tokenFile])
        defer { Harness.kill9(coordinator) }

        let browser = try await WebDriver.start(log: "\(dir)/chromedriver.log")
        defer { Harness.kill9(browser.process) }
        // Raw, as a user pastes it; the server itself takes the `+` literally.
        try await browser.open("http://127.0.0.1:\(http.port)/?token=\(token)#/")
        let page = try await browser.waitFor(
            "the sweeps view, loaded with the token",
            """
            const live = document.getElementById('live');
            const error = document.getElementById('load-error');
            if (error) return {error: error.textContent};
            if (document.body.dataset.view !== 'sweeps' || !live || live.textContent !== 'live') return null;
            return {view: document.body.dataset.view, live: live.textContent};
            """
        ) { $0["error"] != nil || $0["view"] != nil }
        #expect(page["error"] == nil, "the dashboard refused its own token: \(page)")
        #expect(page["view"] == "sweeps" && page["live"] == "live", "\(page)")
        await browser.quit()
        await Harness.stop(coordinator)
    }

    /// Saves a screenshot under `artifacts` and checks it is a real, non-trivial PNG.
    private func save(_ browser: WebDriver, _ name: String) async throws {
        let png = try await browser.screenshot()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "not a PNG")
        #expect(png.count > 10_000, "a \(png.count)-byte screenshot is blank")
        try FileManager.default.createDirectory(atPath: Self.artifacts, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: "\(Self.artifacts)/\(name)"))
    }
}
