import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Reports
import Store
import SweepKit
import Wire

/// The coordinator's HTTP server: the JSON API under `/api/` (docs/api.md), server-sent
/// events of the live status, `/metrics`, and the browser dashboard at `/`. It holds no state of its own: sweeps, tasks and
/// attempts come from the state database (`APIStore`), live progress and workers from the
/// coordinator's status reply (`LiveStatusSource`), both read on NIO's thread pool.
public struct APIServer: Sendable {
    public let store: any APIStore
    public let live: any LiveStatusSource
    /// The Prometheus text of `/metrics`; nil where there is no coordinator's registry in this
    /// process (`sparsegrid dashboard`): then `/metrics` is a 404 saying where it is served.
    public let metricsText: (@Sendable () async -> String)?
    public let token: String?
    /// Seconds between looks at the live status on an event stream.
    public var eventInterval: Double = 1
    /// How long one event stream lasts before the server ends it (EventSource reconnects).
    public var eventStreamSeconds: Double = 600
    /// Event streams open at once; more are answered 503.
    public var maxEventStreams = 32

    let statusCache: StatusCache
    let streams: StreamCounter

    public init(
        store: any APIStore, live: any LiveStatusSource, token: String?,
        metricsText: (@Sendable () async -> String)?
    ) {
        self.store = store
        self.live = live
        self.token = token
        self.metricsText = metricsText
        self.statusCache = StatusCache(source: live)
        self.streams = StreamCounter()
    }

    /// The routes behind the token check.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: APIErrorMiddleware())
        router.add(middleware: TokenMiddleware(token: token))
        router.get("/api/sweeps") { _, _ in try await json(self.sweeps()) }
        router.get("/api/sweeps/:name") { _, context in
            try await json(self.sweep(try Self.pathName(context, "name")))
        }
        router.get("/api/sweeps/:name/results") { _, context in
            let name = try Self.pathName(context, "name")
            return try await Self.response(.ok, self.results(name), contentType: "application/json")
        }
        router.get("/api/tasks/:id") { _, context in try await json(self.task(try Self.pathName(context, "id"))) }
        router.get("/api/workers") { _, _ in try await json(self.workers()) }
        addDashboard(to: router)
        router.get("/api/events") { _, _ in try self.events() }
        router.get("/metrics") { _, _ in
            guard let metricsText = self.metricsText else { throw Self.noMetrics }
            return Self.response(.ok, await metricsText(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        return router
    }

    /// The server as a service (run it in a ServiceGroup or with `runService()`). `onBound` is
    /// told the port it listens on (the free one chosen when `config.port` is 0).
    public static func application(
        _ server: APIServer, config: HTTPServerConfig, logger: Logger? = nil,
        onBound: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        var quiet = Logger(label: "sparsegrid.http")
        quiet.logLevel = .warning
        return Application(
            router: server.router(),
            configuration: ApplicationConfiguration(address: .hostname(config.host, port: config.port)),
            onServerRunning: { channel in await onBound(channel.localAddress?.port ?? config.port) },
            logger: logger ?? quiet)
    }

    /// `/metrics` of a server without a metrics registry (`sparsegrid dashboard`).
    static let noMetrics = APIError(
        .notFound,
        "/metrics is served by the coordinator (`sparsegrid coordinator --http HOST:PORT`), whose process "
            + "holds the counters; `sparsegrid dashboard` reads only the state directory and has none")

    // MARK: Names in paths

    /// The longest sweep name or task id taken from a path.
    public static let maxNameLength = 200

    /// A path parameter, percent-decoded, checked: at most `maxNameLength` characters, no
    /// control characters and no '/'. It is only ever a query parameter, never a file path.
    static func pathName(_ context: BasicRequestContext, _ key: String) throws -> String {
        let raw = try context.parameters.require(key)
        guard raw.utf8.count <= maxNameLength * 3, let name = raw.removingPercentEncoding ?? Optional(raw),
            !name.isEmpty, name.count <= maxNameLength,
            !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" })
        else {
            throw APIError(.notFound, "no such \(key == "id" ? "task" : "sweep") (the name is not a valid one)")
        }
        return name
    }

    // MARK: Reading

    /// A blocking read, on NIO's thread pool.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await NIOThreadPool.singleton.runIfActive(body)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.internalServerError, "cannot read the state database: \(error)")
        }
    }

    /// The live status, or nil when the coordinator does not answer.
    func liveStatus() async -> LiveStatus? { await statusCache.get() }

    static func response(_ status: HTTPResponse.Status, _ text: String, contentType: String) -> Response {
        Response(
            status: status, headers: [.contentType: contentType, .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    APIServer.response(status, value.canonicalText + "\n", contentType: "application/json")
}

/// An error the API answers with `{"error": "..."}` and its status.
public struct APIError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}

/// Every error becomes a JSON body `{"error": "…"}`: unknown routes (404), a missing or wrong
/// token (401), an unreachable coordinator (503).
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            var response = json(["error": .string(error.message)], status: error.status)
            if error.status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
            return response
        } catch let error as HTTPResponseError {
            let status = error.status
            let message = status == .notFound ? "not found: \(String(request.uri.path.prefix(200)))" : "\(status)"
            return json(["error": .string(message)], status: status)
        }
    }
}

/// Requires the token on every request when there is one: `Authorization: Bearer TOKEN`, or
/// `?token=TOKEN` (EventSource cannot set headers). Compared in constant time.
struct TokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]?
    init(token: String?) { self.token = token.map { Array($0.utf8) } }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let token else { return try await next(request, context) }
        var given: Substring? = nil
        if let header = request.headers[.authorization], header.count <= 8192 {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { given = parts[1] }
        }
        if given == nil, let query = request.uri.queryParameters.get("token") { given = Substring(query) }
        guard let given, Self.constantTimeEqual(Array(given.utf8), token) else {
            throw APIError(
                .unauthorized,
                "this server needs its access token: send `Authorization: Bearer TOKEN` (or ?token=TOKEN for EventSource)"
            )
        }
        return try await next(request, context)
    }

    /// True when `given` equals `expected`; the time taken depends only on `expected`'s length.
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference = given.count == expected.count ? 0 : 1
        for i in 0..<expected.count {
            let g = i < given.count ? given[i] : 0
            difference |= Int(g ^ expected[i])
        }
        return difference == 0
    }
}
