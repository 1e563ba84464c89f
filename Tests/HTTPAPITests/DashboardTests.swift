import Foundation
import Hummingbird
import HummingbirdTesting
import Reports
import Store
import SweepKit
import Testing
import Wire

@testable import HTTPAPI

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A real state database in a temporary directory, removed when released.
final class DashboardStore: Sendable {
    let path: String
    let store: SweepStore

    /// Sweeps: `plans`, each with every task succeeded on worker w1 (accuracy, latency and
    /// MACs that differ by model and method), except that `failing` tasks fail on worker w2.
    init(_ plans: [SweepPlan], failing: Set<String> = []) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-\(UUID().uuidString)").path
        store = try SweepStore(path: path + "/sparsegrid.db")
        var batch: [StoreMutation] = [
            .worker(id: "w1", host: "node1", info: ["slots": ["cpu", "cpu"]], seenAt: 1, state: "alive"),
            .worker(id: "w2", host: "node2", info: ["slots": ["cuda:0"]], seenAt: 1, state: "left"),
        ]
        var t = 10.0
        for plan in plans {
            _ = try store.launch(plan, now: 5)
            for (i, task) in plan.tasks.enumerated() {
                t += 10
                let attempt = "a-\(plan.name.count)-\(i)"
                let ok = !failing.contains(task.id)
                batch += [
                    .taskStarted(taskId: task.id, attemptsUsed: 1, at: t),
                    .attemptStarted(attemptId: attempt, taskId: task.id, workerId: ok ? "w1" : "w2", at: t),
                    .attemptEnded(
                        attemptId: attempt, outcome: ok ? .succeeded : .failed, at: t + 5, exitCode: ok ? 0 : 1,
                        error: ok ? nil : "engine exited 1", stderrTail: ok ? nil : "Traceback"),
                ]
                if ok {
                    let sparse = task.params["method"] != nil
                    let base = Double(i % 3)
                    let metrics: [String: Double?] = [
                        "accuracy": 90 - base - (sparse ? 1.5 : 0), "latency_ms": 10 + base - (sparse ? 3 : 0),
                        "latency_sparse_ms": sparse ? 5 + base : nil, "gmacs": 1.8 + base,
                        "gmacs_effective": sparse ? 0.9 + base : 1.8 + base, "weight_mib": 40,
                        "weight_compressed_mib": sparse ? 25 : 40, "peak_mib": 100,
                    ]
                    batch += [
                        .result(
                            taskId: task.id, attemptId: attempt, metrics: metrics, units: ["accuracy": "%"],
                            details: ["device": "cpu"], at: t + 5),
                        .taskState(taskId: task.id, state: .succeeded, error: nil, at: t + 5),
                    ]
                } else {
                    batch.append(.taskState(taskId: task.id, state: .failed, error: "engine exited 1", at: t + 5))
                }
            }
        }
        try store.apply(batch)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A two-stage sweep: `train` per model, then `finetune` per model and method.
    static func plan(
        _ name: String, models: [String] = ["resnet18", "mobilenet_v2"], methods: [String] = ["nm_2_4", "block_4x4"],
        reports: [ReportSpec] = []
    ) -> SweepPlan {
        var tasks: [PlannedTask] = []
        for model in models {
            tasks.append(
                PlannedTask(
                    id: "\(name)-train-\(model)", stage: "train", params: ["model": .string(model), "seed": 0],
                    inputs: [:], priority: 10))
        }
        for model in models {
            for method in methods {
                tasks.append(
                    PlannedTask(
                        id: "\(name)-finetune-\(model)-\(method)", stage: "finetune",
                        params: ["model": .string(model), "method": .string(method), "seed": 0],
                        inputs: ["train": "\(name)-train-\(model)"], priority: 5))
            }
        }
        return SweepPlan(
            name: name, engine: "sparsity", context: ["data": ["dataset": "synthetic"]], tasks: tasks, retries: 0,
            device: "cpu", reports: reports, specText: "name: \(name)\n")
    }

    func server(token: String? = nil) -> APIServer {
        APIServer(
            store: store, live: LiveStatusClosure { throw NoCoordinator() }, token: token, metricsText: { "" })
    }
}

/// Whether `text` is well-formed XML.
func isWellFormedXML(_ text: String) -> Bool {
    XMLParser(data: Data(text.utf8)).parse()
}

@Suite struct DashboardTests {
    static let hostile = "<img src=x onerror=alert(1)>"

    @Test func pageAndAssetsHaveTheirTypesAndHeaders() async throws {
        try await Application(router: makeServer().router()).test(.router) { client in
            for (uri, type) in [
                ("/", "text/html; charset=utf-8"), ("/app.js", "text/javascript; charset=utf-8"),
                ("/app.css", "text/css; charset=utf-8"),
            ] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .ok, "\(uri)")
                #expect(response.headers[.contentType] == type, "\(uri)")
                #expect(response.headers[.cacheControl] == "no-store", "\(uri)")
                #expect(
                    response.headers[.contentSecurityPolicy] == "default-src 'self'; img-src 'self' data:", "\(uri)")
                #expect(response.headers[.xContentTypeOptions] == "nosniff", "\(uri)")
                #expect(response.body.readableBytes > 500, "\(uri)")
            }
            let page = String(buffer: try await client.execute(uri: "/", method: .get).body)
            #expect(page.contains(#"<script src="app.js" defer></script>"#))
            #expect(page.contains(#"<link rel="stylesheet" href="app.css">"#))
            #expect(page.contains(#"id="nav-sweeps""#) && page.contains(#"id="nav-workers""#))
            #expect(page.contains(#"id="live""#))
            #expect(!page.contains("{{"))
            let script = String(buffer: try await client.execute(uri: "/app.js", method: .get).body)
            #expect(script == DashboardAssets.appJS)
        }
    }

    @Test func pageAndAssetsNeedTheToken() async throws {
        let token = "s3cret+token/0123456789="
        let dir = try DashboardStore([DashboardStore.plan("quick")])
        try await Application(router: dir.server(token: token).router()).test(.router) { client in
            let query = "token=s3cret%2Btoken%2F0123456789%3D"
            for uri in ["/", "/app.js", "/app.css", "/api/sweeps/quick/tables", "/api/sweeps/quick/figures/1.svg"] {
                let none = try await client.execute(uri: uri, method: .get)
                #expect(none.status == .unauthorized, "\(uri)")
                let wrong = try await client.execute(uri: uri + "?token=s3cret", method: .get)
                #expect(wrong.status == .unauthorized, "\(uri)")
                let ok = try await client.execute(uri: uri + "?" + query, method: .get)
                #expect(ok.status == .ok, "\(uri)")
                let header = try await client.execute(
                    uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"])
                #expect(header.status == .ok, "\(uri)")
            }
            // A browser sends no Authorization header for <script src>: the page links its assets
            // with the token, percent-encoded.
            let page = String(buffer: try await client.execute(uri: "/?" + query, method: .get).body)
            #expect(page.contains(#"<script src="app.js?\#(query)" defer></script>"#))
            #expect(page.contains(#"href="app.css?\#(query)""#))
        }
    }

    @Test func tablesAreTheReportJSONOfTheStoreRows() async throws {
        let custom = ReportSpec(title: "Accuracy only", rows: "model", columns: "method", values: ["accuracy"])
        let dir = try DashboardStore([
            DashboardStore.plan("plain"), DashboardStore.plan("custom", reports: [custom]),
        ])
        try await Application(router: dir.server().router()).test(.router) { client in
            let response = try await client.execute(uri: "/api/sweeps/plain/tables", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let text = String(buffer: response.body)
            let rows = try dir.store.resultRows(sweep: "plain")
            #expect(text == Reports.renderReport(sweep: "plain", rows: rows, specs: [], format: .json))
            let json = try JSONValue.parse(text)
            let tables = json["tables"]?.arrayValue ?? []
            // No report section: the default Table I and Table II.
            #expect(tables.map { $0["title"]?.stringValue ?? "" } == Reports.defaultSpecs.map(\.title))
            let first = try #require(tables.first)
            #expect(
                first["rows"]?.arrayValue?.compactMap { $0["label"]?.stringValue }.sorted() == [
                    "mobilenet_v2", "resnet18",
                ])
            #expect(text.contains("88.5"))  // resnet18 × nm_2_4: 90 - 0 - 1.5, as the report prints it

            let customJSON = body(try await client.execute(uri: "/api/sweeps/custom/tables", method: .get))
            #expect(customJSON["tables"]?.arrayValue?.map { $0["title"]?.stringValue ?? "" } == ["Accuracy only"])

            for uri in ["/api/sweeps/nope/tables", "/api/sweeps/nope/figures/1.svg"] {
                let missing = try await client.execute(uri: uri, method: .get)
                #expect(missing.status == .notFound, "\(uri)")
                #expect(body(missing)["error"]?.stringValue?.contains("no sweep named") == true, "\(uri)")
            }
        }
    }

    @Test func figuresAreTheReportsSVGs() async throws {
        let dir = try DashboardStore([DashboardStore.plan("quick")])
        try await Application(router: dir.server().router()).test(.router) { client in
            let expected = Reports.figures(sweep: "quick", rows: try dir.store.resultRows(sweep: "quick"))
            #expect(expected.count == 4)
            for n in 1...4 {
                let response = try await client.execute(uri: "/api/sweeps/quick/figures/\(n).svg", method: .get)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/svg+xml")
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                let svg = String(buffer: response.body)
                #expect(svg == expected[n - 1].svg)
                #expect(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
                #expect(isWellFormedXML(svg), "figure \(n)")
                #expect(svg.contains("resnet18") && svg.contains("mobilenet_v2"), "figure \(n)")
            }
            for bad in ["0.svg", "5.svg", "1.png", "1", "accuracy.svg", "11.svg", "%2e%2e"] {
                let response = try await client.execute(uri: "/api/sweeps/quick/figures/\(bad)", method: .get)
                #expect(response.status == .notFound, "\(bad)")
            }
        }
    }

    @Test func hostileNamesAreEscapedInFiguresAndTables() async throws {
        let hostile = Self.hostile
        let plan = DashboardStore.plan(hostile, models: [hostile, "resnet18"], methods: ["nm_2_4", "<b>m</b>"])
        let dir = try DashboardStore([plan])
        let path = "/api/sweeps/" + hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        try await Application(router: dir.server().router()).test(.router) { client in
            for n in 1...4 {
                let response = try await client.execute(uri: path + "/figures/\(n).svg", method: .get)
                #expect(response.status == .ok)
                let svg = String(buffer: response.body)
                #expect(!svg.contains("<img"), "figure \(n)")
                #expect(!svg.contains("<b>"), "figure \(n)")
                #expect(svg.contains("&lt;img src=x onerror=alert(1)&gt;"), "figure \(n)")
                #expect(isWellFormedXML(svg), "figure \(n)")
            }
            // JSON carries the name as a string the page writes with textContent.
            let tables = try await client.execute(uri: path + "/tables", method: .get)
            #expect(tables.status == .ok)
            let json = body(tables)
            #expect(json["sweep"]?.stringValue == hostile)
            let labels = json["tables"]?.arrayValue?.first?["rows"]?.arrayValue?.compactMap { $0["label"]?.stringValue }
            #expect(labels?.contains(hostile) == true)
        }
    }

    @Test func workersCountTheTasksTheyFinished() async throws {
        let plan = DashboardStore.plan("quick")
        let dir = try DashboardStore([plan], failing: ["quick-finetune-resnet18-nm_2_4"])
        try await Application(router: dir.server().router()).test(.router) { client in
            let json = body(try await client.execute(uri: "/api/workers", method: .get))
            let workers = json["workers"]?.arrayValue ?? []
            #expect(workers.map { $0["id"]?.stringValue ?? "" } == ["w1", "w2"])
            #expect(workers.first?["tasksDone"] == .number(Double(plan.tasks.count - 1)))
            #expect(workers.last?["tasksDone"] == 0)
            #expect(workers.last?["state"] == "left")
        }
    }

    /// A cheap guard on the script: no markup sinks, no code from strings, no inline script
    /// or style in the page (the CSP would block them anyway), and the hooks of the DOM
    /// contract (docs/api.md) are there.
    @Test func theScriptBuildsTheDOMWithoutMarkupSinks() {
        let script = DashboardAssets.appJS
        for sink in [
            "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
            "setTimeout('", "setTimeout(\"", "createContextualFragment", "DOMParser", "srcdoc",
        ] {
            #expect(!script.contains(sink), "\(sink)")
        }
        #expect(!script.contains("setAttribute('style'") && !script.contains("setAttribute(\"style\""))
        let page = DashboardAssets.indexHTML
        #expect(page.components(separatedBy: "<script").count == 2)
        #expect(!page.contains("<script>") && !page.contains("style=") && !page.contains(" on"))
        for asset in [DashboardAssets.indexHTML, DashboardAssets.appJS, DashboardAssets.appCSS] {
            #expect(!asset.contains("http://") || asset == DashboardAssets.appJS, "no external URL")
            #expect(!asset.contains("https://"))
            #expect(asset.split(separator: "\n").allSatisfy { $0.count <= 112 })
        }
        // The only http:// in the script is the SVG namespace.
        #expect(script.components(separatedBy: "http://").count == 2 && script.contains("http://www.w3.org/2000/svg"))
        for hook in [
            "dataset.view", "dataset.renders", "sparsegridEvents", "'data-sweep'", "'data-state'", "'data-task-id'",
            "'data-attempt-id'", "'data-worker-id'", "'data-series'", "'task-filter'", "'sweep-counts'", "'tables'",
            "'figures'", "'pareto'", "'frontier'", "'point'", "'curve'", "'params'", "'attempts'", "'artifacts'",
            "'workers'", "'sweep-link'", "'matrix'", "'eta'", "'rate'", "new EventSource(", "'no progress stored'",
        ] {
            #expect(script.contains(hook), "\(hook)")
        }
    }
}
