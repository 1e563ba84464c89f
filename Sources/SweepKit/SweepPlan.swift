import Foundation

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
    /// Stage name → the stage's `timeout` in seconds (only stages that set one; nil: none does).
    /// An assign of a task of that stage carries it; the worker stops the engine after the
    /// smaller of it and its own `--task-timeout`.
    public var stageTimeouts: [String: Double]?
    /// The sweep's own `dead_after` in seconds, if it sets one: attempts of its tasks are
    /// declared lost only once their worker has been silent this long (and longer than the
    /// coordinator's `--dead-after`).
    public var deadAfter: Double?
    /// Stages whose tasks need a device no other task shares (`resources.exclusive`), in stage
    /// order; nil: none. The scheduler gives them only to workers whose slots are not shared.
    /// Not part of any task id: resources change where a task runs, not what it computes.
    public var exclusiveStages: [String]?
    /// Stages whose tasks run in an engine process of their own, never in a worker's
    /// long-lived `serve` engine (`resources.isolate`), in stage order; nil: none. Carried in
    /// each assign (`Assign.isolate`). Not part of any task id.
    public var isolatedStages: [String]?

    public init(
        name: String, engine: String, context: JSONValue, tasks: [PlannedTask], retries: Int,
        device: String, reports: [ReportSpec], specText: String, stageTimeouts: [String: Double]? = nil,
        deadAfter: Double? = nil, exclusiveStages: [String]? = nil, isolatedStages: [String]? = nil
    ) {
        self.exclusiveStages = exclusiveStages
        self.isolatedStages = isolatedStages
        self.name = name
        self.engine = engine
        self.context = context
        self.tasks = tasks
        self.retries = retries
        self.device = device
        self.reports = reports
        self.specText = specText
        self.stageTimeouts = stageTimeouts
        self.deadAfter = deadAfter
    }

    /// The `timeout` of a stage, if it sets one.
    public func timeout(ofStage stage: String) -> Double? { stageTimeouts?[stage] }

    /// Whether tasks of a stage ask for an engine process of their own.
    public func isolates(stage: String) -> Bool { isolatedStages?.contains(stage) ?? false }

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
