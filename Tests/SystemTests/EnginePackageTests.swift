import Foundation
import Testing

/// The engine as a package: its wheel built from the sources, installed into a fresh venv, and
/// found by a worker on its PATH alone (no --engine, no $SPARSEGRID_PYTHON, started outside the
/// repository), which runs a real training task with it. Then the lookup order itself, each rule
/// against the next, and the error when nothing is found.
///
/// The fresh venv gets torch from the test venv through a `.pth` file (its site-packages on the
/// new venv's path) instead of a 5 GB install; the engine itself comes from the wheel only.
@Suite(
    "The engine as a package: the wheel, the PATH lookup and its order", .serialized,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: Harness.basePython),
        "needs \(Harness.basePython) with torch and setuptools: run `make venv` (make test does)"))
struct EnginePackageTests {
    private static let lookupVariables = ["SPARSEGRID_PYTHON", "SPARSEGRID_ENGINE_DIR"]

    @Test("a worker finds `sparsegrid-engine` installed from the wheel on its PATH and trains with it")
    func installedEngineOnThePath() async throws {
        let dir = Harness.tempDir("enginepkg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (venv, wheel) = try await Self.installWheel(in: dir)
        #expect(wheel.hasSuffix("sparsegrid_engine-\(try Self.cliVersion())-py3-none-any.whl"), "\(wheel)")
        let script = "\(venv)/bin/sparsegrid-engine"
        #expect(FileManager.default.isExecutableFile(atPath: script), "pip install made no console script")

        // The package the venv imports is the installed one, not the source tree.
        let where_ = try await Harness.exec(
            "\(venv)/bin/python", ["-c", "import sparsegrid_engine; print(sparsegrid_engine.__file__)"],
            removing: ["PYTHONPATH"], directory: dir)
        #expect(where_.status == 0, "\(where_.stderr)")
        #expect(where_.stdout.hasPrefix("\(venv)/lib/"), "imported from \(where_.stdout)")

        let state = "\(dir)/state"
        let coordinator = try Harness.start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.5", "--dead-after", "30",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let spec = try Harness.writeSpec(
            """
            name: pkg
            engine: sparsity
            data: {dataset: synthetic, train: 64, test: 32}
            grid:
              model: [resnet18]
            stages:
              train:
                params: {epochs: 1, max_steps: 1, batch_size: 32}
            retries: 0

            """, in: dir)
        let launched = try await Harness.run(
            ["launch", spec, "--coordinator", endpoints.control, "--state", state, "--builtin-ranges"], timeout: 60)
        #expect(launched.status == 0, "\(launched.stderr)")

        // No --engine, no $SPARSEGRID_PYTHON, a PATH with the venv's bin and the system's only,
        // and a working directory outside the repository.
        let workerLog = "\(dir)/W.log"
        let worker = try Harness.start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W",
                "--drain-grace", "0", "--threads", "1",
            ],
            log: workerLog,
            environment: ["PATH": "\(venv)/bin:/usr/bin:/bin", "SPARSEGRID_CACHE": "\(dir)/cache"],
            removing: Self.lookupVariables + ["PYTHONPATH"], directory: dir)
        defer { Harness.kill9(worker) }

        let store = try Harness.store(state)
        try await Harness.waitFor("the train task to end", timeout: 300) {
            guard let row = try store.resultRows(sweep: "pkg", stage: "train").first else { return false }
            return row.state.isFinal
        }
        let log = Harness.read(workerLog)
        let row = try #require(try store.resultRows(sweep: "pkg", stage: "train").first)
        let attempts = try store.attempts(task: row.taskId)
        #expect(
            row.state == .succeeded,
            "the task did not succeed: \(attempts.map { "\($0.outcome): \($0.error ?? "") \($0.stderrTail ?? "")" })\n\(log.suffix(3000))"
        )
        #expect(row.metrics["accuracy"] != nil, "\(row.metrics)")
        #expect(row.details["engine_version"]?.stringValue == (try Self.cliVersion()), "\(row.details)")
        #expect(
            log.contains("engine sparsity: \(script) (`sparsegrid-engine` found on the PATH"),
            "the worker's log does not say it used \(script):\n\(log.prefix(3000))")
        await Harness.stop(worker)
    }

    @Test("lookup order: --engine, then $SPARSEGRID_PYTHON, then the PATH, then the checkout's .venv; else an error")
    func lookupOrder() async throws {
        let dir = Harness.tempDir("enginelookup")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A `sparsegrid-engine` on the PATH that is never run (--no-describe, no coordinator).
        let bin = "\(dir)/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let fake = "\(bin)/sparsegrid-engine"
        try "#!/bin/sh\nexit 3\n".write(toFile: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
        let python = URL(fileURLWithPath: Harness.basePython).standardizedFileURL.path

        func worker(
            _ extra: [String] = [], binary: String = Harness.binary, path: String, python: String? = nil
        ) async throws -> Harness.Output {
            var env = ["PATH": path]
            if let python { env["SPARSEGRID_PYTHON"] = python }
            return try await Harness.exec(
                binary,
                [
                    "worker", "--coordinator", "tcp://127.0.0.1:9", "--connect-timeout", "1", "--no-describe",
                    "--cache", "\(dir)/cache",
                ] + extra, timeout: 60, environment: env, removing: Self.lookupVariables, directory: dir)
        }

        let flag = try await worker(["--engine", "sparsity=/bin/true x"], path: "\(bin):/usr/bin:/bin", python: python)
        #expect(flag.stderr.contains("engine sparsity: `/bin/true x` (from --engine sparsity=…)"), "\(flag.stderr)")

        let env = try await worker(path: "\(bin):/usr/bin:/bin", python: python)
        #expect(
            env.stderr.contains("engine sparsity: `\(python) -m sparsegrid_engine` with the sources in "),
            "\(env.stderr)")
        #expect(env.stderr.contains("(from $SPARSEGRID_PYTHON)"), "\(env.stderr)")

        let onPath = try await worker(path: "\(bin):/usr/bin:/bin")
        #expect(
            onPath.stderr.contains("engine sparsity: \(fake) (`sparsegrid-engine` found on the PATH"),
            "\(onPath.stderr)")

        let venv = URL(fileURLWithPath: "\(Harness.repoRoot)/.venv/bin/python").standardizedFileURL.path
        if FileManager.default.isExecutableFile(atPath: venv) {
            let checkout = try await worker(path: "/usr/bin:/bin")
            #expect(
                checkout.stderr.contains(
                    "engine sparsity: `\(venv) -m sparsegrid_engine` with the sources in \(Harness.repoRoot)/engine "
                        + "(the source checkout's .venv"), "\(checkout.stderr)")
        }

        let bad = try await worker(path: "/usr/bin:/bin", python: "\(dir)/no-such-python")
        #expect(bad.status == 1)
        #expect(
            bad.stderr.contains("SPARSEGRID_PYTHON=\(dir)/no-such-python is not an executable file"), "\(bad.stderr)")

        // Outside any checkout (the binary linked into the temporary folder, started there) and
        // nothing on the PATH: a clear error with the four ways, unless other engines are offered.
        let outside = "\(dir)/sparsegrid"
        do {
            try FileManager.default.linkItem(atPath: Harness.binary, toPath: outside)
        } catch {
            try FileManager.default.copyItem(atPath: Harness.binary, toPath: outside)
        }
        let none = try await worker(binary: outside, path: "/usr/bin:/bin")
        #expect(none.status == 1)
        #expect(none.stderr.contains("error: the sparsity engine (PyTorch) was not found."), "\(none.stderr)")
        for way in [
            "1. --engine sparsity=COMMAND", "2. SPARSEGRID_PYTHON=", "3. `sparsegrid-engine` on the PATH",
            "4. a source checkout",
        ] {
            #expect(none.stderr.contains(way), "\(way) missing from: \(none.stderr)")
        }
        #expect(!none.stderr.contains("slot(s)"), "the worker started without an engine: \(none.stderr)")

        let others = try await worker(["--engine", "test=/bin/true"], binary: outside, path: "/usr/bin:/bin")
        #expect(
            others.stderr.contains("engine sparsity: not offered: the sparsity engine (PyTorch) was not found"),
            "\(others.stderr)")
        #expect(others.stderr.contains("engines: null, test"), "\(others.stderr)")

        let nullOnly = try await worker(["--only", "null"], binary: outside, path: "/usr/bin:/bin")
        #expect(!nullOnly.stderr.contains("engine sparsity"), "\(nullOnly.stderr)")
        #expect(
            nullOnly.stderr.contains("engines: null,") || nullOnly.stderr.contains("engines: null "),
            "\(nullOnly.stderr)")
    }

    static func cliVersion() throws -> String {
        let text = try String(contentsOfFile: "\(Harness.repoRoot)/Sources/sparsegrid/Version.swift", encoding: .utf8)
        let match = try #require(text.firstMatch(of: #/let sparsegridVersion = "([^"]+)"/#))
        return String(match.1)
    }

    /// Builds the wheel from a copy of engine/ (setuptools writes build/ beside the sources),
    /// offline, and installs it into a fresh venv that borrows torch from the test venv.
    static func installWheel(in dir: String) async throws -> (venv: String, wheel: String) {
        let source = "\(dir)/src/engine"
        try FileManager.default.createDirectory(atPath: "\(dir)/src", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(Harness.repoRoot)/engine", toPath: source)
        for leftover in ["build", "sparsegrid_engine.egg-info"] {
            try? FileManager.default.removeItem(atPath: "\(source)/\(leftover)")
        }
        let built = try await Harness.exec(
            Harness.basePython,
            [
                "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", source, "-w",
                "\(dir)/wheel",
            ], timeout: 300, directory: dir)
        try #require(built.status == 0, "pip wheel failed: \(built.stdout.suffix(2000))\n\(built.stderr.suffix(2000))")
        let wheels = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/wheel").filter { $0.hasSuffix(".whl") }
        let wheel = "\(dir)/wheel/\(try #require(wheels.first, "no wheel in \(dir)/wheel"))"

        let venv = try await Self.venv(in: dir, wheel: wheel)
        return (venv, wheel)
    }

    /// A fresh venv in `dir`/venv with `wheel` installed (no dependencies, no index), torch
    /// borrowed from the test venv through a .pth file instead of a 5 GB install. Also used by
    /// DistBundleTests for the bundle's wheel.
    static func venv(in dir: String, wheel: String) async throws -> String {
        let venv = "\(dir)/venv"
        let made = try await Harness.exec(Harness.basePython, ["-m", "venv", "--without-pip", venv], timeout: 120)
        try #require(made.status == 0, "python -m venv failed: \(made.stderr)")
        let paths = try await Harness.exec(
            Harness.basePython,
            ["-c", "import sys; print('\\n'.join(p for p in sys.path if p.endswith('site-packages')))"])
        let purelib = try await Harness.exec(
            "\(venv)/bin/python", ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        try #require(paths.status == 0 && purelib.status == 0, "\(paths.stderr)\(purelib.stderr)")
        let site = purelib.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
        try paths.stdout.write(toFile: "\(site)/zz_sparsegrid_test_base.pth", atomically: true, encoding: .utf8)
        let installed = try await Harness.exec(
            "\(venv)/bin/python", ["-m", "pip", "install", "--no-deps", "--no-index", wheel], timeout: 300,
            removing: ["PYTHONPATH"], directory: dir)
        try #require(
            installed.status == 0,
            "pip install failed: \(installed.stdout.suffix(2000))\n\(installed.stderr.suffix(2000))")
        return venv
    }
}
