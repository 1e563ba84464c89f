import Foundation
import Testing

@testable import SweepKit

/// `Planner` writes each task's identity text from pieces prepared once per stage; these tests
/// hold it to the definition: every task as a plain expansion builds it, with its id from
/// `TaskIdentity.id` (the canonical JSON of the whole identity object).
@Suite("The planner's ids are TaskIdentity.id of each task")
struct PlannerIdentityTests {
    /// The expansion spelled out: every combination of the axes (first varying slowest), params
    /// = stage params overridden by the grid values, the producer found by its values for its
    /// own grid keys, and the id from `TaskIdentity.id`.
    static func reference(_ spec: SweepSpec) -> [PlannedTask] {
        var methods: [String: JSONValue] = [:]
        for m in spec.methods { methods[m.name] = m.definition }
        func key(_ params: [String: JSONValue], _ keys: [String]) -> String {
            var object: [String: JSONValue] = [:]
            for k in keys { object[k] = params[k] ?? .null }
            return JSONValue.object(object).canonicalText
        }
        var producers: [String: [String: String]] = [:]
        var tasks: [PlannedTask] = []
        for (index, stage) in spec.stages.enumerated() {
            let axes = spec.grid + stage.grid
            var cells: [[(String, JSONValue)]] = [[]]
            for axis in axes { cells = cells.flatMap { c in axis.values.map { c + [(axis.key, $0.value)] } } }
            let producer = stage.after.flatMap { ref in spec.stages.first { $0.name == ref.name } }
            var byCell: [String: String] = [:]
            for cell in cells {
                var params = Dictionary(stage.params.map { ($0.key, $0.node.json) }, uniquingKeysWith: { a, _ in a })
                for (k, v) in cell { params[k] = v }
                var inputs: [String: String] = [:]
                if let producer, let id = producers[producer.name]?[key(params, (spec.grid + producer.grid).map(\.key))]
                {
                    inputs[producer.name] = id
                }
                let id = TaskIdentity.id(
                    sweep: spec.name, stage: stage.name, params: params, inputs: inputs, engine: spec.engine,
                    data: spec.data ?? .null,
                    method: params["method"]?.stringValue.flatMap { methods[$0] } ?? .null,
                    measure: spec.measure ?? .null)
                byCell[key(params, axes.map(\.key))] = id
                tasks.append(
                    PlannedTask(
                        id: id, stage: stage.name, params: params, inputs: inputs,
                        priority: spec.stages.count - index))
            }
            producers[stage.name] = byCell
        }
        return tasks
    }

    func check(_ yaml: String, file: String = "spec.yaml") throws {
        let (spec, _) = try SpecLoader.sweepSpec(yaml: yaml, file: file, limits: .default)
        let planned = try SpecLoader.plan(yaml: yaml, file: file).tasks
        let expected = Self.reference(spec)
        #expect(planned.count == expected.count)
        for (got, want) in zip(planned, expected) {
            #expect(got == want, "\(file): \(want.stage) \(JSONValue.object(want.params).canonicalText)")
        }
    }

    @Test("on every shipped sweep", arguments: ShippedSweepsTests.expected.keys.sorted())
    func shipped(file: String) throws {
        let path = ShippedSweepsTests.sweeps.appendingPathComponent(file).path
        try check(try SpecLoader.read(path: path), file: file)
    }

    @Test("on the two-stage fixture")
    func fixture() throws { try check(Fixtures.twoStage) }

    @Test("with keys that need escaping, unsorted keys, a fixed and a swept method, a non-string method, chains")
    func awkward() throws {
        try check(
            #"""
            name: weird.name_1
            engine: custom
            data: {dataset: synthetic, train: 8, test: 4}
            grid:
              zz: [1, 2.5, -3]
              "k\"ey": ["a\\b", "ä"]
              aa: [x, false]
            stages:
              first:
                params: {zeta: 99, "b\tq": "tab", method: dense2}
              second:
                after: first
                grid:
                  method: [dense2, m1, 7]
                params: {lr: 0.1}
              third:
                after: second
                grid:
                  method: [dense2, m1, 7]
                  extra: [true, false]
            methods:
              m1: {kind: custom, p: 0.5}
              dense2: {kind: other}
            """#)
    }

    @Test("a stage that consumes a stage with fewer grid keys")
    func fanOut() throws {
        try check(
            """
            name: fan
            engine: null
            grid:
              a: [1, 2, 3]
            stages:
              base:
                params: {}
              wide:
                after: base
                grid:
                  b: [x, y]
                  c: [1, 2]
            """)
    }

    @Test("validate without expanding: no task list, the same tasks one at a time, the same summary and estimate")
    func streamed() throws {
        for file in ShippedSweepsTests.expected.keys.sorted() {
            let path = ShippedSweepsTests.sweeps.appendingPathComponent(file).path
            let full = try SpecLoader.validate(path: path)
            let lean = try SpecLoader.validate(path: path, expand: false, rangesFor: { _ in .builtin })
            #expect(lean.plan.tasks.isEmpty, "\(file): expand: false holds no tasks")
            var streamed: [PlannedTask] = []
            lean.forEachTask { streamed.append($0) }
            #expect(streamed == full.plan.tasks && lean.taskCount == full.plan.tasks.count)
            #expect(lean.summary == full.summary)
            let a = try #require(ComputeEstimate(plan: full.plan))
            let streamedEstimate = ComputeEstimate(outline: lean.plan, forEachTask: { lean.forEachTask($0) })
            let b = try #require(streamedEstimate)
            #expect(a.seconds == b.seconds && a.tasksTotal == b.tasksTotal && a.tasksEstimated == b.tasksEstimated)
        }
    }
}
