import Foundation
import Testing

/// deploy/ cannot run here: no systemd as PID 1, no Slurm, no container engine, no cluster. These
/// tests check what can be checked (deploy/README.md says the same): `systemd-analyze verify` on
/// the units, `shellcheck` on the scripts, every manifest parsed, and every `sparsegrid` command
/// line in every file cross-checked against the CLI's own option list and the ports, volumes,
/// secrets and stop timeouts around it. Each check is also shown failing on a planted mistake.
@Suite("deploy/ files are valid and agree with the CLI")
struct DeployChecksTests {
    static func fail(_ problems: [String]) {
        for p in problems { Issue.record(Comment(rawValue: p)) }
    }

    static func tool(_ path: String) -> Bool {
        let found = FileManager.default.isExecutableFile(atPath: path)
        if !found {
            Issue.record("\(path) is missing: `make deps` installs it (APT_PACKAGES: shellcheck, systemd)")
        }
        return found
    }

    // MARK: Coverage

    @Test("every file under deploy/ is covered by a check")
    func coverage() throws {
        let files = DeployChecks.deployFiles()
        #expect(files.count >= 12, "deploy/ has \(files.count) files")
        for f in files {
            #expect(DeployChecks.checkFor(f) != nil, "\(f) is covered by no check in DeployChecksTests: add one")
        }
        // Every kind of check has files, so none passes on nothing.
        for check in [
            "systemd unit", "sysusers", "env file", "slurm", "containerfile", "compose", "kubernetes", "readme",
        ] {
            #expect(!DeployChecks.files(check).isEmpty, "no file for the \(check) check")
        }
        // A new file nobody checks is caught.
        #expect(DeployChecks.checkFor("deploy/nomad/job.hcl") == nil)
    }

    @Test("every sparsegrid command line in every deploy/ file uses only options its subcommand has")
    func flagsInEveryFile() async throws {
        let cli = try await DeployChecks.loadCLI()
        #expect(cli.options["coordinator"]?["--bind"] == true && cli.options["worker"]?["--drain-grace"] == true)
        var total = 0
        for f in DeployChecks.deployFiles() {
            let calls = DeployChecks.textInvocations(file: f, text: try DeployChecks.read(f), cli: cli)
            total += calls.count
            for call in calls { Self.fail(DeployChecks.flagProblems(call, cli: cli)) }
        }
        #expect(total >= 20, "only \(total) command lines found in deploy/")
    }

    /// The same check on the docs a user copies commands from: the README, the bundle's INSTALL,
    /// docs/*.md. A flag renamed in the CLI and not in them fails here.
    @Test("every sparsegrid command line in README.md, scripts/INSTALL.dist and docs/*.md uses only real options")
    func flagsInTheDocs() async throws {
        let cli = try await DeployChecks.loadCLI()
        let docs = (try FileManager.default.contentsOfDirectory(atPath: "\(Harness.repoRoot)/docs"))
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
        var total = 0
        for f in ["README.md", "scripts/INSTALL.dist"] + docs {
            let calls = DeployChecks.textInvocations(file: f, text: try DeployChecks.read(f), cli: cli)
            total += calls.count
            for call in calls { Self.fail(DeployChecks.flagProblems(call, cli: cli)) }
        }
        #expect(total >= 40, "only \(total) command lines found in the docs")
        // The check itself: a planted unknown option in README-style text is reported.
        let planted = DeployChecks.textInvocations(
            file: "README.md", text: "sparsegrid worker --coordinator tcp://h:5555 --per-gpus 4", cli: cli)
        #expect(planted.flatMap { DeployChecks.flagProblems($0, cli: cli) }.contains { $0.contains("--per-gpus") })
    }

    // MARK: systemd

    static func units() throws -> [(name: String, text: String)] {
        try DeployChecks.files("systemd unit").map { (($0 as NSString).lastPathComponent, try DeployChecks.read($0)) }
    }

    @Test("systemd-analyze verify accepts the units, with nothing to say")
    func systemdVerify() async throws {
        guard Self.tool("/usr/bin/systemd-analyze") else { return }
        Self.fail(try await DeployChecks.systemdVerify(units: try Self.units()))
    }

    @Test("systemd-analyze verify: a misspelt directive, a bad value and a missing binary fail")
    func systemdVerifyCatches() async throws {
        guard Self.tool("/usr/bin/systemd-analyze") else { return }
        let units = try Self.units()
        let coordinator = try #require(units.first { $0.name == "sparsegrid-coordinator.service" })
        for (from, to) in [
            ("ProtectSystem=strict", "ProtectSytem=strict"), ("KillMode=mixed", "KillMode=sometimes"),
            ("ExecStart=/usr/local/bin/sparsegrid", "ExecStart=/nonexistent/sparsegrid"),
        ] {
            let bad = coordinator.text.replacingOccurrences(of: from, with: to)
            #expect(bad != coordinator.text)
            let problems = try await DeployChecks.systemdVerify(units: [(coordinator.name, bad)])
            #expect(!problems.isEmpty, "verify let `\(to)` through")
        }
    }

    @Test("the units: credentials loaded and used, their user made, state persisted, drain fits the stop timeout")
    func unitRules() async throws {
        let cli = try await DeployChecks.loadCLI()
        let sysusers = try DeployChecks.read("deploy/systemd/sparsegrid.sysusers.conf")
        let units = try Self.units()
        #expect(units.count == 2)
        for unit in units {
            Self.fail(DeployChecks.unitProblems(file: unit.name, text: unit.text, sysusers: sysusers, cli: cli))
        }
        // Planted mistakes, one per rule.
        let worker = try #require(units.first { $0.name == "sparsegrid-worker@.service" })
        let coordinator = try #require(units.first { $0.name == "sparsegrid-coordinator.service" })
        let plants: [(String, String, String, String)] = [
            (worker.text, "TimeoutStopSec=90", "TimeoutStopSec=65", "does not exceed --drain-grace"),
            (worker.text, "KillMode=mixed\n", "", "KillMode=mixed is missing"),
            (worker.text, "--drain-grace 60", "--drain-grace 60 --drain-grace2 1", "has no option --drain-grace2"),
            (worker.text, "LoadCredential=worker.key:", "LoadCredential=worker2.key:", "no LoadCredential=worker.key"),
            (coordinator.text, "--state /var/lib/sparsegrid", "--state /srv/sg", "would not persist"),
            (coordinator.text, "User=sparsegrid", "User=nobody2", "not made by the sysusers.d file"),
            (coordinator.text, "--bind tcp://0.0.0.0:5555", "--bind tcp://0.0.0.0:6000", "does not name port 6000"),
        ]
        for (text, from, to, expected) in plants {
            let bad = text.replacingOccurrences(of: from, with: to)
            #expect(bad != text, "the plant \(from) found nothing to replace")
            let problems = DeployChecks.unitProblems(file: "planted", text: bad, sysusers: sysusers, cli: cli)
            #expect(problems.contains { $0.contains(expected) }, "planting `\(to)`: \(problems)")
        }
    }

    @Test("the env file example sets only variables a unit or the worker reads")
    func envFile() async throws {
        let env = try DeployChecks.read("deploy/systemd/sparsegrid.env.example")
        let units = try Self.units().map(\.text).joined(separator: "\n")
        let help = try await Harness.run(["worker", "--help"]).stdout
        let names = env.split(separator: "\n").compactMap { line -> String? in
            let l = line.hasPrefix("# ") ? line.dropFirst(2) : line
            guard let eq = l.firstIndex(of: "="), l[..<eq].allSatisfy({ $0.isUppercase || $0 == "_" }) else {
                return nil
            }
            return String(l[..<eq])
        }
        #expect(names.contains("SPARSEGRID_COORDINATOR"))
        for n in names {
            #expect(units.contains("${\(n)}") || units.contains("$\(n)") || help.contains(n), "\(n) is read by nobody")
        }
        #expect(units.contains("EnvironmentFile=-/etc/sparsegrid/sparsegrid.env"))
    }

    // MARK: Shell and Slurm

    static func shellScripts() -> [String] {
        var paths = (DeployChecks.files("slurm") + DeployChecks.files("shell")).map { "\(Harness.repoRoot)/\($0)" }
        let scripts = "\(Harness.repoRoot)/scripts"
        for f in (try? FileManager.default.contentsOfDirectory(atPath: scripts)) ?? [] where f.hasSuffix(".sh") {
            paths.append("\(scripts)/\(f)")
        }
        return paths
    }

    @Test("shellcheck passes every shell script under deploy/ (and scripts/*.sh)")
    func shellcheck() async throws {
        guard Self.tool("/usr/bin/shellcheck") else { return }
        let scripts = Self.shellScripts()
        #expect(scripts.count >= 2)
        for path in scripts {
            Self.fail(try await DeployChecks.shellcheck(path))
            let syntax = try await Harness.exec("/bin/bash", ["-n", path])
            #expect(syntax.status == 0, "bash -n \(path): \(syntax.stderr)")
        }
    }

    @Test("shellcheck fails a script with a planted mistake")
    func shellcheckCatches() async throws {
        guard Self.tool("/usr/bin/shellcheck") else { return }
        let text = try DeployChecks.read("deploy/slurm/sweep.sbatch")
        let dir = Harness.tempDir("shellcheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // SC2174: with -p, -m applies only to the deepest directory.
        let bad = text.replacingOccurrences(of: "mkdir -m 700 \"$KEYS\"", with: "mkdir -m 700 -p \"$KEYS\"")
        #expect(bad != text)
        try bad.write(toFile: "\(dir)/bad.sbatch", atomically: true, encoding: .utf8)
        #expect(!(try await DeployChecks.shellcheck("\(dir)/bad.sbatch")).isEmpty, "`mkdir -m 700 -p` passed")
    }

    @Test("Slurm: workers drain within KillWait with stable ids, the signal is trapped, one port")
    func slurm() async throws {
        let cli = try await DeployChecks.loadCLI()
        let files = DeployChecks.files("slurm")
        #expect(files.contains("deploy/slurm/workers.sbatch") && files.contains("deploy/slurm/sweep.sbatch"))
        for f in files { Self.fail(DeployChecks.slurmProblems(file: f, text: try DeployChecks.read(f), cli: cli)) }
        let sweep = try DeployChecks.read("deploy/slurm/sweep.sbatch")
        #expect(sweep.contains("#SBATCH --requeue"))
        let plants: [(String, String, String)] = [
            ("--drain-grace 20", "--drain-grace 45", "KillWait"),
            ("trap on_time_limit USR1", "trap on_time_limit USR2", "no trap handles it"),
            ("\"tcp://$HEAD:$PORT\"", "\"tcp://$HEAD:5555\"", "different ports"),
            ("--id \"$(hostname -s)-gpu$SLURM_LOCALID\"", "", "no --id"),
            ("--gpus 0", "--gpu 0", "has no option --gpu"),
        ]
        for (from, to, expected) in plants {
            let bad = sweep.replacingOccurrences(of: from, with: to)
            #expect(bad != sweep, "the plant \(from) found nothing to replace")
            let problems = DeployChecks.slurmProblems(file: "planted", text: bad, cli: cli)
            #expect(problems.contains { $0.contains(expected) }, "planting `\(to)`: \(problems)")
        }
    }

    /// sweep.sbatch itself, run by bash with stand-ins for `srun` (runs the task script once,
    /// as local task 0) and `scontrol` (records its arguments): the coordinator, one worker and
    /// the launch start; SIGUSR1 (what `#SBATCH --signal=B:USR1@300` sends before the time limit)
    /// makes it drain the worker — the task it runs finishes — stop the coordinator and ask for a
    /// requeue; the requeued run resumes from the state directory without rerunning finished
    /// tasks, waits for the sweep and writes the report. Slurm itself is not here.
    @Test("sweep.sbatch under a stand-in srun: runs, requeues itself on the time-limit signal, resumes and reports")
    func sweepScriptRequeue() async throws {
        let dir = Harness.tempDir("sweep-sbatch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bin = "\(dir)/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let stands: [(String, String)] = [
            ("srun", "#!/usr/bin/env bash\nwhile [[ \"$1\" == --* ]]; do shift; done\nSLURM_LOCALID=0 exec \"$@\"\n"),
            ("scontrol", "#!/usr/bin/env bash\necho \"$*\" >> \"$FAKE_SLURM_LOG\"\n"),
            ("test-engine", "#!/bin/sh\nexec python3 \(Harness.repoRoot)/Tests/Fixtures/test_engine.py \"$@\"\n"),
        ]
        for (name, text) in stands {
            try text.write(toFile: "\(bin)/\(name)", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(bin)/\(name)")
        }
        let spec = try Harness.writeSpec(
            Harness.testSpec(
                name: "slurm", xs: [1, 2, 3], trainParams: "sleep: 1.5, artifact_bytes: 20000", finetune: "value: 2"),
            in: dir)
        let state = "\(dir)/state"
        let port = try Harness.freePortPair()
        var env = [
            "PATH": "\(bin):" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            "FAKE_SLURM_LOG": "\(dir)/scontrol.log", "SLURM_JOB_ID": "7", "SLURM_RESTART_COUNT": "0",
            "SLURM_SUBMIT_DIR": Harness.repoRoot, "SPARSEGRID": Harness.binary, "SPARSEGRID_PORT": "\(port)",
            "SPARSEGRID_POLL": "0.2", "TMPDIR": dir,
            "SPARSEGRID_WORKER_OPTS": "--engine test=\(bin)/test-engine --only test",
        ]
        let script = "\(Harness.repoRoot)/deploy/slurm/sweep.sbatch"
        // The ports the script derives from SPARSEGRID_PORT (control +2, HTTP +3) must be free too.
        #expect(Harness.canBind(port + 2) && Harness.canBind(port + 3))

        // bash cannot trap a signal that was ignored when it started, and this test process may
        // ignore or block SIGUSR1 (Process passes that on); slurmstepd starts the batch script
        // with default dispositions, so the script is started that way here, through Python, in
        // a process group of its own.
        let reset =
            "import os, signal, sys; signal.signal(signal.SIGUSR1, signal.SIG_DFL); "
            + "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
            + "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1, signal.SIGTERM}); "
            + "os.setpgrp(); os.execv('/bin/bash', ['bash'] + sys.argv[1:])"
        let first = try Harness.start(
            ["-c", reset, script, spec, state], log: "\(dir)/first.log", environment: env,
            executable: "/usr/bin/python3")
        // Its own process group, so a failed run leaves no coordinator or worker behind.
        defer { kill(-first.processIdentifier, SIGKILL) }
        try await Harness.waitFor("the first task to succeed", timeout: 60) {
            guard FileManager.default.fileExists(atPath: "\(state)/sparsegrid.db") else { return false }
            return try Harness.store(state).resultRows(sweep: "slurm").contains { $0.state == .succeeded }
        }
        kill(first.processIdentifier, SIGUSR1)
        try await Harness.waitFor("the script to stop and requeue", timeout: 60) { !first.isRunning }
        let firstLog = Harness.read("\(dir)/first.log")
        #expect(first.terminationStatus == 0, "\(firstLog.suffix(3000))")
        #expect(Harness.read("\(dir)/scontrol.log") == "requeue 7\n")
        #expect(firstLog.contains("saying bye"), "the worker did not drain: \(firstLog.suffix(2000))")
        #expect(!FileManager.default.fileExists(atPath: "\(state)/coordinator.json"), "the coordinator still runs")
        let before = try Harness.store(state).resultRows(sweep: "slurm")
        let done = Set(before.filter { $0.state == .succeeded }.map(\.taskId))
        #expect(!done.isEmpty && done.count < 6, "\(before.map(\.state))")
        // No attempt is left running: the drain let it finish or reported it stopped.
        #expect(!before.contains { $0.state == .running }, "\(before.map(\.state))")

        env["SLURM_RESTART_COUNT"] = "1"
        let second = try await Harness.exec("/bin/bash", [script, spec, state], timeout: 120, environment: env)
        #expect(second.status == 0, "\(second.stdout.suffix(2000))\n\(second.stderr.suffix(2000))")
        #expect(second.stdout.contains("sweep slurm: 0 new, 6 reused"))
        #expect(second.stdout.contains("sweep slurm finished; report in \(state)/report"))
        #expect(FileManager.default.fileExists(atPath: "\(state)/report/report.html"))
        let after = try Harness.store(state).resultRows(sweep: "slurm")
        #expect(after.count == 6 && after.allSatisfy { $0.state == .succeeded }, "\(after.map(\.state))")
        for row in after where done.contains(row.taskId) {
            #expect(row.attempts == 1, "\(row.taskId) finished before the requeue and ran again")
        }
        #expect(Harness.read("\(dir)/scontrol.log") == "requeue 7\n", "the finished job asked for a requeue")
    }

    // MARK: Containers

    @Test("Containerfiles install the dist bundle and the wheel, expose the coordinator's ports, start real commands")
    func containerfiles() async throws {
        let cli = try await DeployChecks.loadCLI()
        let files = DeployChecks.files("containerfile")
        #expect(Set(files) == ["deploy/container/Containerfile.coordinator", "deploy/container/Containerfile.worker"])
        for f in files {
            let (problems, call) = DeployChecks.containerfileProblems(file: f, text: try DeployChecks.read(f), cli: cli)
            Self.fail(problems)
            #expect(call != nil)
            // Every RUN is valid sh (what `podman build` runs it with).
            for (_, body) in DeployChecks.instructions(try DeployChecks.read(f)).filter({ $0.0 == "RUN" }) {
                let syntax = try await Harness.exec("/bin/sh", ["-n", "-c", body])
                #expect(syntax.status == 0, "\(f): RUN \(body): \(syntax.stderr)")
            }
        }
        let unclosed = try await Harness.exec("/bin/sh", ["-n", "-c", "tar -xzf \"/tmp/x.tar.gz && rm /tmp/x"])
        #expect(unclosed.status != 0, "sh -n passed an unclosed quote")
        let text = try DeployChecks.read("deploy/container/Containerfile.coordinator")
        for (from, to, expected) in [
            ("EXPOSE 5555 5556 8080", "EXPOSE 5555 8080", "does not EXPOSE it"),
            ("\"--http\", \"0.0.0.0:8080\"", "\"--http\", \"0.0.0.0:9090\"", "does not EXPOSE it"),
            ("\"--log-format\"", "\"--log-fmt\"", "has no option --log-fmt"),
            ("--strip-components=1", "--strip-components=2", "--strip-components=1"),
            ("-linux-x86_64.tar.gz", "-linux-aarch64.tar.gz", "ARG BUNDLE="),
        ] {
            let bad = text.replacingOccurrences(of: from, with: to)
            #expect(bad != text, "the plant \(from) found nothing to replace")
            let problems = DeployChecks.containerfileProblems(file: "planted", text: bad, cli: cli).problems
            #expect(problems.contains { $0.contains(expected) }, "planting `\(to)`: \(problems)")
        }
    }

    @Test("compose.yaml parses; ports, secrets, the state volume and worker stops agree with the commands")
    func compose() async throws {
        let cli = try await DeployChecks.loadCLI()
        let file = "deploy/container/compose.yaml"
        let text = try DeployChecks.read(file)
        Self.fail(try DeployChecks.compose(file: file, text: text, cli: cli))
        for (from, to, expected) in [
            ("--slots=2, --threads=2, --id=worker-1", "--slotz=2, --threads=2, --id=worker-1", "no option --slotz"),
            ("expose: [\"5555\", \"5556\"]", "expose: [\"5555\"]", "listens on 5556"),
            (
                "--coordinator=tcp://coordinator:5555, --slots=2, --threads=2, --id=worker-2",
                "--coordinator=tcp://coordinator:5559, --slots=2, --threads=2, --id=worker-2", "connects to port 5559"
            ),
            ("--id=worker-2", "--id=worker-1", "share an --id"),
            ("  - state:/var/lib/sparsegrid", "  - ../state:/srv/elsewhere", "is not a volume"),
            (
                "secrets: [coord_key, workers_txt, http_token]", "secrets: [coord_key, http_token]",
                "reads /run/secrets/workers_txt unmounted"
            ),
            ("  stop_grace_period: 90s", "  stop_grace_period: 30s", "stop_grace_period"),
        ] {
            let bad = text.replacingOccurrences(of: from, with: to)
            #expect(bad != text, "the plant \(from) found nothing to replace")
            let problems = try DeployChecks.compose(file: "planted", text: bad, cli: cli)
            #expect(problems.contains { $0.contains(expected) }, "planting `\(to)`: \(problems)")
        }
    }

    // MARK: Kubernetes

    static func manifests() throws -> [(name: String, text: String)] {
        try DeployChecks.files("kubernetes").map { ($0, try DeployChecks.read($0)) }
    }

    @Test("Kubernetes manifests parse; ports, Services, Secrets, the volume, probes and annotations agree")
    func kubernetes() async throws {
        let cli = try await DeployChecks.loadCLI()
        let files = try Self.manifests()
        #expect(files.count >= 3)
        Self.fail(try DeployChecks.kubernetes(files: files, cli: cli))
        let plants: [(String, String, String, String)] = [
            (
                "coordinator.yaml", "{name: artifacts, containerPort: 5556}", "{name: artifacts, containerPort: 5558}",
                "listens on 5556"
            ),
            (
                "coordinator.yaml", "{name: artifacts, port: 5556, targetPort: artifacts}",
                "{name: artifacts, port: 5557, targetPort: artifacts}", "not the container port"
            ),
            ("coordinator.yaml", "prometheus.io/port: \"8080\"", "prometheus.io/port: \"9090\"", "prometheus.io"),
            ("coordinator.yaml", "mountPath: /var/lib/sparsegrid}", "mountPath: /data}", "persistent volume claim"),
            (
                "coordinator.yaml", "- --log-format=json", "- --log-format=json\n            - --per-gpu",
                "has no option --per-gpu"
            ),
            (
                "workers.yaml", "--coordinator=tcp://sparsegrid-coordinator:5555",
                "--coordinator=tcp://sparsegrid-coordinator:5565", "connects to port 5565"
            ),
            ("workers.yaml", "limits: {nvidia.com/gpu: 1, memory: 32Gi}", "limits: {memory: 32Gi}", "nvidia.com/gpu"),
            ("workers.yaml", "terminationGracePeriodSeconds: 90", "terminationGracePeriodSeconds: 30", "drain-grace"),
            ("workers.yaml", "--id=$(POD_NAME)", "--id=$(POD)", "no env POD"),
            ("secrets.example.yaml", "  coord.pub: \"REPLACE", "  coord2.pub: \"REPLACE", "has no key coord.pub"),
            ("secrets.example.yaml", "REPLACE: the contents of worker.key", "rq0M7Z", "placeholder"),
        ]
        for (name, from, to, expected) in plants {
            let bad = files.map { f in
                (f.name, f.name.hasSuffix("/" + name) ? f.text.replacingOccurrences(of: from, with: to) : f.text)
            }
            #expect(bad.map(\.1) != files.map(\.text), "the plant \(from) found nothing to replace")
            let problems = try DeployChecks.kubernetes(files: bad, cli: cli)
            #expect(problems.contains { $0.contains(expected) }, "planting `\(to)` in \(name): \(problems)")
        }
        // Not YAML at all.
        #expect(throws: (any Error).self) {
            try DeployChecks.kubernetes(files: [("broken.yaml", "kind: [Service\n")], cli: cli)
        }
    }

    // MARK: The command lines, run

    /// The coordinator and worker command lines a deploy file gives.
    static func pair(_ source: String, cli: DeployChecks.CLI) throws -> (
        coordinator: DeployChecks.Invocation, worker: DeployChecks.Invocation
    ) {
        var calls: [DeployChecks.Invocation] = []
        switch source {
        case "systemd":
            for unit in try units() {
                let exec = DeployChecks.directives(unit.text).first { $0.0 == "ExecStart" }?.1 ?? ""
                calls += DeployChecks.textInvocations(file: unit.name, text: "ExecStart=" + exec, cli: cli)
            }
        case "container":
            for f in DeployChecks.files("containerfile") {
                if let call = DeployChecks.containerfileProblems(file: f, text: try DeployChecks.read(f), cli: cli).call
                {
                    calls.append(call)
                }
            }
        case "compose":
            let file = "deploy/container/compose.yaml"
            let doc = try #require(try DeployChecks.yamlDocuments(file: file, text: try DeployChecks.read(file)).first)
            let services = try #require(doc["services"] as? [String: Any])
            for name in ["coordinator", "worker-1"] {
                let command = DeployChecks.strings((services[name] as? [String: Any])?["command"])
                calls.append(.init(file: file, subcommand: command[0], args: Array(command.dropFirst())))
            }
        case "k8s":
            for (file, text) in try manifests() {
                for d in try DeployChecks.yamlDocuments(file: file, text: text) {
                    let spec = (d["spec"] as? [String: Any])?["template"] as? [String: Any]
                    for c in (spec?["spec"] as? [String: Any])?["containers"] as? [[String: Any]] ?? [] {
                        let args = DeployChecks.strings(c["args"])
                        calls.append(.init(file: file, subcommand: args[0], args: Array(args.dropFirst())))
                    }
                }
            }
        default: break
        }
        let coordinator = try #require(calls.first { $0.subcommand == "coordinator" }, "\(source): no coordinator")
        let worker = try #require(calls.first { $0.subcommand == "worker" }, "\(source): no worker")
        return (coordinator, worker)
    }

    /// The files' own coordinator and worker command lines, run here: the coordinator binds
    /// 0.0.0.0 with CURVE and an HTTP token as the files have it, the worker joins with its key
    /// and the coordinator's public key, and a two-stage sweep whose second stage fetches the
    /// first's checkpoint over the artifact port (--bind port + 1) succeeds. Slurm's lines are
    /// shell with variables and are only flag-checked.
    @Test(
        "each deployment's coordinator and worker command lines, run as written, make a working CURVE pair",
        arguments: ["systemd", "container", "compose", "k8s"])
    func commandLinesRun(source: String) async throws {
        let cli = try await DeployChecks.loadCLI()
        let (coordinatorCall, workerCall) = try Self.pair(source, cli: cli)
        let dir = Harness.tempDir("deploy-\(source)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["coord", "worker"] { #expect(try await Harness.run(["keygen", "\(dir)/\(name)"]).status == 0) }
        try FileManager.default.copyItem(atPath: "\(dir)/worker.pub", toPath: "\(dir)/workers.txt")
        try "0123456789abcdef0123456789abcdef\n".write(toFile: "\(dir)/http.token", atomically: true, encoding: .utf8)
        let port = try Harness.freePortPair()
        let coordinatorArgs = DeployChecks.localize(coordinatorCall, dir: dir, port: port)
        #expect(coordinatorArgs.contains("--curve-key") && coordinatorArgs.contains("\(dir)/state"))
        let coordinator = try Harness.start(coordinatorArgs, log: "\(dir)/coordinator.log")
        defer { Harness.kill9(coordinator) }
        let endpoints = try await Harness.coordinatorEndpoints("\(dir)/state")
        #expect(endpoints.workers.hasSuffix(":\(port)"), "\(endpoints.workers)")
        let workerArgs = DeployChecks.localize(workerCall, dir: dir, port: port)
        let worker = try Harness.start(workerArgs, log: "\(dir)/worker.log")
        defer { Harness.kill9(worker) }
        let spec = try Harness.writeSpec(
            Harness.testSpec(name: "deploy", xs: [1], trainParams: "artifact_bytes: 50000", finetune: "value: 2"),
            in: dir)
        let launched = try await Harness.run([
            "launch", spec, "--coordinator", endpoints.control, "--state", "\(dir)/state",
        ])
        #expect(launched.status == 0, "\(launched.stderr)")
        let store = try Harness.store("\(dir)/state")
        do {
            try await Harness.waitFor("the sweep to finish through \(source)'s command lines", timeout: 90) {
                let rows = try store.resultRows(sweep: "deploy")
                return rows.count == 2 && rows.allSatisfy { $0.state == .succeeded }
            }
        } catch {
            let logs =
                "coordinator \(coordinatorArgs)\n\(Harness.read("\(dir)/coordinator.log").suffix(1500))\n"
                + "worker \(workerArgs)\n\(Harness.read("\(dir)/worker.log").suffix(1500))"
            Issue.record(Comment(rawValue: "\(error)\n\(logs)"))
        }
        // SIGTERM: the worker drains and exits 0, the coordinator too.
        await Harness.stop(worker)
        await Harness.stop(coordinator)
        #expect(worker.terminationStatus == 0 && coordinator.terminationStatus == 0)
    }

    // MARK: README

    @Test("deploy/README.md names every file in deploy/ and says what could not be run here")
    func readme() throws {
        let text = try DeployChecks.read("deploy/README.md")
        for f in DeployChecks.deployFiles() where f != "deploy/README.md" {
            let relative = String(f.dropFirst("deploy/".count))
            #expect(text.contains(relative), "deploy/README.md does not mention \(relative)")
        }
        for phrase in ["systemd-analyze verify", "shellcheck", "container engine", "cluster", "Slurm"] {
            #expect(text.contains(phrase), "deploy/README.md says nothing of \(phrase)")
        }
    }
}
