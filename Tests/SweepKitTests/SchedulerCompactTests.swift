import Testing

@testable import SweepKit

/// The scheduler keeps a task's id as its 32 bytes when it is 64 lower-case hex digits, its
/// parameters as shared (key, value) entries and its inputs as slots (SchedulerMemoryTests):
/// what goes in must come out the same.
@Suite("Scheduler: the compact task record gives back what it was given")
struct SchedulerCompactTests {
    private static let cpu = WorkerCapabilities(engines: ["null"], hasGPU: false, hasCPU: true, slots: 8)

    private static func assigned(_ effects: [SchedulerEffect]) -> [String] {
        effects.compactMap {
            if case .assign(_, _, let task) = $0 { return task }
            return nil
        }
    }

    /// `value` spelled out exactly: the sign of a zero, the bytes of a string.
    private static func exact(_ value: JSONValue?) -> [UInt8] { Array(String(describing: value).utf8) }

    @Test("ids keep their spelling: 64-hex, upper-case hex, other lengths and names")
    func idSpelling() {
        let lower = String(repeating: "0123456789abcdef", count: 4)
        let upper = lower.uppercased()
        let short = String(lower.dropLast())
        let ids = [lower, upper, short, "t0", String(repeating: "f", count: 64)]
        var s = Scheduler(runId: "r")
        s.addSweep(
            name: "sw", engine: "null", device: "any", retries: 0, cancelled: false,
            tasks: ids.map {
                TaskSeed(id: $0, sweep: "sw", stage: "train", priority: 1, state: .pending, attemptsUsed: 0, inputs: [])
            })
        #expect(s.drainEffects().compactMap { if case .taskState(let id, .ready, _) = $0 { id } else { nil } } == ids)
        for id in ids { #expect(s.state(of: id) == .ready) }
        #expect(s.state(of: lower.replacingOccurrences(of: "a", with: "A")) == nil)
        s.workerConnected(id: "w", capabilities: Self.cpu, running: [], now: 0)
        s.workerReady(id: "w", credits: 8, now: 0)
        s.dispatch(now: 0)
        #expect(Self.assigned(s.drainEffects()) == ids)
    }

    @Test("parameters come back exactly: signed zeros, unnormalised strings, nested values")
    func exactParams() {
        let given: [[String: JSONValue]] = [
            ["zero": .number(-0.0), "s": .string("caf\u{E9}"), "n": .null, "b": .bool(true)],
            ["zero": .number(0.0), "s": .string("cafe\u{301}"), "n": .number(1), "b": .bool(false)],
            ["nested": .object(["a": .array([.number(1.5), .string("x"), .null])]), "s": .string("caf\u{E9}")],
        ]
        var s = Scheduler(runId: "r")
        s.addSweep(
            name: "sw", engine: "null", device: "any", retries: 0, cancelled: false,
            tasks: given.indices.map {
                TaskSeed(
                    id: "t\($0)", sweep: "sw", stage: "train", priority: 1, state: .pending, attemptsUsed: 0,
                    inputs: [], params: given[$0])
            })
        for (i, params) in given.enumerated() {
            let back = s.assignment(of: "t\(i)")?.params ?? [:]
            #expect(back.keys.sorted() == params.keys.sorted())
            for (key, value) in params { #expect(Self.exact(back[key]) == Self.exact(value), "t\(i) \(key)") }
        }
    }

    @Test("a relaunch that drops a consumed task, then one that brings it back, links its consumer again")
    func dropAndReturn() {
        let train = TaskSeed(
            id: "t", sweep: "sw", stage: "train", priority: 2, state: .pending, attemptsUsed: 0, inputs: [],
            params: ["model": "m"])
        let tune = TaskSeed(
            id: "f", sweep: "sw", stage: "tune", priority: 1, state: .pending, attemptsUsed: 0, inputs: ["t"],
            params: ["model": "m", "method": "snip"], inputsByStage: ["train": "t"])
        var s = Scheduler(runId: "r")
        s.addSweep(name: "sw", engine: "null", device: "any", retries: 0, cancelled: false, tasks: [train, tune])
        s.addSweep(name: "sw", engine: "null", device: "any", retries: 0, cancelled: false, tasks: [tune])
        #expect(s.state(of: "t") == nil)
        #expect(s.state(of: "f") == .pending)
        s.addSweep(name: "sw", engine: "null", device: "any", retries: 0, cancelled: false, tasks: [train, tune])
        _ = s.drainEffects()
        s.workerConnected(id: "w", capabilities: Self.cpu, running: [], now: 0)
        s.workerReady(id: "w", credits: 8, now: 0)
        s.dispatch(now: 0)
        let first = s.drainEffects()
        #expect(Self.assigned(first) == ["t"])
        guard case .assign(_, let attempt, _)? = first.first(where: { if case .assign = $0 { true } else { false } })
        else { return }
        let checkpoint = ArtifactDigest(name: "checkpoint", sha256: String(repeating: "b", count: 64), bytes: 1)
        let log = ArtifactDigest(name: "log", sha256: String(repeating: "c", count: 64), bytes: 1)
        #expect(
            s.resultArrived(attemptId: attempt, from: "w", artifacts: [log, checkpoint], now: 1) == .accept(taskId: "t")
        )
        #expect(s.state(of: "f") == .ready)
        let assignment = s.assignment(of: "f")
        #expect(assignment?.inputs["train"]?.taskId == "t")
        #expect(assignment?.inputs["train"]?.artifact == checkpoint)
        #expect(assignment?.label == "tune m snip")
        s.dispatch(now: 1)
        #expect(Self.assigned(s.drainEffects()) == ["f"])
    }
}
