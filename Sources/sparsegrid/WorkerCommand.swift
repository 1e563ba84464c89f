import ArgumentParser
import Foundation
import ServiceLifecycle
import Wire
import Worker
import ZeroMQ

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Add this machine as a worker: it runs tasks the coordinator hands it.",
        discussion: """
            One slot per GPU (--gpus all, or --gpus 0,2) with CUDA_VISIBLE_DEVICES set per slot, or N CPU \
            slots (--slots N). The worker reconnects with backoff when the coordinator goes away, keeps \
            the results it could not deliver, and sends them when it is back.

            The built-in engines: `sparsity` (the PyTorch engine in engine/, run with the Python in \
            $SPARSEGRID_PYTHON or the repository's .venv) and `null` (no work; for benchmarks). Add \
            others with --engine NAME=COMMAND: any program that speaks engine/CONTRACT.md.
            """)

    @Option(name: .long, help: "The coordinator's worker address (what `sparsegrid coordinator` printed).")
    var coordinator: String = defaultWorkerEndpoint

    @Option(name: .long, help: "Number of CPU slots (tasks run at once).")
    var slots: Int?

    @Option(name: .long, help: "GPU slots: `all` or a comma-separated list of device indices.")
    var gpus: String?

    @Option(name: .long, help: "Worker id, stable across restarts (default: HOST-PID).")
    var id: String?

    @Option(name: .long, help: "Cache directory for input checkpoints and work directories.")
    var cache: String?

    @Option(name: .long, parsing: .singleValue, help: "Offer another engine: NAME=COMMAND (repeatable).")
    var engine: [String] = []

    @Option(name: .long, help: "Offer only these engines (comma-separated), e.g. `sparsity`; the built-in `null` is always offered.")
    var only: String?

    @Option(name: .long, help: "CPU threads per CPU slot (default: cores / slots). Split the cores when several workers share a host.")
    var threads: Int?

    @Option(name: .customLong("task-timeout"), help: "Stop an engine that runs longer than this many seconds.")
    var taskTimeout: Double?

    @Option(name: .customLong("connect-timeout"), help: "Give up if no coordinator answers within this many seconds (default: keep trying).")
    var connectTimeout: Double?

    @Option(name: .customLong("curve-key"), help: "This worker's CURVE secret key file (from `sparsegrid keygen`), for a coordinator that requires CURVE.")
    var curveKey: String?

    @Option(name: .customLong("server-key"), help: "The coordinator's public key: its .pub file or the 40-character key (with --curve-key).")
    var serverKey: String?

    @Flag(name: .customLong("no-describe"), help: "Do not ask engines to describe themselves at start-up.")
    var noDescribe = false

    func validate() throws {
        if slots != nil && gpus != nil { throw ValidationError("Use either --slots or --gpus, not both.") }
        if let slots, slots < 1 { throw ValidationError("--slots must be at least 1.") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if (curveKey == nil) != (serverKey == nil) {
            throw ValidationError("--curve-key and --server-key go together: this worker's secret key and the coordinator's public key.")
        }
    }

    func run() async throws {
        try await userFacing {
            let host = ProcessInfo.processInfo.hostName
            let workerId = id ?? "\(host)-\(getpid())"
            let slotList = try makeSlots()
            var engines: [String: EngineCommand] = [:]
            let engineDir = EngineLocator.engineDirectory()
            if let engineDir {
                engines["sparsity"] = EngineCommand(
                    executable: EngineLocator.python(engineDirectory: engineDir), arguments: ["-m", "sparsegrid_engine"],
                    environment: ["PYTHONPATH": engineDir])
            }
            for spec in engine {
                let (name, command) = try EngineCommand.parse(spec)
                engines[name] = command
            }
            if let only {
                let keep = Set(only.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
                engines = engines.filter { keep.contains($0.key) }
            }
            var curve: CurveClientConfig? = nil
            if let curveKey, let serverKey {
                let secret = try readKey(curveKey, what: "worker's secret key")
                curve = CurveClientConfig(serverPublicKey: try readKey(serverKey, what: "coordinator's public key"),
                                          publicKey: try ZMQ.curvePublic(fromSecret: secret), secretKey: secret)
            }
            let cacheDir = cache ?? "\(NSHomeDirectory())/.cache/sparsegrid/worker-\(workerId)"
            let config = WorkerConfig(coordinator: coordinator, workerId: workerId, host: host, slots: slotList,
                                      engines: engines, cacheDirectory: cacheDir, taskTimeout: taskTimeout,
                                      describeEngines: !noDescribe, connectTimeout: connectTimeout,
                                      threadsPerSlot: threads, curve: curve)
            let node = try WorkerNode(config: config) { line in
                let stamp = ISO8601DateFormatter().string(from: Date())
                FileHandle.standardError.write(Data("[\(stamp)] \(workerId): \(line)\n".utf8))
            }
            printErr("worker \(workerId): \(slotList.count) slot(s) [\(slotList.map(\.device).joined(separator: ", "))], "
                + "engines: \((["null"] + engines.keys.sorted()).joined(separator: ", ")), coordinator \(coordinator)")
            // SIGTERM or SIGINT: running engines are stopped and reported, then bye.
            try await ServiceGroup(services: [WorkerService(node: node)], gracefulShutdownSignals: [.sigterm, .sigint])
                .run()
        }
    }

    private func makeSlots() throws -> [SlotInfo] {
        guard let gpus else {
            return (0..<(slots ?? 1)).map { SlotInfo(index: $0, device: "cpu") }
        }
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
        return indices.enumerated().map { SlotInfo(index: $0.offset, device: "cuda:\($0.element)") }
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
