/// How many tasks a spec expands to, computed from the grid's axis lengths without expanding
/// anything: `Planner` makes, for each stage, one task per combination of the top-level grid's
/// values and the stage grid's values, so a stage has the product of both grids' axis lengths
/// and the sweep the sum over its stages. Overflow is detected, never trapped on.
struct TaskCount: Sendable {
    struct Stage: Sendable {
        var name: String
        /// nil when the product does not fit in an `Int`.
        var tasks: Int?
        /// Product of the top-level grid's axis lengths and of the stage's own (nil: overflow).
        var fromTopGrid: Int?
        var fromStageGrid: Int?
        var gridPosition: Position?
    }

    var stages: [Stage]
    /// All stages together; nil when it does not fit in an `Int`.
    var total: Int?
    var gridPosition: Position?

    init(_ spec: SweepSpec) {
        let top = Self.product(spec.grid.map(\.values.count))
        stages = spec.stages.map { stage in
            let own = Self.product(stage.grid.map(\.values.count))
            return Stage(
                name: stage.name, tasks: Self.product([top, own]), fromTopGrid: top, fromStageGrid: own,
                gridPosition: stage.gridPosition)
        }
        total = Self.sum(stages.map(\.tasks))
        gridPosition = spec.gridPosition
    }

    /// The product of `factors`, nil if one is nil or the product overflows.
    static func product(_ factors: [Int?]) -> Int? {
        var result = 1
        for factor in factors {
            guard let factor else { return nil }
            let (next, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = next
        }
        return result
    }

    static func sum(_ terms: [Int?]) -> Int? {
        var result = 0
        for term in terms {
            guard let term else { return nil }
            let (next, overflow) = result.addingReportingOverflow(term)
            if overflow { return nil }
            result = next
        }
        return result
    }

    /// Reports a count above `maxTasks` at the grid that makes it: the top-level `grid:`, or a
    /// stage's own `grid:` when that one is the larger factor of the largest stage.
    func check(maxTasks: Int, _ diagnostics: inout Diagnostics) {
        if let total, total <= maxTasks { return }
        let largest = stages.max { ($0.tasks ?? Int.max) < ($1.tasks ?? Int.max) }
        var position = gridPosition ?? largest?.gridPosition
        if let largest, let stagePosition = largest.gridPosition,
            (largest.fromStageGrid ?? Int.max) > (largest.fromTopGrid ?? Int.max) || gridPosition == nil
        {
            position = stagePosition
        }
        let amount =
            total.map { "\($0.grouped) tasks" }
            ?? "more than \(Int.max.grouped) tasks (more than a 64-bit count holds)"
        var perStage = ""
        if stages.count > 1 {
            perStage =
                " ("
                + Suggestions.sample(
                    stages.map {
                        "\($0.name) \($0.tasks.map(\.grouped) ?? "more than \(Int.max.grouped)")"
                    }) + ")"
        }
        // Without any grid (many stages of one task each) the message still names the file.
        diagnostics.add(
            at: position, position == nil ? "stages" : "",
            "the grid expands to \(amount)\(perStage), more than the limit of \(maxTasks.grouped); shrink the grid or pass --max-tasks N."
        )
    }
}
