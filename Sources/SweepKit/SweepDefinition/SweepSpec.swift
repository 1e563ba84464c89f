/// A sweep spec as read from YAML, before it is expanded into tasks. Parts the engine receives
/// unchanged are already JSON (with defaults filled in, so that spelling a default out or
/// leaving it implicit gives the same task ids); parts the planner checks keep their positions.
struct SweepSpec: Sendable {
    var name: String
    var engine: String
    var description: String?
    /// Normalised `data:`; nil when the spec has none.
    var data: JSONValue?
    var grid: [GridAxis]
    /// Where `grid:` is written; nil when the spec has no top-level grid.
    var gridPosition: Position? = nil
    var stages: [StageSpec]
    /// In the order written; the definitions as the engine receives them (with `name`).
    var methods: [MethodSpec]
    /// Every name written under `methods:`, including ones whose definition has a problem,
    /// so a grid that uses one is not reported a second time.
    var declaredMethods: [String]
    var measure: JSONValue?
    var device: String
    /// `resources.exclusive`: the stages whose tasks need an unshared device; nil for none.
    var exclusiveStages: [String]? = nil
    /// `resources.isolate`: the stages whose tasks run in an engine process of their own; nil for none.
    var isolatedStages: [String]? = nil
    var retries: Int
    /// `dead_after:` in seconds; nil when the spec leaves it to the coordinator's `--dead-after`.
    var deadAfter: Double? = nil
    var reports: [ReportSpec]?
    /// Where each report's rows/columns were written, for checking them against the grid.
    var reportAxes: [ReportAxis]
    /// Each report's `values` as written, for checking metric names.
    var reportMetrics: [ReportAxis]

    var isSparsity: Bool { engine == KnownEngines.sparsity }
}

/// One key of a grid and its values, in the order written.
struct GridAxis: Sendable {
    var key: String
    var keyPosition: Position?
    var path: String
    var values: [GridValue]
}

struct GridValue: Sendable {
    var value: JSONValue
    var node: SpecNode
    var path: String
}

struct StageSpec: Sendable {
    var name: String
    var position: Position?
    var path: String
    var after: StageRef?
    var grid: [GridAxis]
    /// Where the stage's `grid:` is written; nil when it has none.
    var gridPosition: Position? = nil
    var params: [StageParam]
    /// `timeout:` in seconds; nil when the stage sets none (the worker's `--task-timeout` applies).
    var timeout: Double? = nil
}

struct StageRef: Sendable {
    var name: String
    var node: SpecNode
    var path: String
}

struct StageParam: Sendable {
    var key: String
    var keyPosition: Position?
    var node: SpecNode
    var path: String
}

struct MethodSpec: Sendable {
    var name: String
    var definition: JSONValue
}

/// A report's `rows` or `columns` as written, checked against the grid keys.
struct ReportAxis: Sendable {
    var key: String
    var node: SpecNode
    var path: String
}
