import Foundation
import Store
import SweepKit
import Testing

/// `make dist`'s tarball, named by the version in Sources/sparsegrid/Version.swift.
private let distVersion = (try? EnginePackageTests.cliVersion()) ?? "unknown"
private let distName = "sparsegrid-\(distVersion)-linux-x86_64"
private let tarball = "\(Harness.repoRoot)/dist/\(distName).tar.gz"

/// The release bundle (`make dist`) on a host as if it had no Swift toolchain: unpacked into an
/// empty folder, its binary loads no library from the toolchain and every other one from the
/// bundle or glibc's set; a coordinator and a worker started from it, the worker with no
/// toolchain on its PATH, no LD_LIBRARY_PATH and the engine installed from the bundle's wheel,
/// run a train → finetune sweep (a checkpoint handed over); and `make install` lays out the same
/// files. `make test` builds the tarball first; run by hand without it, the suite is skipped.
@Suite(
    "The dist bundle: its layout and libraries, a sweep run from it, make install's tree", .serialized,
    .enabled(
        if: FileManager.default.fileExists(atPath: tarball),
        "no \(tarball): run `make dist` (make test does)"),
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: Harness.basePython),
        "needs \(Harness.basePython) with torch: run `make venv` (make test does)"))
struct DistBundleTests {
    /// glibc's own libraries and the GCC runtime: the only ones the bundle may take from the host
    /// (scripts/dist.sh says why libstdc++ and libgcc_s are among them).
    static let systemLibraries = [
        "linux-vdso.so", "ld-linux", "libc.so", "libm.so", "libmvec.so", "libpthread.so", "libdl.so", "librt.so",
        "libresolv.so", "libutil.so", "libanl.so", "libstdc++.so", "libgcc_s.so",
    ]
    static func isSystemLibrary(_ name: String) -> Bool {
        systemLibraries.contains { name.hasPrefix($0) }
    }

    /// A PATH with the system's directories only: no Swift toolchain.
    static let systemPath = "/usr/local/bin:/usr/bin:/bin"

    private static let hostVariables = ["LD_LIBRARY_PATH", "SPARSEGRID_PYTHON", "SPARSEGRID_ENGINE_DIR", "PYTHONPATH"]

    /// Runs a command (appended) in a private mount namespace where the Swift toolchain's folder
    /// is an empty tmpfs and the system's copy of each library the binaries need beyond glibc's
    /// set is /dev/null: those the bundle carries and those the debug build loads (libzmq and
    /// its dependencies, libsqlite3), so that one the bundle lacks is missed too. As on a host
    /// with neither. Needs root and unshare(1); nil (with the reason) where this host cannot,
    /// and the test then runs on the plain host.
    static func hiddenHost(bundle: String) async throws -> (prefix: [String]?, reason: String) {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            return (nil, "not root or no /usr/bin/unshare")
        }
        // The toolchain: .../usr/bin/swift, found on this process's PATH; its top folder is hidden
        // unless that is / or /usr (a toolchain installed into the system).
        let swift = try await Harness.exec("/bin/sh", ["-c", "command -v swift"])
        let usrBin = URL(fileURLWithPath: swift.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            .resolvingSymlinksInPath().deletingLastPathComponent()
        let top = usrBin.deletingLastPathComponent().deletingLastPathComponent().path
        guard swift.status == 0, usrBin.path.hasSuffix("/usr/bin"), top != "/", top != "/usr", !top.isEmpty else {
            return (nil, "the toolchain is not in a folder of its own (swift: \(swift.stdout))")
        }
        var names = Set(try FileManager.default.contentsOfDirectory(atPath: "\(bundle)/lib/sparsegrid"))
        for (name, path) in try await resolved(Harness.binary) where !isSystemLibrary(name) {
            if let path, !path.hasPrefix(top + "/") { names.insert(name) }
        }
        #expect(names.contains("libzmq.so.5") && names.contains("libsodium.so.23"), "\(names)")
        // $0: the toolchain's folder; $1: the library names; then the command.
        let script = """
            set -e
            mount -t tmpfs sparsegrid-no-toolchain "$0"
            for name in $1; do
              for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib /usr/local/lib; do
                if [ -e "$d/$name" ]; then mount --bind /dev/null "$d/$name"; fi
              done
            done
            shift
            exec "$@"
            """
        let prefix = [
            "-m", "--propagation", "private", "/bin/bash", "-c", script, top, names.sorted().joined(separator: " "),
        ]
        let probe = try await Harness.exec(
            "/usr/bin/unshare",
            prefix + ["/bin/sh", "-c", "ls -A \(top); head -c 1 /usr/lib/x86_64-linux-gnu/libzmq.so.5"])
        guard probe.status == 0 else { return (nil, "unshare -m fails here: \(probe.stderr)") }
        #expect(probe.stdout.isEmpty, "the toolchain's folder or libzmq still shows: \(probe.stdout.prefix(200))")
        return (prefix, "")
    }

    /// Unpacks the tarball into an empty folder; returns the bundle's top directory.
    static func unpack(into dir: String) async throws -> String {
        let target = "\(dir)/unpacked"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
        let untar = try await Harness.exec("/bin/tar", ["-xzf", tarball, "-C", target], timeout: 300)
        try #require(untar.status == 0, "tar failed: \(untar.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target) == [distName], "one top directory")
        return "\(target)/\(distName)"
    }

    /// Every regular file under `root`, relative to it, sorted.
    static func files(under root: String) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: root)
        var found: [String] = []
        while let path = enumerator?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDir), !isDir.boolValue {
                found.append(path)
            }
        }
        return found.sorted()
    }

    /// `readelf -d FILE`'s RUNPATH and RPATH entries and its NEEDED libraries.
    static func dynamicSection(_ file: String) async throws -> (runpath: String?, rpath: String?, needed: [String]) {
        let out = try await Harness.exec("/usr/bin/readelf", ["-d", file])
        try #require(out.status == 0, "readelf -d \(file): \(out.stderr)")
        func values(_ tag: String) -> [String] {
            out.stdout.split(separator: "\n").compactMap { line in
                guard line.contains("(\(tag))"), let open = line.lastIndex(of: "["), let close = line.lastIndex(of: "]")
                else { return nil }
                return String(line[line.index(after: open)..<close])
            }
        }
        return (values("RUNPATH").first, values("RPATH").first, values("NEEDED"))
    }

    /// What `ldd` resolves each library of `binary` to (nil: not found), without LD_LIBRARY_PATH.
    static func resolved(_ binary: String) async throws -> [(name: String, path: String?)] {
        let out = try await Harness.exec(
            "/usr/bin/ldd", [binary], environment: ["PATH": systemPath], removing: ["LD_LIBRARY_PATH"])
        try #require(out.status == 0, "ldd \(binary): \(out.stdout)\(out.stderr)")
        // "NAME => PATH (0x…)", "NAME => not found", "/PATH (0x…)" or "NAME (0x…)" (the vDSO);
        // a path may hold spaces.
        return out.stdout.split(separator: "\n").compactMap { raw in
            let line = raw.trimmingCharacters(in: .whitespaces)
            let address = line.range(of: " (0x", options: .backwards)?.lowerBound ?? line.endIndex
            if let arrow = line.range(of: " => ") {
                let rest = String(line[arrow.upperBound..<max(arrow.upperBound, address)])
                return (String(line[..<arrow.lowerBound]), rest.hasPrefix("not found") ? nil : rest)
            }
            let path = String(line[..<address])
            guard !path.isEmpty else { return nil }
            return path.hasPrefix("/") ? (URL(fileURLWithPath: path).lastPathComponent, path) : (path, nil)
        }
    }

    /// The checks on a laid-out tree (`root`: the bundle's top or an install prefix): the binary
    /// loads each library from root/lib/sparsegrid or glibc's set, none from the toolchain, and
    /// nothing in lib/sparsegrid goes unused; each private library finds its own dependencies
    /// beside itself (RUNPATH $ORIGIN).
    static func checkLibraries(root: String) async throws {
        let binary = "\(root)/bin/sparsegrid"
        let lib = "\(root)/lib/sparsegrid"
        let elf = try await dynamicSection(binary)
        #expect(elf.runpath == "$ORIGIN/../lib/sparsegrid", "RUNPATH \(elf.runpath ?? "none")")
        #expect(elf.rpath == nil, "an RPATH (\(elf.rpath ?? "")) would outrank LD_LIBRARY_PATH")
        let toolchain = elf.needed.filter {
            $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") || $0.hasPrefix("lib_Foundation")
                || $0.hasPrefix("libdispatch") || $0.hasPrefix("libBlocksRuntime")
        }
        #expect(toolchain.isEmpty, "the binary needs the Swift runtime's shared libraries: \(toolchain)")

        let libraries = try await resolved(binary)
        #expect(libraries.contains { $0.name.hasPrefix("libzmq.so") }, "\(libraries)")
        for (name, path) in libraries {
            if name.hasPrefix("linux-vdso") { continue }
            let where_ = try #require(path, "ldd does not find \(name)")
            if Self.isSystemLibrary(name) {
                #expect(!where_.hasPrefix(lib), "\(name) is glibc's, not the bundle's")
                continue
            }
            let real = URL(fileURLWithPath: where_).resolvingSymlinksInPath().path
            #expect(
                real == URL(fileURLWithPath: "\(lib)/\(name)").resolvingSymlinksInPath().path,
                "\(name) comes from \(where_), not from the bundle's lib/sparsegrid")
        }
        let bundled = try FileManager.default.contentsOfDirectory(atPath: lib).sorted()
        let used = Set(libraries.map(\.name))
        #expect(bundled.allSatisfy { used.contains($0) }, "unused: \(bundled.filter { !used.contains($0) })")
        for name in bundled {
            let runpath = try await dynamicSection("\(lib)/\(name)").runpath
            #expect(runpath == "$ORIGIN", "\(name) has RUNPATH \(runpath ?? "none")")
        }
    }

    @Test("the bundle: one top directory, the layout, RUNPATH, libraries from itself or glibc, no libswift")
    func layoutAndLibraries() async throws {
        let dir = Harness.tempDir("dist-layout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = try await Self.unpack(into: dir)
        let files = Self.files(under: root)
        let wheel = "share/sparsegrid/wheels/sparsegrid_engine-\(distVersion)-py3-none-any.whl"
        for expected in ["bin/sparsegrid", "share/man/man1/sparsegrid.1", wheel, "INSTALL"] {
            #expect(files.contains(expected), "\(expected) missing: \(files)")
        }
        #expect(files.filter { $0.hasPrefix("share/sparsegrid/wheels/") } == [wheel])
        #expect(FileManager.default.isExecutableFile(atPath: "\(root)/bin/sparsegrid"))
        #expect(
            files.allSatisfy {
                ["bin/", "lib/sparsegrid/", "share/man/man1/", "share/sparsegrid/wheels/", "share/sparsegrid/deploy/"]
                    .contains(where: $0.hasPrefix) || $0 == "INSTALL"
            }, "a file outside the layout: \(files)")
        // deploy/ is copied whole, byte for byte.
        let deploy = Self.files(under: "\(Harness.repoRoot)/deploy")
        #expect(!deploy.isEmpty)
        #expect(
            files.filter { $0.hasPrefix("share/sparsegrid/deploy/") } == deploy.map { "share/sparsegrid/deploy/\($0)" })
        for file in deploy {
            #expect(
                FileManager.default.contentsEqual(
                    atPath: "\(Harness.repoRoot)/deploy/\(file)", andPath: "\(root)/share/sparsegrid/deploy/\(file)"),
                "\(file) differs from deploy/")
        }
        #expect(
            FileManager.default.contentsEqual(
                atPath: "\(Harness.repoRoot)/docs/sparsegrid.1", andPath: "\(root)/share/man/man1/sparsegrid.1"))
        let install = Harness.read("\(root)/INSTALL")
        #expect(install.contains("sparsegrid \(distVersion) for Linux"), "\(install.prefix(200))")
        #expect(!install.contains("@"), "an unfilled placeholder in INSTALL")

        try await Self.checkLibraries(root: root)

        // It runs with the system's PATH alone and no LD_LIBRARY_PATH.
        let version = try await Harness.exec(
            "\(root)/bin/sparsegrid", ["--version"], environment: ["PATH": Self.systemPath],
            removing: Self.hostVariables, directory: dir)
        #expect(version.status == 0, "\(version.stderr)")
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == distVersion)

        // The tarball's entries: sorted, owned by root.
        let listing = try await Harness.exec("/bin/tar", ["--numeric-owner", "-tvzf", tarball], timeout: 300)
        try #require(listing.status == 0)
        let entries = listing.stdout.split(separator: "\n")
        #expect(entries.allSatisfy { $0.split(separator: " ")[1] == "0/0" }, "\(entries.prefix(3))")
        let names = entries.compactMap { $0.split(separator: " ").last.map(String.init) }
        #expect(names == names.sorted(), "entries not in sorted order")
    }

    @Test("a worker from the bundle, no toolchain on its PATH, runs a train → finetune sweep with the bundle's wheel")
    func workerFromTheBundle() async throws {
        let dir = Harness.tempDir("dist-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = try await Self.unpack(into: dir)
        let bundleBin = "\(root)/bin"
        let binary = "\(bundleBin)/sparsegrid"
        let venv = try await Self.venv(
            in: dir, wheel: "\(root)/share/sparsegrid/wheels/sparsegrid_engine-\(distVersion)-py3-none-any.whl")
        let script = "\(venv)/bin/sparsegrid-engine"
        #expect(FileManager.default.isExecutableFile(atPath: script), "pip install made no console script")

        // The worker's PATH: the bundle's bin, the venv's bin, the system's. No `swift` on it.
        let path = "\(bundleBin):\(venv)/bin:\(Self.systemPath)"
        #expect(!path.contains("/opt/swift"))
        for entry in path.split(separator: ":") {
            #expect(!FileManager.default.isExecutableFile(atPath: "\(entry)/swift"), "swift in \(entry)")
        }
        let which = try await Harness.exec(
            "/bin/sh", ["-c", "command -v swift || echo no swift"], environment: ["PATH": path], directory: dir)
        #expect(which.stdout == "no swift\n", "swift found on the worker's PATH: \(which.stdout)")
        let environment = ["PATH": path, "SPARSEGRID_CACHE": "\(dir)/cache", "HOME": dir]

        // Where it can, the coordinator and the worker run where neither the toolchain nor the
        // system's libzmq (and the rest the bundle carries) can be loaded.
        let hidden = try await Self.hiddenHost(bundle: root)
        if hidden.prefix == nil {
            print("DistBundleTests: the sweep runs on the plain host (\(hidden.reason)); ldd's check stands alone")
        } else {
            print(
                "DistBundleTests: the sweep runs with the toolchain and the system's copies of the bundle's libraries hidden"
            )
        }
        func start(_ arguments: [String], log: String) throws -> Process {
            if let prefix = hidden.prefix {
                return try Harness.start(
                    prefix + [binary] + arguments, log: log, environment: environment, removing: Self.hostVariables,
                    directory: dir, executable: "/usr/bin/unshare")
            }
            return try Harness.start(
                arguments, log: log, environment: environment, removing: Self.hostVariables, directory: dir,
                executable: binary)
        }

        let state = "\(dir)/state"
        let coordinator = try start(
            [
                "coordinator", "--state", state, "--bind", "tcp://127.0.0.1:*",
                "--control", "tcp://127.0.0.1:*", "--heartbeat", "0.5", "--dead-after", "30",
            ],
            log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        // A coordinator that cannot start (a library it cannot load) fails the test at once, with its log.
        try await Harness.waitFor("the coordinator to bind or exit") {
            !coordinator.isRunning || FileManager.default.fileExists(atPath: "\(state)/coordinator.json")
        }
        try #require(
            coordinator.isRunning, "the coordinator exited: \(Harness.read("\(dir)/coordinator.log").suffix(2000))")
        let endpoints = try await Harness.coordinatorEndpoints(state)
        let spec = try Harness.writeSpec(
            """
            name: dist
            engine: sparsity
            data: {dataset: synthetic, train: 64, test: 32}
            grid:
              model: [resnet18]
            stages:
              train:
                params: {epochs: 1, max_steps: 1, batch_size: 32}
              finetune:
                after: train
                grid: {method: [nm_2_4]}
                params: {epochs: 1, max_steps: 1, batch_size: 32}
            methods:
              nm_2_4: {kind: n_m, n: 2, m: 4, skip: [first, last]}
            retries: 0

            """, in: dir)
        let launched = try await Harness.exec(
            binary, ["launch", spec, "--coordinator", endpoints.control, "--state", state, "--builtin-ranges"],
            timeout: 60, environment: environment, removing: Self.hostVariables, directory: dir)
        #expect(launched.status == 0, "\(launched.stderr)")

        let workerLog = "\(dir)/W.log"
        let worker = try start(
            [
                "worker", "--coordinator", endpoints.workers, "--id", "W", "--cache", "\(dir)/W",
                "--drain-grace", "0", "--threads", "1",
            ],
            log: workerLog)
        defer { Harness.kill9(worker) }

        let store = try Harness.store(state)
        let plan = try #require(try store.plan(sweep: "dist"))
        #expect(plan.tasks.map(\.stage).sorted() == ["finetune", "train"], "\(plan.tasks.map(\.stage))")
        try await Harness.waitFor("every task of the sweep to end (or the worker to exit)", timeout: 600) {
            let rows = try store.resultRows(sweep: "dist")
            return !worker.isRunning || (rows.count == plan.tasks.count && rows.allSatisfy { $0.state.isFinal })
        }
        let log = Harness.read(workerLog)
        try #require(worker.isRunning, "the worker exited: \(log.suffix(3000))")
        #expect(
            log.contains("engine sparsity: \(script) (`sparsegrid-engine` found on the PATH"),
            "the worker's log does not say it used \(script):\n\(log.prefix(3000))")

        // Every task: succeeded, on its one attempt, by W, its result stored once.
        let rows = try store.resultRows(sweep: "dist")
        #expect(Set(rows.map(\.taskId)) == Set(plan.tasks.map(\.id)))
        #expect(rows.count == plan.tasks.count)
        for row in rows {
            let attempts = try store.attempts(task: row.taskId)
            #expect(
                row.state == .succeeded,
                "\(row.stage) did not succeed: \(attempts.map { "\($0.outcome): \($0.error ?? "") \($0.stderrTail ?? "")" })\n\(log.suffix(3000))"
            )
            #expect(attempts.count == 1 && attempts.allSatisfy { $0.workerId == "W" }, "\(attempts)")
            #expect(row.metrics["accuracy"] != nil, "\(row.stage): \(row.metrics)")
            #expect(row.details["engine_version"]?.stringValue == distVersion, "\(row.details)")
        }
        #expect(try store.countResults(sweep: "dist") == plan.tasks.count)
        // The finetune task consumed the train task's checkpoint.
        let train = try #require(plan.tasks.first { $0.stage == "train" })
        let finetune = try #require(plan.tasks.first { $0.stage == "finetune" })
        #expect(finetune.inputs["train"] == train.id)
        let trainRow = try #require(rows.first { $0.taskId == train.id })
        #expect(!trainRow.artifacts.isEmpty, "the train task stored no checkpoint")

        // The bundle's `results` says the same: one row per task, each succeeded.
        let results = try await Harness.exec(
            binary, ["results", "dist", "--state", state, "--format", "json"], environment: environment,
            removing: Self.hostVariables, directory: dir)
        #expect(results.status == 0, "\(results.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(results.stdout.utf8)) as? [[String: Any]]
        let listed = try #require(json, "results --format json: \(results.stdout.prefix(500))")
        #expect(listed.count == plan.tasks.count, "\(listed)")
        #expect(listed.allSatisfy { ($0["state"] as? String) == "succeeded" }, "\(listed)")
        #expect(listed.allSatisfy { ($0["attempts"] as? NSNumber)?.intValue == 1 }, "\(listed)")
        await Harness.stop(worker)
        await Harness.stop(coordinator)
    }

    @Test("make install PREFIX=… lays out the bundle's files (less INSTALL) from the same binary")
    func installMatchesTheBundle() async throws {
        // The binary the tarball was made from. Named by its full path, so that make installs it
        // as it is: a nested `swift build` would wait for the lock `swift test` holds on .build.
        // -o .venv/.installed: the venv the suite needs is there (make test made it); make is
        // not to reinstall its requirements from a test.
        let release = "\(Harness.repoRoot)/.build/release/sparsegrid"
        try #require(FileManager.default.isExecutableFile(atPath: release), "no \(release): run `make dist`")
        let dir = Harness.tempDir("dist-install")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = try await Self.unpack(into: dir)
        #expect(
            FileManager.default.contentsEqual(atPath: release, andPath: "\(root)/bin/sparsegrid"),
            "the tarball's binary is not \(release): run `make dist` again")
        let prefix = "\(dir)/pre fix"  // a space: the paths are quoted
        let made = try await Harness.exec(
            "/usr/bin/env",
            ["make", "-s", "-o", ".venv/.installed", "install", "PREFIX=\(prefix)", "INSTALL_BIN=\(release)"],
            timeout: 300, directory: Harness.repoRoot, mergeStderr: true)
        #expect(made.status == 0, "\(made.stdout)")
        #expect(Self.files(under: prefix) == Self.files(under: root).filter { $0 != "INSTALL" })
        try await Self.checkLibraries(root: prefix)
        let removed = try await Harness.exec(
            "/usr/bin/env", ["make", "-s", "uninstall", "PREFIX=\(prefix)"], directory: Harness.repoRoot,
            mergeStderr: true)
        #expect(removed.status == 0, "\(removed.stdout)")
        #expect(Self.files(under: prefix).isEmpty, "left after uninstall: \(Self.files(under: prefix))")
    }

    /// A fresh venv with the wheel installed from `wheel`, torch borrowed from the test venv
    /// (EnginePackageTests.venv), that imports the engine from the wheel.
    static func venv(in dir: String, wheel: String) async throws -> String {
        let venv = try await EnginePackageTests.venv(in: dir, wheel: wheel)
        // The engine the venv imports is the wheel's, not the source tree's.
        let imported = try await Harness.exec(
            "\(venv)/bin/python", ["-c", "import sparsegrid_engine; print(sparsegrid_engine.__file__)"],
            removing: ["PYTHONPATH"], directory: dir)
        #expect(imported.stdout.hasPrefix("\(venv)/lib/"), "imported from \(imported.stdout) \(imported.stderr)")
        return venv
    }
}
