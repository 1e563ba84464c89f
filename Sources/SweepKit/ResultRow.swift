/// One task with its final outcome, as reports and `sparsegrid results` see it.
/// Built by Store queries; consumed by Reports. Plain values only.
public struct ResultRow: Codable, Sendable, Hashable {
    public var sweep: String
    public var stage: String
    public var taskId: String
    public var params: [String: JSONValue]
    public var state: TaskState
    /// Final metrics of the winning attempt (nil values: measured as not applicable, e.g.
    /// `latency_sparse_ms` where no sparse kernel ran). Empty unless succeeded.
    public var metrics: [String: Double?]
    /// Units / method of measurement per metric name, as the engine labelled them.
    public var units: [String: String]
    /// Everything else the engine reported (per-layer sparsity, device, dataset fingerprint…).
    public var details: JSONValue
    /// For failed tasks: the last attempt's error summary.
    public var error: String?
    public var attempts: Int
    /// Artifacts the task produced: name, sha256, bytes, path under the state directory.
    public var artifacts: [ArtifactRef]
    /// Unix seconds the winning attempt (the one whose result this row shows) started; nil
    /// when the task has no result or the time is unknown.
    public var startedAt: Double?
    /// Unix seconds the winning attempt finished; nil when unknown.
    public var finishedAt: Double?
    /// The device the winning attempt ran on ("cuda:0", "cpu"), as its worker reported; nil
    /// when not recorded (an older worker or store).
    public var device: String? = nil
    /// The most tasks that ran on that device at once while the winning attempt ran (itself
    /// included); nil when not recorded. More than 1: its latencies were measured on a shared
    /// device.
    public var tasksAtOnce: Int? = nil
    /// Task ids of the other attempts that ran on that device while it ran (capped); nil when
    /// not recorded.
    public var coTenants: [String]? = nil

    public init(
        sweep: String, stage: String, taskId: String, params: [String: JSONValue], state: TaskState,
        metrics: [String: Double?] = [:], units: [String: String] = [:], details: JSONValue = .null,
        error: String? = nil, attempts: Int = 0, artifacts: [ArtifactRef] = [],
        startedAt: Double? = nil, finishedAt: Double? = nil
    ) {
        self.sweep = sweep
        self.stage = stage
        self.taskId = taskId
        self.params = params
        self.state = state
        self.metrics = metrics
        self.units = units
        self.details = details
        self.error = error
        self.attempts = attempts
        self.artifacts = artifacts
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// The winning attempt shared its device with other tasks (its measurements, latencies
    /// above all, were taken on a shared device).
    public var measuredShared: Bool { (tasksAtOnce ?? 1) > 1 || !(coTenants ?? []).isEmpty }

    public var method: String { params["method"]?.stringValue ?? "dense" }
    public var model: String? { params["model"]?.stringValue }
    public var seed: Int? { params["seed"]?.intValue }
}

public struct ArtifactRef: Codable, Sendable, Hashable {
    public var name: String
    public var sha256: String
    public var bytes: Int64
    /// Absolute path of the canonical copy under the coordinator's state directory.
    public var path: String

    public init(name: String, sha256: String, bytes: Int64, path: String) {
        self.name = name
        self.sha256 = sha256
        self.bytes = bytes
        self.path = path
    }
}
