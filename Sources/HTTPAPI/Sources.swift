import Foundation
import Store
import SweepKit
import Wire

/// What the HTTP API reads from the state database: the same read-only queries as
/// `sparsegrid results` and `status`. Calls block (SQLite); the server makes them on NIO's
/// thread pool, never on an event loop.
public protocol APIStore: Sendable {
    func sweepSummaries() throws -> [SweepSummary]
    /// The rows `sparsegrid results --sweep NAME` lists.
    func resultRows(sweep: String) throws -> [ResultRow]
    /// One task's row, nil when there is no task with that id.
    func task(id: String) throws -> ResultRow?
    func attempts(task: String) throws -> [AttemptRow]
    /// The task's stored learning curves, attempts in start order (`SweepStore.curves`).
    func curves(task: String) throws -> [AttemptCurve]
    func workers() throws -> [WorkerRow]
    /// The sweep's `report:` section (empty: the default tables), what `sparsegrid report` renders.
    func reportSpecs(sweep: String) throws -> [ReportSpec]
    /// Worker id → attempts it ran to success.
    func succeededAttemptsByWorker() throws -> [String: Int]
}

extension SweepStore: APIStore {
    public func resultRows(sweep: String) throws -> [ResultRow] { try resultRows(sweep: sweep, stage: nil) }

    public func task(id: String) throws -> ResultRow? {
        try resultRows(sweep: nil, task: id).first
    }

    public func reportSpecs(sweep: String) throws -> [ReportSpec] { try plan(sweep: sweep)?.reports ?? [] }
}

/// The coordinator's live status: the reply to the control socket's status request (what
/// `sparsegrid status` shows). Blocks; the server calls it on NIO's thread pool. Throws when
/// the coordinator does not answer.
public protocol LiveStatusSource: Sendable {
    func liveStatus() throws -> LiveStatus
}

/// A `LiveStatusSource` from a closure (tests, and the CLI's control client).
public struct LiveStatusClosure: LiveStatusSource {
    let fetch: @Sendable () throws -> LiveStatus
    public init(_ fetch: @escaping @Sendable () throws -> LiveStatus) { self.fetch = fetch }
    public func liveStatus() throws -> LiveStatus { try fetch() }
}
