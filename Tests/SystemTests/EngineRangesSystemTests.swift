import Foundation
import SweepKit
import Testing

/// The Python that runs the real engine: $SPARSEGRID_PYTHON (make test sets it), else the venv.
private let enginePython: String = {
    if let p = ProcessInfo.processInfo.environment["SPARSEGRID_PYTHON"], !p.isEmpty { return p }
    return "\(Harness.repoRoot)/.venv/bin/python"
}()

/// "The validator rejects what the engine rejects", table-driven from the real engine's
/// `describe()["ranges"]`: the table built into the binary must equal it, and for every range
/// a value just outside is refused both by `validate` and by the engine's own
/// `check --task` on the task the planner makes, a value just inside taken by both.
///
/// Both sides are exhaustive over the live table (every key, every bound, null where allowed,
/// a wrong type, list lengths): the Swift side in this process, the engine side in one Python
/// process that runs `check` once per task file (a Python start costs seconds), plus one real
/// `python -m sparsegrid_engine check` per verdict to confirm its exit status. Skipped, with
/// the reason printed, while the engine's describe has no "ranges" (the engine change lands
/// separately from this one).
@Suite(
    "validate and the engine refuse the same values (table-driven from the engine's describe)", .serialized,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: enginePython),
        "needs \(enginePython) with torch: run `make venv` (make test does)"))
struct EngineRangesSystemTests {
    /// `python -m sparsegrid_engine ARGS` with the repository's engine on PYTHONPATH.
    static func engine(_ arguments: [String], timeout: Double = 600) async throws -> Harness.Output {
        let dir = Harness.tempDir("engine")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: enginePython)
        process.arguments = ["-m", "sparsegrid_engine"] + arguments
        var env = ProcessInfo.processInfo.environment
        env["PYTHONPATH"] = "\(Harness.repoRoot)/engine"
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        _ = FileManager.default.createFile(atPath: "\(dir)/out", contents: nil)
        _ = FileManager.default.createFile(atPath: "\(dir)/err", contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/out"))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/err"))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError("the engine ran longer than \(Int(timeout)) s: \(arguments)")
        }
        return Harness.Output(
            status: process.terminationStatus, stdout: Harness.read("\(dir)/out"), stderr: Harness.read("\(dir)/err"))
    }

    /// The live engine's ranges, or nil (the reason printed) while it publishes none.
    static func liveRanges() async throws -> EngineRanges? {
        let out = try await engine(["describe"])
        #expect(out.status == 0, "describe failed: \(out.stderr.suffix(2000))")
        let described = try JSONValue.parse(out.stdout)
        do {
            return try EngineRanges(describe: described)
        } catch .absent {
            print("skipped: the engine's describe has no \"ranges\" yet (engine/sparsegrid_engine/runner.py)")
            return nil
        } catch {
            Issue.record("the engine's ranges cannot be read: \(error)")
            return nil
        }
    }

    // MARK: sites

    enum Site: CustomStringConvertible {
        case stageParam(String), gridParam(String), seed, nM(String), block(String), latency(String)

        var description: String {
            switch self {
            case .stageParam(let k): return "stages.train.params.\(k)"
            case .gridParam(let k): return "grid.\(k)"
            case .seed: return "grid.seed"
            case .nM(let k): return "methods.nm.\(k)"
            case .block(let k): return "methods.blk.\(k)"
            case .latency(let k): return "measure.latency.\(k)"
            }
        }

        static func all(_ r: EngineRanges) -> [(Site, EngineRange)] {
            func sorted(_ t: [String: EngineRange]) -> [(String, EngineRange)] {
                t.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            }
            return sorted(r.stageParams).flatMap { [(Site.stageParam($0.0), $0.1), (Site.gridParam($0.0), $0.1)] }
                + [(.seed, r.seed)] + sorted(r.methods.nM).map { (.nM($0.0), $0.1) }
                + sorted(r.methods.block).map { (.block($0.0), $0.1) }
                + sorted(r.measure.latency).map { (.latency($0.0), $0.1) }
        }

        /// The method its task uses (the other keys set so that only this one decides).
        var method: String {
            switch self {
            case .block: return "blk"
            default: return "nm"
            }
        }

        /// A valid spec (YAML is a superset of JSON), ready for this site's value.
        var baseSpec: [String: JSONValue] {
            var nm: [String: JSONValue] = ["kind": "n_m", "n": 2, "m": 4]
            var blk: [String: JSONValue] = ["kind": "block", "shape": [4, 4], "select": "random", "probability": 0.5]
            if case .nM(let k) = self { if k == "n" { nm["m"] = 64 } else { nm["n"] = 1 } }
            if case .block("probability_start") = self { blk["probability"] = 0.999 }
            return [
                "name": "ranges", "data": ["dataset": "synthetic", "train": 8, "test": 8],
                "grid": ["model": ["resnet18"], "seed": [0], "method": .array([.string(method)])],
                "stages": ["train": ["params": ["epochs": 1]]],
                "methods": ["nm": .object(nm), "blk": .object(blk)],
                "measure": ["latency": ["batch_sizes": [1]]],
            ]
        }

        /// The spec with `value` written at this site.
        func spec(_ value: JSONValue) -> String {
            var s = baseSpec
            func edit(_ key: String, _ body: (inout [String: JSONValue]) -> Void) {
                var o = s[key]!.objectValue!
                body(&o)
                s[key] = .object(o)
            }
            switch self {
            case .stageParam(let k):
                var params: [String: JSONValue] = ["epochs": 1]
                params[k] = value
                edit("stages") { $0["train"] = ["params": .object(params)] }
            case .gridParam(let k):
                edit("stages") { $0["train"] = ["params": .object(k == "epochs" ? [:] : ["epochs": 1])] }
                edit("grid") { $0[k] = [value] }
            case .seed: edit("grid") { $0["seed"] = [value] }
            case .nM(let k), .block(let k):
                let name = method
                edit("methods") { m in
                    var d = m[name]!.objectValue!
                    d[k] = value
                    m[name] = .object(d)
                }
            case .latency(let k):
                edit("measure") { m in
                    var l = m["latency"]!.objectValue!
                    l[k] = value
                    m["latency"] = .object(l)
                }
            }
            return JSONValue.object(s).canonicalText
        }

        /// The task file the worker would write for the base spec's task, with `value` at this
        /// site (what the planner makes of a spec with that value).
        func task(_ plan: SweepPlan, _ value: JSONValue) -> JSONValue {
            let t = plan.tasks[0]
            var params = t.params
            var definition = plan.context["methods"]![method]!.objectValue!
            var measure = plan.context["measure"]!.objectValue!
            switch self {
            case .stageParam(let k), .gridParam(let k): params[k] = value
            case .seed: params["seed"] = value
            case .nM(let k), .block(let k): definition[k] = value
            case .latency(let k):
                var l = measure["latency"]!.objectValue!
                l[k] = value
                measure["latency"] = .object(l)
            }
            return [
                "task_id": .string(t.id), "attempt_id": "a", "sweep": "ranges", "stage": "train",
                "params": .object(params), "method": .object(definition), "data": plan.context["data"]!,
                "measure": .object(measure), "inputs": [:], "device": "cpu",
            ]
        }

        /// Probes that a rule between keys decides, not the range (n < m with m at its
        /// maximum, probability_start ≤ probability, no null or list as a grid value).
        func decidedElsewhere(_ p: EngineRange.Probe) -> Bool {
            let x = p.value.doubleValue
            switch self {
            case .nM("n"): return p.accepted && (x ?? 0) >= 64
            case .nM("m"): return p.accepted && (x ?? 2) <= 1
            case .block("probability_start"): return p.accepted && (x ?? 0) > 0.999
            case .gridParam, .seed: return p.value.isNull || p.value.arrayValue != nil
            default: return false
            }
        }

        /// Whether the engine sees this site apart from another (a grid value reaches the
        /// task's params just as a stage param does).
        var reachesEngineSeparately: Bool {
            if case .gridParam = self { return false }
            return true
        }
    }

    // MARK: tests

    @Test("the table built into sparsegrid equals the engine's describe ranges, key by key")
    func builtinEqualsLive() async throws {
        guard let live = try await Self.liveRanges() else { return }
        let builtin = EngineRanges.builtin
        for (site, range) in Site.all(live) {
            let mine = Site.all(builtin).first { $0.0.description == site.description }?.1
            #expect(mine == range, "\(site): built in \(String(describing: mine)), engine \(range)")
        }
        for (site, _) in Site.all(builtin)
        where !Site.all(live).contains(where: { $0.0.description == site.description }) {
            Issue.record("\(site) is in the built-in table, not in the engine's")
        }
        #expect(builtin.methods.skipAliases == live.methods.skipAliases)
        #expect(builtin == live)
    }

    @Test(
        "every value just outside a range is refused by validate and by the engine's check; just inside, taken by both")
    func sameVerdicts() async throws {
        guard let live = try await Self.liveRanges() else { return }
        let dir = Harness.tempDir("ranges")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var cases: [(file: String, what: String, accepted: Bool)] = []
        for (site, range) in Site.all(live) {
            let plan = try SpecLoader.plan(
                yaml: JSONValue.object(site.baseSpec).canonicalText, file: "base.yaml", ranges: live)
            for probe in range.probes where !site.decidedElsewhere(probe) {
                let what = "\(site) = \(probe)"
                // The validator, with the engine's own table.
                let spec = site.spec(probe.value)
                var refused: [String] = []
                do {
                    _ = try SpecLoader.plan(yaml: spec, file: "spec.yaml", ranges: live)
                } catch let error as SpecError {
                    refused = error.issues.map(\.description)
                }
                #expect(refused.isEmpty == probe.accepted, "validate: \(what): \(refused)")
                if !probe.accepted {
                    #expect(
                        refused.contains { $0.contains("`\(site.description)") },
                        "validate names the key: \(what): \(refused)")
                }
                // The engine, on the task the planner makes.
                guard site.reachesEngineSeparately else { continue }
                let file = "\(dir)/task-\(cases.count).json"
                try Data(site.task(plan, probe.value).canonicalText.utf8).write(to: URL(fileURLWithPath: file))
                cases.append((file, what, probe.accepted))
            }
        }
        #expect(cases.count > 80, "the table gives probes on every side")

        // One Python process runs `check` per file (the engine's own CLI entry, as `python -m`
        // would), reporting each exit status as a JSON line.
        let script = """
            import contextlib, io, json, sys
            from sparsegrid_engine.__main__ import main
            for path in sys.argv[1:]:
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        code = main(["check", "--task", path])
                    except SystemExit as e:
                        code = e.code if isinstance(e.code, int) else 1
                print(json.dumps({"path": path, "code": code, "stderr": err.getvalue()[-500:]}), flush=True)
            """
        try Data(script.utf8).write(to: URL(fileURLWithPath: "\(dir)/check_all.py"))
        let checked = try await Harness.exec(
            enginePython, ["\(dir)/check_all.py"] + cases.map(\.file), timeout: 600,
            environment: ["PYTHONPATH": "\(Harness.repoRoot)/engine"])
        let data = Data(checked.stdout.utf8)
        var codes: [String: (Int, String)] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let row = try? JSONValue.parse(String(line)), let path = row["path"]?.stringValue else { continue }
            codes[path] = (row["code"]?.intValue ?? -1, row["stderr"]?.stringValue ?? "")
        }
        #expect(codes.count == cases.count, "every task was checked")
        for c in cases {
            guard let (code, stderr) = codes[c.file] else { continue }
            #expect(!stderr.contains("usage:"), "`check` must be a command of the engine: \(stderr)")
            #expect(code == (c.accepted ? 0 : 2), "engine check: \(c.what): exit \(code): \(stderr)")
        }

        // The command itself, as a process: exit 0 for a value inside, 2 for one outside.
        if let inside = cases.first(where: { $0.accepted }), let outside = cases.first(where: { !$0.accepted }) {
            #expect(try await Self.engine(["check", "--task", inside.file]).status == 0, "\(inside.what)")
            let refused = try await Self.engine(["check", "--task", outside.file])
            #expect(refused.status == 2, "\(outside.what): \(refused.stderr)")
        }
    }

    @Test("`sparsegrid validate` refuses `probability: 1.0` and says which table it checked against")
    func validateCommand() async throws {
        let dir = Harness.tempDir("validate-ranges")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var spec = Site.block("probability").baseSpec
        spec["methods"] = [
            "blk": ["kind": "block", "shape": [4, 4], "select": "random", "probability": 1.0],
            "nm": ["kind": "n_m", "n": 2, "m": 4],
        ]
        let path = try Harness.writeSpec(JSONValue.object(spec).canonicalText, in: dir)
        let env = ["SPARSEGRID_PYTHON": enginePython, "SPARSEGRID_CACHE": "\(dir)/cache"]
        let builtin = try await Harness.run(["validate", path, "--builtin-ranges"], environment: env)
        #expect(builtin.status == 1)
        #expect(builtin.stderr.contains("ranges: this build's table of the sparsity engine (--builtin-ranges)"))
        #expect(builtin.stderr.contains("`methods.blk.probability`: must be a number in (0, 1)"), "\(builtin.stderr)")

        let first = try await Harness.run(["validate", path], timeout: 600, environment: env)
        let second = try await Harness.run(["validate", path], environment: env)
        #expect(first.status == 1 && second.status == 1)
        #expect(second.stderr.contains("`methods.blk.probability`: must be a number in (0, 1)"), "\(second.stderr)")
        let live = try await Self.liveRanges()
        if live != nil {
            #expect(first.stderr.contains("'s own describe\n"), "\(first.stderr)")
            #expect(second.stderr.contains("'s own describe (cached)"), "the second asks the cache: \(second.stderr)")
        } else {
            #expect(second.stderr.contains("its describe has no \"ranges\""), "\(second.stderr)")
        }
    }
}
