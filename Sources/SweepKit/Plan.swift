import Foundation

/// States of a task (a cell of the sweep at one stage). Persisted as the raw value.
///
/// pending → ready (its inputs succeeded) → running → succeeded | failed, and back to
/// ready when an attempt is lost or fails with retries left. `cancelled` is set by the user.
public enum TaskState: String, Codable, Sendable, CaseIterable {
    case pending      // waiting for the tasks it consumes
    case ready        // runnable, in the queue
    case running      // an attempt is assigned
    case succeeded
    case failed       // retries exhausted, invalid task, or an input failed
    case cancelled

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// How one attempt (one run of a task on one worker) ended.
public enum AttemptOutcome: String, Codable, Sendable, CaseIterable {
    case running
    case succeeded
    case failed       // the engine reported failure or exited non-zero
    case invalid      // the engine said the task itself is invalid (exit 2): never retried
    case lost         // its worker went silent or disconnected
    case cancelled    // cancelled by the user or because another attempt won
    case duplicate    // a result arrived after another attempt's result was stored
}

/// One task of a sweep plan: what the coordinator stores and a worker's engine runs.
public struct PlannedTask: Codable, Sendable, Hashable {
    /// Content hash (hex SHA-256) of (sweep name, stage, resolved parameters, input ids).
    public var id: String
    public var stage: String
    /// The resolved parameters: grid values (model, seed, method, …) and the stage's params.
    public var params: [String: JSONValue]
    /// Ids of the tasks whose artifacts this task consumes (DAG edges), keyed by their stage.
    public var inputs: [String: String]
    /// Higher runs first among ready tasks (earlier stages get higher priority).
    public var priority: Int

    public init(id: String, stage: String, params: [String: JSONValue], inputs: [String: String], priority: Int) {
        self.id = id
        self.stage = stage
        self.params = params
        self.inputs = inputs
        self.priority = priority
    }

    /// The parameter most reports pivot on; the train stage's is "dense".
    public var method: String { params["method"]?.stringValue ?? "dense" }
    public var model: String? { params["model"]?.stringValue }
    public var seed: Int? { params["seed"]?.intValue }
}

/// A validated sweep expanded into tasks (topologically ordered: inputs before consumers).
public struct SweepPlan: Codable, Sendable {
    public var name: String
    /// Engine name the workers run ("sparsity", "null", or a name a worker maps to a command).
    public var engine: String
    /// Everything the engine needs besides a task's params, shared by all tasks:
    /// {"data": …, "methods": {name: {...}}, "measure": …}.
    public var context: JSONValue
    public var tasks: [PlannedTask]
    /// Extra attempts after the first failure (lost attempts count too).
    public var retries: Int
    /// "gpu" | "cpu" | "any"
    public var device: String
    public var reports: [ReportSpec]
    /// The spec's source text, kept so a sweep can be inspected and relaunched later.
    public var specText: String

    public init(name: String, engine: String, context: JSONValue, tasks: [PlannedTask], retries: Int,
                device: String, reports: [ReportSpec], specText: String) {
        self.name = name
        self.engine = engine
        self.context = context
        self.tasks = tasks
        self.retries = retries
        self.device = device
        self.reports = reports
        self.specText = specText
    }

    /// Tasks per stage, in stage order of first appearance.
    public var countsByStage: [(stage: String, count: Int)] {
        var order: [String] = []
        var counts: [String: Int] = [:]
        for t in tasks {
            if counts[t.stage] == nil { order.append(t.stage) }
            counts[t.stage, default: 0] += 1
        }
        return order.map { ($0, counts[$0]!) }
    }
}

/// One table of the spec's `report:` section.
public struct ReportSpec: Codable, Sendable, Hashable {
    public var title: String
    public var rows: String
    public var columns: String
    public var values: [String]

    public init(title: String, rows: String, columns: String, values: [String]) {
        self.title = title
        self.rows = rows
        self.columns = columns
        self.values = values
    }
}

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

    public init(sweep: String, stage: String, taskId: String, params: [String: JSONValue], state: TaskState,
                metrics: [String: Double?] = [:], units: [String: String] = [:], details: JSONValue = .null,
                error: String? = nil, attempts: Int = 0, artifacts: [ArtifactRef] = []) {
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
    }

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
