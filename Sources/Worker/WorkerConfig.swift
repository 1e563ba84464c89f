import Foundation
import SweepKit
import Wire
import ZeroMQ

/// How to start an engine: the program and the arguments before `run …` / `describe`.
public struct EngineCommand: Sendable, Hashable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]

    public init(executable: String, arguments: [String] = [], environment: [String: String] = [:]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// Parses "NAME=COMMAND ARGS…" as given to `sparsegrid worker --engine`.
    public static func parse(_ spec: String) throws -> (String, EngineCommand) {
        guard let eq = spec.firstIndex(of: "=") else {
            throw WorkerError("--engine takes NAME=COMMAND (e.g. test=\"python3 tests/engine.py\"), not '\(spec)'")
        }
        let name = String(spec[..<eq])
        let words = spec[spec.index(after: eq)...].split(separator: " ").map(String.init)
        guard !name.isEmpty, let program = words.first else {
            throw WorkerError("--engine '\(spec)' names no command; write NAME=COMMAND")
        }
        return (name, EngineCommand(executable: program, arguments: Array(words.dropFirst())))
    }
}

public struct WorkerError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct WorkerConfig: Sendable {
    /// The coordinator's worker endpoint, e.g. "tcp://127.0.0.1:5555".
    public var coordinator: String
    /// Stable across reconnects and restarts (defaults to host-pid).
    public var workerId: String
    public var host: String
    public var slots: [SlotInfo]
    /// Engines this worker offers besides the built-in "null".
    public var engines: [String: EngineCommand]
    /// Input artifacts by hash, work directories of running attempts.
    public var cacheDirectory: String
    /// Stop an engine that runs longer than this many seconds; a stage's own `timeout` (in the
    /// assign) applies when it is shorter. Finite: a hanging engine cannot hold a slot forever.
    public var taskTimeout: Double
    /// Stop an engine that has printed no event (progress or metric) for this many seconds
    /// (nil: no such limit).
    public var idleTimeout: Double?
    /// On the first SIGTERM, let running attempts finish for up to this many seconds before
    /// they are stopped (0: stop them at once). A second SIGTERM stops them at once.
    public var drainGrace: Double
    /// Ask each engine for `describe` (the coordinator sees models and versions): answered from
    /// the describe cache when the engine's files have not changed, else in the background
    /// after hello (the engine is offered once described).
    public var describeEngines: Bool
    /// Where `describe` answers are cached (nil: `<cacheDirectory>/describe`).
    public var describeCacheDirectory: String?
    /// Give up (exit non-zero) if no coordinator answers within this many seconds (nil: keep trying).
    public var connectTimeout: Double?
    /// CPU threads per CPU slot (OMP_NUM_THREADS for the engine); nil: this machine's cores
    /// divided by this worker's CPU slots. Several workers on one host should split the cores.
    public var threadsPerSlot: Int?
    /// CURVE keys when the coordinator requires them (a coordinator off loopback).
    public var curve: CurveClientConfig?
    /// A warm (`serve`) engine process runs at most this many tasks, then is replaced; 0: a
    /// process per task for every engine. Used only for engines whose `describe` declares
    /// `"serve": {"version": 1}`.
    public var engineReuse: Int = WorkerConfig.defaultEngineReuse

    public static let defaultTaskTimeout = 24 * 3600.0
    public static let defaultIdleTimeout = 30 * 60.0
    public static let defaultDrainGrace = 60.0
    public static let defaultEngineReuse = 100

    public init(
        coordinator: String, workerId: String, host: String, slots: [SlotInfo],
        engines: [String: EngineCommand], cacheDirectory: String,
        taskTimeout: Double = WorkerConfig.defaultTaskTimeout,
        describeEngines: Bool = true, connectTimeout: Double? = nil, threadsPerSlot: Int? = nil,
        curve: CurveClientConfig? = nil, idleTimeout: Double? = WorkerConfig.defaultIdleTimeout,
        drainGrace: Double = WorkerConfig.defaultDrainGrace, describeCacheDirectory: String? = nil
    ) {
        self.coordinator = coordinator
        self.workerId = workerId
        self.host = host
        self.slots = slots
        self.engines = engines
        // Absolute: engines run with their work directory as the current directory.
        self.cacheDirectory = URL(fileURLWithPath: cacheDirectory).standardizedFileURL.path
        self.taskTimeout = taskTimeout
        self.describeEngines = describeEngines
        self.connectTimeout = connectTimeout
        self.threadsPerSlot = threadsPerSlot
        self.curve = curve
        self.idleTimeout = idleTimeout
        self.drainGrace = drainGrace
        self.describeCacheDirectory = describeCacheDirectory.map {
            URL(fileURLWithPath: $0).standardizedFileURL.path
        }
    }

    /// `n` CPU slots ("cpu"): they share the host's cores, so each says `share` n.
    public static func cpuSlots(_ n: Int) -> [SlotInfo] {
        (0..<n).map { SlotInfo(index: $0, device: "cpu", share: min(n, WireLimits.maxSlots)) }
    }

    /// `perGPU` slots per listed GPU index ("cuda:N", `share` perGPU), indices 0, 1, … in the
    /// order of `indices`, each GPU's slots together. A GPU listed twice would be two unshared
    /// slots on one device: refused (that is what `perGPU` is for).
    public static func gpuSlots(_ indices: [Int], perGPU: Int = 1) throws -> [SlotInfo] {
        guard (1...WireLimits.maxPerGPU).contains(perGPU) else {
            throw WorkerError("--per-gpu must be 1 to \(WireLimits.maxPerGPU), not \(perGPU)")
        }
        var seen: Set<Int> = []
        for i in indices where !seen.insert(i).inserted {
            throw WorkerError(
                "--gpus lists GPU \(i) twice; to run several tasks on one GPU use --per-gpu K (they are then recorded as sharing it)"
            )
        }
        guard indices.count * perGPU <= WireLimits.maxSlots else {
            throw WorkerError(
                "\(indices.count) GPU(s) × --per-gpu \(perGPU) is more than \(WireLimits.maxSlots) slots")
        }
        var slots: [SlotInfo] = []
        for gpu in indices {
            for _ in 0..<perGPU {
                slots.append(SlotInfo(index: slots.count, device: "cuda:\(gpu)", share: perGPU))
            }
        }
        return slots
    }

    /// Where `describe` answers are cached.
    var describeCache: String { describeCacheDirectory ?? "\(cacheDirectory)/describe" }

    /// The data endpoint as this worker should dial it: a wildcard host is replaced by the
    /// host of the coordinator endpoint.
    func dialable(_ endpoint: String) -> String {
        for wildcard in ["tcp://0.0.0.0:", "tcp://*:"] where endpoint.hasPrefix(wildcard) {
            let port = endpoint.dropFirst(wildcard.count)
            var host = String(coordinator.dropFirst("tcp://".count))
            if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
            return "tcp://\(host):\(port)"
        }
        return endpoint
    }
}

/// A worker's CURVE identity and the coordinator's public key (Z85, 40 characters each).
public struct CurveClientConfig: Sendable {
    public var serverPublicKey: String
    public var publicKey: String
    public var secretKey: String

    public init(serverPublicKey: String, publicKey: String, secretKey: String) {
        self.serverPublicKey = serverPublicKey
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

extension Socket {
    /// Makes this DEALER a CURVE client when the worker has keys.
    func applyCurve(_ curve: CurveClientConfig?) throws {
        guard let curve else { return }
        try setCurveClient(
            serverPublicKey: curve.serverPublicKey, publicKey: curve.publicKey,
            secretKey: curve.secretKey)
    }
}
