import Foundation
import Testing

@testable import SweepKit

/// Where a ranged value is written in a spec, for the table-driven tests.
enum RangeSite: CustomStringConvertible {
    case stageParam(String)
    case gridParam(String)
    case seed
    case nM(String)
    case block(String)
    case latency(String)

    var description: String {
        switch self {
        case .stageParam(let k): return "stages.train.params.\(k)"
        case .gridParam(let k): return "grid.\(k)[0]"
        case .seed: return "grid.seed[0]"
        case .nM(let k): return "methods.nm.\(k)"
        case .block(let k): return "methods.blk.\(k)"
        case .latency(let k): return "measure.latency.\(k)"
        }
    }

    /// A spec with `value` (YAML text) written at this site and valid values everywhere else.
    func spec(_ value: String) -> String {
        var params: [(String, String)] = [("epochs", "1")]
        var grid: [(String, String)] = [("model", "[resnet18]"), ("seed", "[0]")]
        var nm: [(String, String)] = [("n", "2"), ("m", "4")]
        var block: [(String, String)] = [("shape", "[4, 4]"), ("select", "random"), ("probability", "0.5")]
        var latency: [(String, String)] = [("batch_sizes", "[1]")]
        func set(_ list: inout [(String, String)], _ key: String, _ v: String) {
            list.removeAll { $0.0 == key }
            list.append((key, v))
        }
        switch self {
        case .stageParam(let k): set(&params, k, value)
        case .gridParam(let k):
            params.removeAll { $0.0 == k }
            set(&grid, k, "[\(value)]")
        case .seed: set(&grid, "seed", "[\(value)]")
        case .nM(let k):
            // The other key leaves the most room for n < m.
            if k == "n" { set(&nm, "m", "64") } else { set(&nm, "n", "1") }
            set(&nm, k, value)
        case .block(let k):
            if k == "probability_start" { set(&block, "probability", "0.999") }
            set(&block, k, value)
        case .latency(let k): set(&latency, k, value)
        }
        func flow(_ list: [(String, String)]) -> String {
            "{" + list.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + "}"
        }
        return """
            name: ranges
            data: {dataset: synthetic, train: 8, test: 8}
            grid:
            \(grid.map { "  \($0.0): \($0.1)" }.joined(separator: "\n"))
            stages:
              train:
                params: \(flow(params))
            methods:
              nm: \(flow([("kind", "n_m")] + nm))
              blk: \(flow([("kind", "block")] + block))
            measure:
              latency: \(flow(latency))
            """
    }

    /// Probes a hand-written rule between keys decides instead of the range (n < m with m at
    /// its maximum; probability_start ≤ probability; a grid value cannot be null).
    func decidedElsewhere(_ probe: EngineRange.Probe) -> Bool {
        let x = probe.value.doubleValue
        switch self {
        case .nM("n"): return probe.accepted && (x ?? 0) >= 64
        case .nM("m"): return probe.accepted && (x ?? 2) <= 1
        case .block("probability_start"): return probe.accepted && (x ?? 0) > 0.999
        case .gridParam, .seed: return probe.value.isNull || probe.value.arrayValue != nil
        default: return false
        }
    }

    /// Every ranged site of a table with its range.
    static func all(_ ranges: EngineRanges) -> [(RangeSite, EngineRange)] {
        var out: [(RangeSite, EngineRange)] = []
        for (k, r) in ranges.stageParams.sorted(by: { $0.key < $1.key }) {
            out.append((.stageParam(k), r))
            out.append((.gridParam(k), r))
        }
        out.append((.seed, ranges.seed))
        for (k, r) in ranges.methods.nM.sorted(by: { $0.key < $1.key }) { out.append((.nM(k), r)) }
        for (k, r) in ranges.methods.block.sorted(by: { $0.key < $1.key }) { out.append((.block(k), r)) }
        for (k, r) in ranges.measure.latency.sorted(by: { $0.key < $1.key }) { out.append((.latency(k), r)) }
        return out
    }
}

private func problems(_ yaml: String, ranges: EngineRanges = .builtin) -> [SpecError.Issue] {
    do {
        _ = try SpecLoader.plan(yaml: yaml, file: "spec.yaml", ranges: ranges)
        return []
    } catch let error as SpecError {
        return error.issues
    } catch {
        return [SpecError.Issue(file: "", line: nil, column: nil, keyPath: "", message: "\(error)")]
    }
}

@Suite("validate refuses what the engine's ranges refuse, and takes what they take")
struct EngineRangesValidationTests {
    @Test("block `probability: 1.0` is refused, naming the key, the range and an example")
    func probabilityOne() {
        let text = Fixtures.twoStage.replacingOccurrences(of: "probability: 0.5", with: "probability: 1.0")
        #expect(
            Fixtures.problems(text) == [
                "spec.yaml:16:72: `methods.block_4x4.probability`: must be a number in (0, 1) (the engine's range), found 1.0; e.g. `probability: 0.5`."
            ])
    }

    @Test("every value just outside a range of the built-in table is refused at its key, with the range")
    func outside() {
        var checked = 0
        for (site, range) in RangeSite.all(.builtin) {
            for probe in range.probes where !probe.accepted && !site.decidedElsewhere(probe) {
                let found = problems(site.spec(probe.yaml))
                let here = found.filter { $0.keyPath.hasPrefix(site.description) }
                #expect(!here.isEmpty, "\(site) = \(probe): \(found.map(\.description))")
                if [.int, .number].contains(range.kind), probe.value.doubleValue != nil,
                    probe.value.doubleValue!.rounded() == probe.value.doubleValue! || range.kind == .number
                {
                    #expect(
                        here.contains { $0.message.contains(range.boundsText) },
                        "\(site) = \(probe): the message should give the range \(range.boundsText): \(here)")
                }
                checked += 1
            }
        }
        #expect(checked > 80)
    }

    @Test("every value inside a range of the built-in table, its bounds included, is taken")
    func inside() throws {
        var checked = 0
        for (site, range) in RangeSite.all(.builtin) {
            for probe in range.probes where probe.accepted && !site.decidedElsewhere(probe) {
                let found = problems(site.spec(probe.yaml))
                #expect(found.isEmpty, "\(site) = \(probe): \(found.map(\.description))")
                checked += 1
            }
        }
        #expect(checked > 50)
    }

    @Test("the planned task carries the value as the engine receives it")
    func carried() throws {
        let plan = try SpecLoader.plan(yaml: RangeSite.block("probability").spec("0.999"), file: "spec.yaml")
        #expect(plan.context["methods"]?["blk"]?["probability"] == 0.999)
        let latency = try SpecLoader.plan(
            yaml: RangeSite.latency("max_seconds").spec("3600"), file: "spec.yaml"
        ).context["measure"]?["latency"]
        #expect(latency?["max_seconds"] == 3600)
    }

    @Test("the table is the source: another engine's table changes the verdict")
    func tableDecides() {
        var stricter = EngineRanges.builtin
        stricter.stageParams["batch_size"] = EngineRange(.int, min: 4, max: 8)
        let spec = RangeSite.stageParam("batch_size").spec("2")
        #expect(problems(spec).isEmpty)
        let found = problems(spec, ranges: stricter).map(\.description)
        #expect(
            found == [
                "spec.yaml:8:37: `stages.train.params.batch_size`: must be a whole number from 4 to 8 (the engine's range), found 2; e.g. `batch_size: 64`."
            ])
        // A parameter only the engine's table names is a parameter; one it drops is not.
        stricter.stageParams["dropout"] = EngineRange(.number, min: 0, max: 1, maxExclusive: true)
        stricter.stageParams["channels_last"] = nil
        #expect(problems(RangeSite.stageParam("dropout").spec("0.2"), ranges: stricter).isEmpty)
        #expect(
            problems(RangeSite.stageParam("channels_last").spec("true"), ranges: stricter).map(\.keyPath) == [
                "stages.train.params.channels_last"
            ])
    }

    @Test("the new measure.latency keys are taken and passed on; an unknown one is still refused")
    func latencyKeys() throws {
        let text = Fixtures.twoStage.replacingOccurrences(
            of: "iterations: 5}", with: "iterations: 5, precision: 0.02, max_seconds: 30, block: 10}")
        let measure = try Fixtures.plan(text).context["measure"]?["latency"]
        #expect(
            measure == [
                "batch_sizes": [1], "warmup": 2, "iterations": 5, "precision": 0.02, "max_seconds": 30, "block": 10,
            ])
        #expect(
            Fixtures.problems(text.replacingOccurrences(of: "block: 10", with: "blok: 10")) == [
                "spec.yaml:18:91: `measure.latency.blok`: `blok` is not a key of `measure.latency`; did you mean `block`? Valid keys: batch_sizes, warmup, iterations, precision, max_seconds, block."
            ])
    }

    @Test("batch sizes: at most 16, each listed once")
    func batchSizes() {
        let sixteen = "[" + (1...16).map(String.init).joined(separator: ", ") + "]"
        #expect(problems(RangeSite.latency("batch_sizes").spec(sixteen)).isEmpty)
        let seventeen = "[" + (1...17).map(String.init).joined(separator: ", ") + "]"
        #expect(
            problems(RangeSite.latency("batch_sizes").spec(seventeen)).map(\.message) == [
                "lists 17 values, more than the 16 the engine takes (the engine's range); e.g. `batch_sizes: [1, 64]`."
            ])
        #expect(
            problems(RangeSite.latency("batch_sizes").spec("[1, 64, 1]")).map(\.description) == [
                "spec.yaml:13:34: `measure.latency.batch_sizes[2]`: repeats an earlier value (first at line 13); list each value once."
            ])
    }

    @Test("`skip: [shortcuts]` is taken; an alias the engine in use does not take is refused")
    func shortcuts() throws {
        let text = Fixtures.twoStage.replacingOccurrences(of: "skip: [first, last]", with: "skip: [first, shortcuts]")
        let plan = try Fixtures.plan(text)
        #expect(plan.context["methods"]?["nm_2_4"]?["skip"] == ["first", "shortcuts"])
        var older = EngineRanges.builtin
        older.methods.skipAliases = ["first", "last"]
        #expect(
            problems(text, ranges: older).map(\.description) == [
                "spec.yaml:15:49: `methods.nm_2_4.skip[1]`: `shortcuts` is not an alias this engine takes (it takes `first` or `last`); name the layers instead, e.g. `skip: [fc]`."
            ])
    }

    @Test("probability_start may be 0 and at most probability")
    func rampStart() {
        #expect(problems(RangeSite.block("probability_start").spec("0")).isEmpty)
        let found = problems(
            RangeSite.block("probability_start").spec("0.6").replacingOccurrences(
                of: "probability: 0.999", with: "probability: 0.5"))
        #expect(
            found.map(\.message) == [
                "must be at most `probability` (0.5): a ramp only ever zeroes more blocks; found 0.6, e.g. `probability_start: 0.3`."
            ])
    }

    @Test("`scheduler: {plateau: null}` is refused, as the engine refuses it; `{plateau: {}}` is taken")
    func plateauNull() {
        #expect(
            problems(RangeSite.stageParam("scheduler").spec("{plateau: null}")).map(\.message) == [
                "expected a mapping such as `{patience: 5, factor: 0.1}`, or `{}` for those defaults; found nothing (null)."
            ])
        #expect(problems(RangeSite.stageParam("scheduler").spec("{plateau: {}}")).isEmpty)
    }

    @Test("null means 'the engine decides' only where the table says so")
    func nullable() {
        #expect(problems(RangeSite.stageParam("max_steps").spec("null")).isEmpty)
        #expect(
            problems(RangeSite.stageParam("batch_size").spec("null")).map(\.message) == [
                "expected a whole number from 2 to 65536, found nothing (null); e.g. `batch_size: 64`."
            ])
    }
}

@Suite("EngineRanges decodes what an engine's describe publishes, within bounds")
struct EngineRangesDecodingTests {
    static func describe(_ ranges: String) throws -> JSONValue {
        try JSONValue.parse(#"{"engine": "sparsity", "ranges": \#(ranges)}"#)
    }

    static var builtinJSON: String {
        String(decoding: try! JSONEncoder().encode(EngineRanges.builtin), as: UTF8.self)
    }

    @Test("the built-in table survives a round trip through the describe format")
    func roundTrip() throws {
        #expect(try EngineRanges(describe: Self.describe(Self.builtinJSON)) == .builtin)
    }

    @Test("unknown keys are ignored; an unknown type is kept (and left to the engine)")
    func tolerant() throws {
        var object = try JSONValue.parse(Self.builtinJSON).objectValue!
        object["rules"] = ["n < m"]
        object["future"] = ["anything": 1]
        var params = object["stage_params"]!.objectValue!
        params["mixup"] = ["type": "distribution", "hint": "new"]
        object["stage_params"] = .object(params)
        let ranges = try EngineRanges(describe: ["ranges": .object(object)])
        #expect(ranges.stageParams["mixup"]?.kind == nil)
        #expect(problems(RangeSite.stageParam("mixup").spec("{beta: 2}"), ranges: ranges).isEmpty)
    }

    @Test("a describe without ranges, or with a broken or oversized table, gives no table")
    func refused() throws {
        #expect(throws: EngineRanges.Unavailable.absent) { try EngineRanges(describe: ["engine": "sparsity"]) }
        let bad: [String] = [
            Self.builtinJSON.replacingOccurrences(of: #""stage_params""#, with: #""stage_parameters""#),
            Self.builtinJSON.replacingOccurrences(of: #""max":65536"#, with: #""max":1e300"#),
            Self.builtinJSON.replacingOccurrences(of: #""max":65536"#, with: #""max":-5"#),
            Self.builtinJSON.replacingOccurrences(of: #""values":["random","magnitude"]"#, with: #""values":[]"#),
            Self.builtinJSON.replacingOccurrences(of: #""max_length":16"#, with: #""max_length":0"#),
        ]
        for text in bad {
            #expect(text != Self.builtinJSON, "the edit must apply")
            #expect(throws: EngineRanges.Unavailable.self) { try EngineRanges(describe: Self.describe(text)) }
        }
        var object = try JSONValue.parse(Self.builtinJSON).objectValue!
        var params: [String: JSONValue] = [:]
        for i in 0...EngineRanges.maxEntries { params["p\(i)"] = ["type": "int"] }
        object["stage_params"] = .object(params)
        #expect(throws: EngineRanges.Unavailable.self) { try EngineRanges(describe: ["ranges": .object(object)]) }
    }

    @Test("bounds read as intervals")
    func boundsText() {
        #expect(EngineRanges.builtin.methods.block["probability"]?.boundsText == "in (0, 1)")
        #expect(EngineRanges.builtin.stageParams["momentum"]?.boundsText == "in [0, 1)")
        #expect(EngineRanges.builtin.stageParams["epochs"]?.boundsText == "from 0 to 10000")
        #expect(EngineRange(.number, min: 0, minExclusive: true).boundsText == "> 0")
    }
}
