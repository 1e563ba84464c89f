import ArgumentParser
import Foundation
import ServiceLifecycle
import UnixSignals
import Wire
import Worker
import ZeroMQ

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Add this machine as a worker: it runs tasks the coordinator hands it.",
        discussion: """
            One slot per GPU (--gpus all, or --gpus 0,2) with CUDA_VISIBLE_DEVICES set per slot, or N CPU \
            slots (--slots N). --per-gpu K gives each GPU K slots, so K small tasks share one large GPU; a \
            task goes to the GPU that runs the fewest now. Each result records the tasks that shared its \
            device meanwhile (reports mark latencies measured on a shared device), and a sweep that asks \
            for `exclusive` devices runs only on workers whose slots share nothing (--per-gpu 1 and, for \
            CPU slots, --slots 1). The worker reconnects with backoff when the coordinator goes away, keeps \
            the results it could not deliver, and sends them when it is back.

            The built-in engines: `sparsity` (the PyTorch engine) and `null` (no work; for benchmarks). \
            The sparsity engine is, first match wins: --engine sparsity=COMMAND; $SPARSEGRID_PYTHON \
            running `-m sparsegrid_engine`; `sparsegrid-engine` on the PATH (pip install of the engine's \
            wheel); the source checkout's .venv with engine/. The log's `engine` line says which and \
            why. Add others with --engine NAME=COMMAND: any program that speaks engine/CONTRACT.md.

            It says hello at once with the engines its describe cache knows, and describes the others \
            in the background (the first start of the PyTorch engine takes up to a minute), offering \
            each once described. Time limits: a stage's `timeout`, else --task-timeout; --idle-timeout \
            when an engine prints no event. SIGTERM drains (no new work, running tasks may finish \
            within --drain-grace); a second SIGTERM stops at once. Stopped tasks run again elsewhere.

            With --curve-key, a coordinator that refuses this worker's key is reported at once, on             stderr, with the public key and its fingerprint. The worker keeps retrying: add the key to             the coordinator's --authorized-keys file (it re-reads the file on SIGHUP and when it             changes) and this worker gets in without a restart. With --connect-timeout it gives up             with that message instead (exit status 1).
            """)

    @Option(name: .long, help: "The coordinator's worker address (what `sparsegrid coordinator` printed).")
    var coordinator: String = defaultWorkerEndpoint

    @Option(name: .long, help: "Number of CPU slots (tasks run at once).")
    var slots: Int?

    @Option(name: .long, help: "GPU slots: `all` or a comma-separated list of device indices.")
    var gpus: String?

    @Option(
        name: .customLong("per-gpu"),
        help: "Tasks each GPU of --gpus runs at once (1-64, default 1): K slots per GPU, which then share it.")
    var perGPU: Int?

    @Option(name: .long, help: "Worker id, stable across restarts (default: HOST-PID).")
    var id: String?

    @Option(name: .long, help: "Cache directory for input checkpoints and work directories.")
    var cache: String?

    @Option(name: .long, parsing: .singleValue, help: "Offer another engine: NAME=COMMAND (repeatable).")
    var engine: [String] = []

    @Option(
        name: .long,
        help: "Offer only these engines (comma-separated), e.g. `sparsity`; the built-in `null` is always offered.")
    var only: String?

    @Option(
        name: .long,
        help: "CPU threads per CPU slot (default: cores / slots). Split the cores when several workers share a host.")
    var threads: Int?

    @Option(
        name: .customLong("task-timeout"),
        help:
            "Stop an engine that runs longer than this many seconds (a stage's shorter `timeout` wins); the task runs again."
    )
    var taskTimeout: Double = WorkerConfig.defaultTaskTimeout

    @Option(
        name: .customLong("idle-timeout"),
        help:
            "Stop an engine that prints no event (progress, metric) for this many seconds; the task runs again. 0: no such limit."
    )
    var idleTimeout: Double = WorkerConfig.defaultIdleTimeout

    @Option(
        name: .customLong("drain-grace"),
        help:
            "On SIGTERM, let running tasks finish for up to this many seconds before stopping them (0: stop at once). A second SIGTERM stops at once."
    )
    var drainGrace: Double = WorkerConfig.defaultDrainGrace

    @Option(
        name: .customLong("engine-reuse"),
        help:
            "An engine whose describe declares `serve` runs up to this many tasks in one long-lived process per slot, then is replaced; 0: a process per task."
    )
    var engineReuse: Int = WorkerConfig.defaultEngineReuse

    @Option(name: .customLong("log-format"), help: "Log on stderr: `text`, or `json` for one JSON object per line.")
    var logFormat: LogFormat = .text

    @Option(
        name: .customLong("connect-timeout"),
        help: "Give up if no coordinator answers within this many seconds (default: keep trying).")
    var connectTimeout: Double?

    @Option(
        name: .customLong("curve-key"),
        help: "This worker's CURVE secret key file (from `sparsegrid keygen`), for a coordinator that requires CURVE.")
    var curveKey: String?

    @Option(
        name: .customLong("server-key"),
        help: "The coordinator's public key: its .pub file or the 40-character key (with --curve-key).")
    var serverKey: String?

    @Flag(name: .customLong("no-describe"), help: "Do not ask engines to describe themselves at start-up.")
    var noDescribe = false

    func validate() throws {
        if slots != nil && gpus != nil { throw ValidationError("Use either --slots or --gpus, not both.") }
        if let slots, slots < 1 { throw ValidationError("--slots must be at least 1.") }
        if let perGPU {
            guard gpus != nil else {
                throw ValidationError("--per-gpu goes with --gpus (K tasks per GPU); CPU slots are --slots N.")
            }
            guard (1...WireLimits.maxPerGPU).contains(perGPU) else {
                throw ValidationError("--per-gpu must be 1 to \(WireLimits.maxPerGPU) (tasks per GPU at once).")
            }
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if !(taskTimeout > 0 && taskTimeout <= WireLimits.maxTaskTimeout) {
            throw ValidationError(
                "--task-timeout must be more than 0 and at most \(Int(WireLimits.maxTaskTimeout)) s (30 days).")
        }
        if !(idleTimeout >= 0 && idleTimeout.isFinite) {
            throw ValidationError("--idle-timeout must be 0 (off) or more.")
        }
        if !(drainGrace >= 0 && drainGrace.isFinite) { throw ValidationError("--drain-grace must be 0 or more.") }
        if !(0...1_000_000).contains(engineReuse) {
            throw ValidationError("--engine-reuse must be 0 (a process per task) to 1000000, not \(engineReuse).")
        }
        if (curveKey == nil) != (serverKey == nil) {
            throw ValidationError(
                "--curve-key and --server-key go together: this worker's secret key and the coordinator's public key.")
        }
    }

    func run() async throws {
        try await userFacing {
            let host = ProcessInfo.processInfo.hostName
            let workerId = id ?? "\(host)-\(getpid())"
            let slotList = try makeSlots()
            var engines: [String: EngineCommand] = [:]
            for spec in engine {
                let (name, command) = try EngineCommand.parse(spec)
                engines[name] = command
            }
            let keep = only.map {
                Set($0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
            }
            // Which sparsity engine, and why (logged once the log exists): the flag, else the lookup.
            var sparsityLine: (level: LogLine.Level, message: String)? = nil
            if keep == nil || keep!.contains("sparsity") {
                if let flagged = engines["sparsity"] {
                    sparsityLine = (
                        .info,
                        "engine sparsity: `\(([flagged.executable] + flagged.arguments).joined(separator: " "))` "
                            + "(from --engine sparsity=…)"
                    )
                } else if let choice = try EngineLocator.locate() {
                    engines["sparsity"] = choice.command
                    sparsityLine = (.info, "engine sparsity: \(choice.summary)")
                } else if engines.keys.contains(where: { keep?.contains($0) ?? true }) {
                    // Other engines were asked for: offer those, and say what is missing.
                    sparsityLine = (
                        .warn,
                        "engine sparsity: not offered: \(EngineLocator.howToProvideInOneLine)"
                    )
                } else {
                    throw UserError(
                        EngineLocator.howToProvide
                            + "\nOr pass --only with the engines this worker should offer (e.g. --only null).")
                }
            }
            if let keep { engines = engines.filter { keep.contains($0.key) } }
            var curve: CurveClientConfig? = nil
            if let curveKey, let serverKey {
                let secret = try readKey(curveKey, what: "worker's secret key")
                curve = CurveClientConfig(
                    serverPublicKey: try readKey(serverKey, what: "coordinator's public key"),
                    publicKey: try ZMQ.curvePublic(fromSecret: secret), secretKey: secret)
            }
            let cacheDir = cache ?? "\(NSHomeDirectory())/.cache/sparsegrid/worker-\(workerId)"
            // Without --cache each worker process has a cache of its own (the default id has the
            // pid in it): describe answers are shared by the host's workers instead.
            let describeCache = cache.map { "\($0)/describe" } ?? "\(NSHomeDirectory())/.cache/sparsegrid/describe"
            var config = WorkerConfig(
                coordinator: coordinator, workerId: workerId, host: host, slots: slotList,
                engines: engines, cacheDirectory: cacheDir, taskTimeout: taskTimeout,
                describeEngines: !noDescribe, connectTimeout: connectTimeout,
                threadsPerSlot: threads, curve: curve,
                idleTimeout: idleTimeout > 0 ? idleTimeout : nil, drainGrace: drainGrace,
                describeCacheDirectory: describeCache)
            config.engineReuse = engineReuse
            let log = OperatorLog(format: logFormat, source: workerId)
            let node = try WorkerNode(config: config, log: log)
            if let sparsityLine {
                log.write(event: "engine", level: sparsityLine.level, worker: workerId, sparsityLine.message)
            }
            log.write(
                event: "start", worker: workerId,
                "worker \(workerId): \(slotList.count) slot(s) [\(slotList.map(\.device).joined(separator: ", "))], "
                    + "engines: \((["null"] + engines.keys.sorted()).joined(separator: ", ")), coordinator \(coordinator); "
                    + "task timeout \(Int(taskTimeout)) s, idle timeout "
                    + (idleTimeout > 0 ? "\(Int(idleTimeout)) s" : "off")
                    + ", drain grace \(Int(drainGrace)) s, engine reuse \(engineReuse)")
            // The first SIGTERM or SIGINT drains (the ServiceGroup's graceful shutdown); a second
            // one stops the running engines at once.
            let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
            let watcher = Task {
                var count = 0
                for await signal in signals {
                    count += 1
                    if count == 1 {
                        node.stop()
                    } else {
                        log.write(event: "stop", worker: workerId, "\(signal) again: stopping the running tasks now")
                        node.stopNow()
                    }
                }
            }
            defer { watcher.cancel() }
            try await ServiceGroup(services: [WorkerService(node: node)], gracefulShutdownSignals: [.sigterm, .sigint])
                .run()
        }
    }

    private func makeSlots() throws -> [SlotInfo] {
        guard let gpus else { return WorkerConfig.cpuSlots(slots ?? 1) }
        var indices: [Int]
        if gpus == "all" {
            indices = Array(0..<countGPUs())
            if indices.isEmpty {
                throw UserError("--gpus all found no GPU (nvidia-smi lists none). Use --slots N for CPU slots.")
            }
        } else {
            indices = try gpus.split(separator: ",").map {
                guard let i = Int($0.trimmingCharacters(in: .whitespaces)), i >= 0 else {
                    throw UserError("--gpus takes `all` or indices like 0,1 — '\($0)' is not an index.")
                }
                return i
            }
        }
        return try WorkerConfig.gpuSlots(indices, perGPU: perGPU ?? 1)
    }

    private func countGPUs() -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["nvidia-smi", "-L"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return 0 }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return 0 }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("GPU ") }.count
    }
}
