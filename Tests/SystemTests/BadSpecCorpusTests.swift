import Foundation
import Testing

/// Hostile specs from Tests/Fixtures/bad-specs/, each given to the real `sparsegrid validate`:
/// it must refuse them with a sentence naming the file (and line), quickly and in little
/// memory. Each run is forked by a small helper (Tests/Fixtures/rusage_run.py) and reaped with
/// wait4, so its wall time and peak resident memory (rusage.ru_maxrss) are that process's own.
@Suite("Bad-spec corpus: validate refuses hostile specs fast and in bounded memory", .serialized)
struct BadSpecCorpusTests {
    static let corpus = "\(Harness.repoRoot)/Tests/Fixtures/bad-specs"
    /// 100 MB, in the KiB that Linux reports ru_maxrss in.
    static let maxPeakKiB = 100_000_000 / 1024
    static let maxWall = 1.0

    // MARK: the faults

    @Test(
        "alias bomb (9 levels × 9 aliases, 9^9 strings): refused at the alias that passes 100,000 values, < 1 s, < 100 MB"
    )
    func aliasBomb() async throws {
        try await refuses("alias-bomb.yaml", at: "15:14", saying: "values once its aliases are expanded")
    }

    @Test("10^9-task grid (9 keys × 10 values): refused from the axis lengths before expansion, < 1 s, < 100 MB")
    func grid1e9() async throws {
        try await refuses(
            "grid-1e9.yaml", at: "4:1",
            saying:
                "the grid expands to 1,000,000,000 tasks, more than the limit of 100,000; shrink the grid or pass --max-tasks N."
        )
    }

    @Test("10^6-task grid (ten times the default limit): refused, < 1 s, < 100 MB")
    func grid1e6() async throws {
        try await refuses("grid-1e6.yaml", at: "4:1", saying: "the grid expands to 1,000,000 tasks")
    }

    @Test("10^20-task grid (overflows Int64): the overflow is detected, not trapped on, < 1 s, < 100 MB")
    func gridOverflow() async throws {
        try await refuses("grid-overflow.yaml", at: "5:1", saying: "more than 9,223,372,036,854,775,807 tasks")
    }

    @Test("stage after a producer of 10^20 tasks: no arithmetic trap in the stage check, < 1 s, < 100 MB")
    func afterOverflow() async throws {
        try await refuses("after-overflow.yaml", at: "9:5", saying: "more than a 64-bit count holds")
    }

    @Test(
        "oversized file (2 MiB, generated here): refused before parsing, naming its size and the limit, < 1 s, < 100 MB"
    )
    func oversized() async throws {
        let dir = Harness.tempDir("oversized")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A valid spec padded by a list of 2 MiB: without the limit all of it is parsed.
        var text = "name: big\nengine: test\ngrid:\n  x: [1]\nstages:\n  train:\n    params:\n      v: [0"
        text += String(repeating: ", 0", count: ((2 << 20) - text.utf8.count - 2) / 3)
        text += String(repeating: " ", count: (2 << 20) - text.utf8.count - 2) + "]\n"
        let path = try Harness.writeSpec(text, in: dir, name: "oversized.yaml")
        #expect(text.utf8.count == 2 << 20)
        try await refuses(
            path, at: nil,
            saying: "'\(path)' is 2 MiB (2,097,152 bytes), more than the 1 MiB (1,048,576 bytes) a sweep spec may be")
    }

    @Test("endless input (/dev/zero): read only up to the size limit, then refused, < 1 s, < 100 MB")
    func endlessInput() async throws {
        try await refuses(
            "/dev/zero", at: nil, saying: "'/dev/zero' holds more than the 1 MiB (1,048,576 bytes) a sweep spec may be")
    }

    @Test("deep nesting (10,000 nested lists): refused with a sentence, not libyaml's wording, < 1 s, < 100 MB")
    func deepNesting() async throws {
        try await refuses("deep-nesting.yaml", at: "9:15", saying: "nested deeper here than the YAML reader accepts")
    }

    @Test("nesting past the 64-level limit (70 lists): refused at the level that passes it, < 1 s, < 100 MB")
    func nestingPastLimit() async throws {
        let dir = Harness.tempDir("nesting")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Harness.writeSpec(
            "name: d\nengine: test\nstages: {a: {params: {v: "
                + String(repeating: "[", count: 70) + "1" + String(repeating: "]", count: 70) + "}}}\n", in: dir)
        try await refuses(path, at: "3:86", saying: "nested more than 64 levels deep here")
    }

    @Test("alias cycle (`&loop [1, *loop]`): refused as a node containing itself, < 1 s, < 100 MB")
    func aliasCycle() async throws {
        try await refuses("alias-cycle.yaml", at: "10:23", saying: "would contain itself without end")
    }

    @Test("self-merging mapping (`<<: *self` inside `&self`): refused as a cycle, < 1 s, < 100 MB")
    func aliasSelfMerge() async throws {
        try await refuses("alias-self-map.yaml", at: "11:11", saying: "would contain itself without end")
    }

    @Test("alias to an anchor never defined: refused at the alias, saying how to define it, < 1 s, < 100 MB")
    func undefinedAlias() async throws {
        try await refuses("undefined-alias.yaml", at: "8:21", saying: "`*nowhere` refers to no anchor above it")
    }

    @Test("1,001 aliases: refused at the first alias past the limit of 1,000, < 1 s, < 100 MB")
    func manyAliases() async throws {
        try await refuses(
            "many-aliases.yaml", at: "1012:9", saying: "alias number 1,001 in this spec, more than the limit of 1,000")
    }

    @Test(
        "wrong types (list for a name, mapping for an axis, text for numbers): each reported at its line, < 1 s, < 100 MB"
    )
    func wrongTypes() async throws {
        let out = try await refuses("wrong-types.yaml", at: "3:7", saying: "`name`: expected text, found a list")
        for place in ["4:35", "6:10", "7:13", "8:9", "9:10"] {
            #expect(out.stderr.contains("wrong-types.yaml:\(place): "), "missing \(place) in: \(out.stderr)")
        }
    }

    @Test("unknown keys at every level: each named at its line with the key meant, < 1 s, < 100 MB")
    func unknownKeys() async throws {
        let out = try await refuses("unknown-keys.yaml", at: "3:47", saying: "did you mean `seed`?")
        for (place, meant) in [("4:1", "grid"), ("7:3", "model"), ("10:5", "params")] {
            #expect(out.stderr.contains("unknown-keys.yaml:\(place): "), "missing \(place) in: \(out.stderr)")
            #expect(out.stderr.contains("did you mean `\(meant)`?"))
        }
    }

    @Test("--max-tasks lowers the limit for validate (refused) and raises it (planned)")
    func maxTasksOption() async throws {
        let dir = Harness.tempDir("maxtasks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = try Harness.writeSpec(
            "name: m\nengine: test\ngrid:\n  x: [1, 2, 3]\n  y: [1, 2, 3, 4]\nstages:\n  train:\n    params: {value: 1}\n",
            in: dir)
        let lowered = try await Self.measure(["validate", path, "--max-tasks", "11"])
        #expect(lowered.exitCode == 1)
        #expect(
            lowered.stderr
                == "\(path):3:1: the grid expands to 12 tasks, more than the limit of 11; shrink the grid or pass --max-tasks N.\n"
        )
        let enough = try await Self.measure(["validate", path, "--max-tasks", "12"])
        #expect(enough.exitCode == 0, "stderr: \(enough.stderr)")
        #expect(enough.stdout.contains("total      12 tasks"))
        let big = try await Self.measure(["validate", "\(Self.corpus)/grid-1e6.yaml", "--max-tasks", "10"])
        #expect(big.stderr.contains("more than the limit of 10;"))
    }

    @Test(
        "the peak RSS measured is the child's own: with this test process holding 256 MiB, a good spec still measures small"
    )
    func measurementIsTheChilds() async throws {
        let size = 256 << 20
        let held = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { held.deallocate() }
        held.initializeMemory(as: UInt8.self, repeating: 1, count: size)  // touched, so resident
        let out = try await Self.measure(["validate", "\(Harness.repoRoot)/sweeps/smoke.yaml"])
        #expect(out.exitCode == 0)
        #expect(out.peakKiB > 1024, "a real figure, not a placeholder: \(out.peakKiB) KiB")
        #expect(out.peakKiB < Self.maxPeakKiB, "peak RSS \(out.peakKiB) KiB")
        #expect(held.load(fromByteOffset: size - 1, as: UInt8.self) == 1)
    }

    // MARK: measuring

    struct Run {
        var exitCode: Int32?
        var signal: Int32?
        var wall: Double
        var peakKiB: Int
        var stdout: String
        var stderr: String
    }

    /// `sparsegrid validate FILE` must exit 1 (not crash) with its first line at `FILE:at:`
    /// (or naming the file when there is no line) and containing `phrase`, within the time and
    /// memory bounds. The time bound gets slack only when a trivial good spec is itself slow to
    /// validate here (a loaded machine, a slow start of the binary), by that much.
    @discardableResult
    func refuses(_ file: String, at location: String?, saying phrase: String) async throws -> Run {
        let path = file.hasPrefix("/") ? file : "\(Self.corpus)/\(file)"
        let baseline = try await Self.measure(["validate", "\(Harness.repoRoot)/sweeps/smoke.yaml"])
        #expect(baseline.exitCode == 0, "the good spec must validate: \(baseline.stderr)")
        let out = try await Self.measure(["validate", path])
        let first = out.stderr.split(separator: "\n").first.map(String.init) ?? ""

        #expect(out.signal == nil, "sparsegrid crashed (signal \(out.signal ?? 0)): \(out.stderr.suffix(2000))")
        #expect(out.exitCode == 1, "exit \(String(describing: out.exitCode)); stderr: \(out.stderr.suffix(2000))")
        #expect(!out.stderr.contains("Fatal error"))
        if let location {
            #expect(first.hasPrefix("\(path):\(location): "), "first line: \(first)")
        } else {
            #expect(first.contains("'\(path)'"), "first line: \(first)")
        }
        #expect(first.contains(phrase), "first line: \(first)")
        #expect(first.hasSuffix("."), "a sentence: \(first)")

        let allowed = Self.maxWall + max(0, baseline.wall - 0.25)
        #expect(
            out.wall < allowed,
            "took \(String(format: "%.3f", out.wall)) s (good spec: \(String(format: "%.3f", baseline.wall)) s; allowed \(String(format: "%.3f", allowed)) s)"
        )
        #expect(
            out.peakKiB < Self.maxPeakKiB,
            "peak RSS \(out.peakKiB) KiB (good spec: \(baseline.peakKiB) KiB; limit \(Self.maxPeakKiB) KiB)")
        return out
    }

    /// Runs the binary with `arguments` under Tests/Fixtures/rusage_run.py, which forks it,
    /// reaps it with wait4 and reports its exit, wall time and rusage.ru_maxrss. (Spawned from
    /// this test process instead, a child's ru_maxrss would include this process's own size:
    /// Linux counts the pre-exec address space, and a spawned child starts in the parent's.)
    static func measure(_ arguments: [String], timeout: Double = 10) async throws -> Run {
        // The bounds measured are validate's own: the engine's describe (a Python start, on a
        // cold cache) is left out by checking against the built-in table of ranges.
        let arguments = arguments.first == "validate" ? arguments + ["--builtin-ranges"] : arguments
        let dir = Harness.tempDir("measure")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outPath = "\(dir)/stdout", errPath = "\(dir)/stderr", reportPath = "\(dir)/report"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "python3", "\(Harness.repoRoot)/Tests/Fixtures/rusage_run.py", outPath, errPath,
                String(timeout), Harness.binary,
            ] + arguments
        FileManager.default.createFile(atPath: reportPath, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: reportPath))
        process.standardError = FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Sleeping, not blocking: system tests must leave the cooperative pool to other tests.
        while process.isRunning { try await Task.sleep(nanoseconds: 5_000_000) }
        let report = Harness.read(reportPath)
        guard process.terminationStatus == 0,
            let json = try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [String: Any],
            let wall = json["wall_s"] as? Double, let peak = json["maxrss_kib"] as? Int
        else { throw HarnessError("rusage_run.py failed (status \(process.terminationStatus)): \(report)") }
        if json["timed_out"] as? Bool == true {
            throw HarnessError(
                "`sparsegrid \(arguments.joined(separator: " "))` ran longer than \(Int(timeout)) s "
                    + "(peak RSS \(peak) KiB); stderr: \(Harness.read(errPath).suffix(2000))")
        }
        return Run(
            exitCode: (json["exit"] as? Int).map(Int32.init), signal: (json["signal"] as? Int).map(Int32.init),
            wall: wall, peakKiB: peak, stdout: Harness.read(outPath), stderr: Harness.read(errPath))
    }
}
