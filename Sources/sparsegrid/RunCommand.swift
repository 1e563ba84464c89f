import ArgumentParser
import Coordinator
import Foundation
import HTTPAPI
import Reports
import Store
import SweepKit
import Wire
import Worker

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a sweep on this machine: a coordinator plus N local worker processes.",
        discussion: """
            Shows live progress (tasks done/running/failed, each worker's task and epoch, elapsed and \
            ETA), then prints the comparison tables and writes the HTML report into the state directory. \
            Exits 0 when every task succeeded.

            It serves the HTTP API and the browser dashboard (docs/api.md) on a free loopback port and \
            prints their URLs; --no-http turns that off.

            Running the same spec again reuses finished tasks: only failed, missing or new cells run.

            --durability full (the default) fsyncs the state database at every commit; normal spares \
            that fsync and survives a crash of the process only (docs/guarantees.md).

            Example:  sparsegrid run sweeps/smoke.yaml --workers 2
            """)

    @Argument(help: "The sweep spec (YAML), e.g. sweeps/quick.yaml.")
    var spec: String

    @Option(name: .long, help: "Local worker processes to start (0: wait for workers you start yourself).")
    var workers: Int = 2

    @Option(name: .long, help: "Slots per local worker.")
    var slots: Int = 1

    @Option(name: .long, help: "State directory (database, artifacts, logs, reports).")
    var state: String = defaultStateDirectory

    @Option(
        name: .long, parsing: .singleValue, help: "Give the local workers another engine: NAME=COMMAND (repeatable).")
    var engine: [String] = []

    @Option(
        name: .customLong("engine-reuse"),
        help:
            "Passed to the local workers: tasks per long-lived engine process (engines that declare `serve`); 0: a process per task."
    )
    var engineReuse: Int = WorkerConfig.defaultEngineReuse

    @Option(name: .long, help: "A CSV of claimed numbers to put beside the measured ones in the report.")
    var reference: String?

    @Option(name: .long, help: "Seconds between heartbeats.")
    var heartbeat: Double = 1

    @Option(name: .customLong("dead-after"), help: "Seconds of silence after which a worker is dead.")
    var deadAfter: Double = SchedulerConfig.defaultDeadAfter

    @Option(name: .customLong("retry-backoff"), help: "Seconds before the first retry of a failed task.")
    var retryBackoff: Double = 0.5

    @Flag(
        name: .long,
        help: "No colour or redrawing even on a terminal: print lines when something changes, at least every 30 s.")
    var plain = false

    @Option(name: .customLong("max-tasks"), help: "Refuse a spec that expands to more tasks than this.")
    var maxTasks: Int = SpecLimits.defaultMaxTasks

    @Flag(
        name: .customLong("builtin-ranges"),
        help: "Check values against this build's table of the sparsity engine's ranges instead of asking the engine.")
    var builtinRanges = false

    @Flag(name: .customLong("no-http"), help: "Do not serve the HTTP API (by default on a free loopback port).")
    var noHTTP = false

    @Option(name: .long, help: durabilityHelp)
    var durability: Durability = .default

    func validate() throws {
        if workers < 0 { throw ValidationError("--workers must be 0 or more.") }
        if slots < 1 { throw ValidationError("--slots must be at least 1.") }
        if !(0...1_000_000).contains(engineReuse) {
            throw ValidationError("--engine-reuse must be 0 (a process per task) to 1000000, not \(engineReuse).")
        }
        if !WireLimits.intervalRange.contains(heartbeat) || !WireLimits.intervalRange.contains(deadAfter)
            || deadAfter <= heartbeat
        {
            throw ValidationError(
                "--dead-after (\(deadAfter)) must be longer than --heartbeat (\(heartbeat)), both between 0.01 and 86400 s."
            )
        }
    }

    func run() async throws {
        try await userFacing {
            let plan = try loadPlan(
                spec, maxTasks: maxTasks, ranges: SpecRanges(builtinOnly: builtinRanges, engines: engine))
            if let running = CoordinatorInfo.read(state: state) {
                throw UserError(
                    "a coordinator (pid \(running.pid)) is already running on \(state). Launch into it "
                        + "with `sparsegrid launch \(spec) --coordinator \(running.controlEndpoint)`, or pass another --state."
                )
            }
            let config = CoordinatorConfig(
                stateDirectory: state, workerEndpoint: "tcp://127.0.0.1:*", dataEndpoint: "tcp://127.0.0.1:*",
                controlEndpoint: "tcp://127.0.0.1:*", heartbeatInterval: heartbeat,
                scheduler: SchedulerConfig(deadAfter: deadAfter, retryBackoff: retryBackoff),
                log: try coordinatorLog(), durability: durability)
            let coordinator = try Coordinator(config: config, version: sparsegridVersion)
            config.log?.write(event: "start", "durability \(durabilityDescription(coordinator))")
            let serving = Task { try await coordinator.run() }
            try CoordinatorInfo(
                pid: getpid(), workerEndpoint: coordinator.workerEndpoint,
                dataEndpoint: coordinator.dataEndpoint, controlEndpoint: coordinator.controlEndpoint,
                startedAt: Date().timeIntervalSince1970
            ).write(state: state)
            let client = try ControlClient(endpoint: coordinator.controlEndpoint, state: state)
            var httpServer: RunningServer? = nil
            if !noHTTP {
                httpServer = try await startHTTPServer(
                    HTTPServerConfig(host: "127.0.0.1", port: 0, token: nil), state: state,
                    controlEndpoint: coordinator.controlEndpoint,
                    metricsText: { [metrics = coordinator.metrics] in metrics.exposition() })
                print("HTTP API: \(httpServer!.url)api/sweeps")
                print("Dashboard: \(httpServer!.url)")
            }
            let launched = try client.launch(plan, progress: LaunchProgress(plan: plan))
            let n = { (key: String) in launched.body[key]?.intValue ?? 0 }
            print(
                "sweep \(plan.name): \(n("total")) tasks (\(n("new")) new, \(n("reused")) reused, "
                    + "\(n("rerun")) to run again); \(workers) local worker(s); state in \(state) "
                    + "(durability \(durability.rawValue))")
            if workers == 0 {
                print("waiting for workers: sparsegrid worker --coordinator \(coordinator.workerEndpoint)")
            }
            flushOutput()

            let pool = try LocalWorkers(
                count: workers, slots: slots, endpoint: coordinator.workerEndpoint,
                state: state, engines: engine, only: plan.engine, engineReuse: engineReuse)
            let interrupted = await SignalWatcher.interrupts()
            let display = ProgressDisplay(sweep: plan.name, plain: plain)
            var finished = false
            while !finished {
                try await Task.sleep(nanoseconds: 500_000_000)
                if interrupted.isSet {
                    display.note("interrupted: stopping workers; finished tasks are kept, rerun to continue")
                    break
                }
                let reply = try client.request(.status, StatusRequest(), timeout: 30)
                let status = try Codec.decodeJSON(LiveStatus.self, from: Codec.encodeJSON(reply.body))
                display.update(status)
                if let sweep = status.sweeps.first(where: { $0.name == plan.name }) {
                    let open = ["running", "ready", "pending"].reduce(0) { $0 + (sweep.counts[$1] ?? 0) }
                    finished = open == 0
                }
                if !finished, workers > 0, pool.allExited {
                    display.note("every local worker exited; see \(state)/logs/worker-*.log")
                    break
                }
            }
            pool.stop()
            await httpServer?.stop()
            coordinator.stop()
            do {
                try await serving.value
            } catch {
                CoordinatorInfo.remove(state: state)
                printErr("coordinator: \(error)")
                throw ExitCode(70)
            }
            CoordinatorInfo.remove(state: state)
            display.finish()

            let store = try openReadOnlyStore(state: state)
            let rows = try store.resultRows(sweep: plan.name)
            let ref = try reference.map { try ReferenceTable.load(csvPath: $0) }
            let specs = plan.reports.isEmpty ? Reports.defaultSpecs : plan.reports
            print(Reports.renderReport(sweep: plan.name, rows: rows, specs: specs, format: .table, reference: ref))
            let reportDir = "\(state)/reports/\(plan.name)"
            let paths = try Reports.writeReport(
                sweep: plan.name, rows: rows, specs: specs, reference: ref, to: reportDir)
            if let html = paths.first(where: { $0.hasSuffix(".html") }) { print("report: \(html)") }
            let failed = rows.filter { $0.state != .succeeded }
            if !failed.isEmpty {
                print("\(failed.count) of \(rows.count) task(s) did not succeed:")
                for row in failed.prefix(20) {
                    let label = [row.stage, row.model ?? "", row.method, row.seed.map { "seed \($0)" } ?? ""]
                        .filter { !$0.isEmpty }.joined(separator: " ")
                    print("  \(label): \(row.state.rawValue)\(row.error.map { " — \($0)" } ?? "")")
                }
                print(
                    "details: sparsegrid results \(plan.name) --state \(state) --status failed; "
                        + "rerun them: sparsegrid run \(spec) --state \(state)")
                throw ExitCode(1)
            }
        }
    }
}

extension RunCommand {
    /// The in-process coordinator's operator log goes to <state>/logs/coordinator.log: stdout is
    /// the live display. A new state directory is made 0700, as the coordinator would.
    func coordinatorLog() throws -> OperatorLog {
        if !FileManager.default.fileExists(atPath: state) {
            try FileManager.default.createDirectory(
                atPath: state, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        }
        let logs = "\(state)/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let path = "\(logs)/coordinator.log"
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        return OperatorLog(format: .text, source: "coordinator", handle: handle)
    }
}

/// The worker processes `run` starts: the same binary, `worker` subcommand, logs under the state dir.
final class LocalWorkers {
    private var processes: [Process] = []

    /// `only`: the sweep's engine, so workers describe (and offer) just that one.
    init(
        count: Int, slots: Int, endpoint: String, state: String, engines: [String], only: String,
        engineReuse: Int = WorkerConfig.defaultEngineReuse
    ) throws {
        let logs = "\(state)/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        for i in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: currentExecutable())
            var args = [
                "worker", "--coordinator", endpoint, "--id", "local-\(i + 1)", "--slots", String(slots),
                "--cache", "\(state)/workers/local-\(i + 1)", "--connect-timeout", "60",
                // Stopped when the sweep is done or the user interrupts: no draining.
                "--drain-grace", "0", "--engine-reuse", String(engineReuse),
            ]
            for e in engines { args += ["--engine", e] }
            // The local workers share this machine: split its cores between their slots.
            let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / max(count * slots, 1))
            args += ["--only", only, "--threads", String(threads)]
            process.arguments = args
            let logPath = "\(logs)/worker-\(i + 1).log"
            FileManager.default.createFile(atPath: logPath, contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
            try log.seekToEnd()
            process.standardOutput = log
            process.standardError = log
            process.standardInput = FileHandle.nullDevice
            try process.run()
            processes.append(process)
        }
    }

    var allExited: Bool { !processes.isEmpty && processes.allSatisfy { !$0.isRunning } }

    /// SIGTERM (workers stop their engines and say bye), then SIGKILL after 10 s.
    func stop() {
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while processes.contains(where: { $0.isRunning }), Date() < deadline { usleep(50_000) }
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
    }
}

/// The live view of `run`: its sweep's bar, counts, rate and ETA, and each running task's
/// worker, epoch, loss and elapsed time; redrawn on a terminal, plain lines otherwise
/// (`LiveOutput`).
final class ProgressDisplay {
    let sweep: String
    private let output: LiveOutput

    init(sweep: String, plain: Bool) {
        self.sweep = sweep
        self.output = LiveOutput(mode: LiveOutput.detectMode(plain: plain))
    }

    func note(_ text: String) { output.note(text) }

    func update(_ status: LiveStatus) {
        guard status.sweeps.contains(where: { $0.name == sweep }) else { return }
        var lines = LiveView.sweepLines(status, only: sweep, colour: output.mode.colour)
        if output.mode.redraw {
            for worker in status.workers where worker.alive && worker.running.isEmpty {
                lines.append("  \(worker.id): idle")
            }
        }
        output.show(lines, changeKey: LiveView.changeKey(status, only: sweep))
    }

    func finish() { output.finish() }
}
