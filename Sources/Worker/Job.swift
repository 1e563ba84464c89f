import Foundation
import SweepKit
import Synchronization
import Wire
import ZeroMQ

/// What a job thread hands back to the socket thread.
enum JobOutput: Sendable {
    case progress(TaskProgress)
    /// The attempt ended: the `result` or `failed` message to send.
    case finished(attemptId: String, type: MessageType, frames: [[UInt8]])
}

/// One attempt running on one slot, on its own thread: fetch inputs, run the engine, verify
/// and upload its artifacts, report. Blocking code is fine here: this is not the cooperative pool.
final class Job: Sendable {
    let assign: Assign
    let slot: SlotInfo
    let startedAt: Double
    /// Seconds between SIGTERM and SIGKILL when the engine is stopped.
    let killGrace: Double
    /// The worker's warm engines, when this attempt runs in a long-lived `serve` process (the
    /// engine declares `serve` and `--engine-reuse` is above 0); nil: a process of its own (`run`).
    let warm: WarmEngines?
    private let state = Mutex<(engine: EngineProcess?, cancel: (reason: String, retryable: Bool)?)>((nil, nil))

    init(
        assign: Assign, slot: SlotInfo, startedAt: Double, killGrace: Double = EngineProcess.defaultKillGrace,
        warm: WarmEngines? = nil
    ) {
        self.warm = warm
        self.assign = assign
        self.slot = slot
        self.startedAt = startedAt
        self.killGrace = killGrace
    }

    var cancelReason: String? { state.withLock { $0.cancel?.reason } }
    private var cancelRetryable: Bool { state.withLock { $0.cancel?.retryable ?? false } }

    /// Stops the engine's whole process group (SIGTERM, then SIGKILL after `killGrace`).
    /// `retryable`: the task itself is fine and should run again elsewhere (the worker is
    /// shutting down, a time limit fired); false when the coordinator cancelled it.
    func cancel(reason: String, retryable: Bool = false) {
        let engine = state.withLock { s -> EngineProcess? in
            if s.cancel == nil { s.cancel = (reason, retryable) }
            return s.engine
        }
        engine?.terminate()
    }

    func run(config: WorkerConfig, context: Context, dataEndpoint: String, post: @Sendable (JobOutput) -> Void) {
        let outcome: (MessageType, any WireMessage)
        do {
            outcome = try execute(config: config, context: context, dataEndpoint: dataEndpoint, post: post)
        } catch {
            outcome = failure("\(error)")
        }
        let frames = Codec.frames(outcome.0, outcome.1)
        post(.finished(attemptId: assign.attemptId, type: outcome.0, frames: frames))
    }

    private func failure(_ error: String, exitCode: Int32? = nil, stderr: String? = nil, retryable: Bool = true)
        -> (MessageType, any WireMessage)
    {
        // Cut to what the coordinator accepts, so a verbose engine cannot make its failure unsendable.
        (
            .failed,
            TaskFailed(
                attemptId: assign.attemptId, taskId: assign.taskId,
                error: error.truncatedUTF8(WireLimits.maxTextBytes), exitCode: exitCode,
                stderrTail: stderr.map {
                    String(decoding: Array($0.utf8.suffix(WireLimits.maxStderrTailBytes - 8)), as: UTF8.self)
                },
                retryable: retryable)
        )
    }

    private func execute(
        config: WorkerConfig, context: Context, dataEndpoint: String,
        post: @Sendable (JobOutput) -> Void
    ) throws -> (MessageType, any WireMessage) {
        guard let command = config.engines[assign.engine] else {
            return failure("this worker has no engine named '\(assign.engine)'")
        }
        let artifactCache = "\(config.cacheDirectory)/artifacts"
        let workdir = "\(config.cacheDirectory)/work/\(assign.attemptId)"
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        let client = try ArtifactClient(
            context: context, endpoint: config.dialable(dataEndpoint), cache: artifactCache,
            curve: config.curve)

        // Inputs by hash, verified, from the local cache or the coordinator.
        var inputs: [String: JSONValue] = [:]
        for (stage, input) in assign.inputs {
            if let reason = cancelReason { return failure("cancelled: \(reason)", retryable: cancelRetryable) }
            let path = try client.fetch(sha256: input.sha256, bytes: input.bytes)
            inputs[stage] = [
                "task_id": .string(input.taskId), "name": .string(input.name),
                "sha256": .string(input.sha256), "path": .string(path),
            ]
        }
        let device: String = slot.isGPU ? "cuda" : "cpu"
        let task: JSONValue = [
            "task_id": .string(assign.taskId), "attempt_id": .string(assign.attemptId),
            "sweep": .string(assign.sweep), "stage": .string(assign.stage),
            "params": .object(assign.params), "method": assign.method ?? .null, "data": assign.data ?? .null,
            "measure": assign.measure ?? .null, "inputs": .object(inputs), "device": .string(device),
        ]
        let taskFile = "\(workdir)/task.json"
        try Data(task.canonicalText.utf8).write(to: URL(fileURLWithPath: taskFile))

        var env: [String: String] = [:]
        if slot.isGPU {
            // Device indices are relative to what this worker itself may see (Slurm, for one,
            // sets CUDA_VISIBLE_DEVICES per task): index i is the i-th of those devices.
            let index = String(slot.device.dropFirst("cuda:".count))
            let inherited =
                ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"]?
                .split(separator: ",").map(String.init) ?? []
            if let i = Int(index), i < inherited.count {
                env["CUDA_VISIBLE_DEVICES"] = inherited[i]
            } else {
                env["CUDA_VISIBLE_DEVICES"] = index
            }
        } else {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let cpuSlots = max(config.slots.filter { !$0.isGPU }.count, 1)
            env["OMP_NUM_THREADS"] = String(config.threadsPerSlot ?? max(cores / cpuSlots, 1))
        }
        if let warm {
            return try executeWarm(
                warm, command: command, environment: env, taskFile: taskFile, workdir: workdir, client: client,
                artifactCache: artifactCache, post: post)
        }
        let engine = try EngineProcess(
            command: command, arguments: ["run", "--task", taskFile, "--workdir", workdir],
            environment: env, directory: workdir, killGrace: killGrace)
        let cancelledBeforeStart = state.withLock { s -> Bool in
            s.engine = engine
            return s.cancel != nil
        }
        if cancelledBeforeStart { engine.terminate() }

        // The contract is checked as the events arrive: a broken one stops the engine at once.
        var events = EngineEvents()
        let ended = engine.readLines { line in
            switch events.read(line) {
            case .recorded: break
            case .progress(let event): post(.progress(TaskProgress(attemptId: assign.attemptId, event: event)))
            case .violation(let reason): engine.abort(reason)
            }
        }
        return try finish(
            ended: ended, events: events, workdir: workdir, client: client, artifactCache: artifactCache)
    }

    /// The attempt in the slot's long-lived `serve` process: the task line in, its events up
    /// to `end` out, with the same checks and the same reading of how it ended as `run`. The
    /// process is handed back afterwards, kept only after an `end` with exit 0 whose attempt
    /// `finish` turned into a result.
    private func executeWarm(
        _ warm: WarmEngines, command: EngineCommand, environment: [String: String], taskFile: String,
        workdir: String, client: ArtifactClient, artifactCache: String, post: @Sendable (JobOutput) -> Void
    ) throws -> (MessageType, any WireMessage) {
        let engine = try warm.take(
            slot: slot.index, name: assign.engine, command: command, environment: environment,
            directory: Self.workRoot(of: workdir))
        var keep = false
        defer { warm.giveBack(slot: slot.index, engine: engine, keep: keep) }
        let cancelledBeforeStart = state.withLock { s -> Bool in
            s.engine = engine.process
            return s.cancel != nil
        }
        if cancelledBeforeStart { engine.process.terminate() }

        var events = EngineEvents()
        let ran = engine.runTask(taskFile: taskFile, workdir: workdir) { line in
            switch events.read(line) {
            case .recorded: break
            case .progress(let event): post(.progress(TaskProgress(attemptId: assign.attemptId, event: event)))
            case .violation(let reason): engine.process.abort(reason)
            }
        }
        // The process is no longer this attempt's: a late cancel must not stop it (it is handed back).
        state.withLock { $0.engine = nil }
        let cleanEnd = ran.ended && !ran.recycle && ran.outcome.exitCode == 0 && events.result != nil
        if !ran.ended, ran.outcome.abortReason == nil, cancelReason == nil {
            // It exited on its own before its `end` line (whatever it printed): retryable, as a
            // crash of `run` is.
            var stderrTail = ran.outcome.stderrTail
            if let note = events.strayNote { stderrTail += "\n" + note }
            if let problem = ran.notDelivered { return failure(problem, stderr: stderrTail) }
            let how =
                ran.outcome.signal.map { "was killed by signal \($0)" }
                ?? ran.outcome.exitCode.map { "exited with status \($0)" } ?? "exited"
            return failure(
                "the engine's serve process \(how) before its `end` line"
                    + (events.errorMessage.map { ": \($0)" } ?? ""),
                exitCode: ran.outcome.exitCode, stderr: stderrTail)
        }
        let ended = try finish(
            ended: ran.outcome, events: events, workdir: workdir, client: client, artifactCache: artifactCache)
        // Kept only when the attempt is a result: an artifact that broke containment or its
        // announced hash (a failure `finish` finds after a clean `end`) retires the process too.
        keep = cleanEnd && cancelReason == nil && ended.0 == .result
        return ended
    }

    /// The work root (`<cache>/work`), a `serve` engine's working directory.
    private static func workRoot(of workdir: String) -> String {
        URL(fileURLWithPath: workdir).deletingLastPathComponent().path
    }

    /// How the engine ended → the attempt's `result` or `failed`; artifacts checked and uploaded.
    private func finish(
        ended: EngineProcess.Outcome, events: EngineEvents, workdir: String, client: ArtifactClient,
        artifactCache: String
    ) throws -> (MessageType, any WireMessage) {
        var stderrTail = ended.stderrTail
        if let note = events.strayNote { stderrTail += "\n" + note }
        let errorMessage = events.errorMessage

        if let reason = cancelReason {
            return failure(
                "cancelled: \(reason)", exitCode: ended.exitCode, stderr: stderrTail,
                retryable: cancelRetryable)
        }
        // The engine broke its contract or an output limit: it would do so again.
        if let reason = ended.abortReason {
            return failure(reason, exitCode: ended.exitCode, stderr: stderrTail, retryable: false)
        }
        if let signal = ended.signal {
            return failure(
                "engine was killed by signal \(signal)" + (errorMessage.map { ": \($0)" } ?? ""),
                stderr: stderrTail)
        }
        let code = ended.exitCode ?? -1
        if code == 2 {
            return failure(
                errorMessage ?? "the engine rejected the task as invalid (exit 2)", exitCode: 2,
                stderr: stderrTail, retryable: false)
        }
        if code != 0 {
            return failure(
                "engine exited with status \(code)" + (errorMessage.map { ": \($0)" } ?? ""),
                exitCode: code, stderr: stderrTail)
        }
        guard let result = events.result else {
            return failure("engine exited 0 without a result event", exitCode: 0, stderr: stderrTail)
        }

        // Every artifact must be a regular file inside the work directory (checked before
        // anything is read or moved), match the hash the engine announced, and is then kept
        // in the local cache (a consumer scheduled here needs no download) and uploaded.
        var contained: [(artifact: EngineEvents.Artifact, path: String)] = []
        for artifact in events.artifacts {
            do {
                contained.append(
                    (
                        artifact,
                        try ArtifactContainment.resolve(
                            name: artifact.name, path: artifact.path,
                            workdir: workdir)
                    ))
            } catch {
                return failure("\(error)", exitCode: 0, stderr: stderrTail, retryable: false)
            }
        }
        var produced: [ProducedArtifact] = []
        for (artifact, path) in contained {
            let sha = try ArtifactFiles.sha256(path: path)
            if let claimed = artifact.sha256, claimed != sha {
                return failure(
                    "artifact \(artifact.name) does not match the SHA-256 the engine announced",
                    exitCode: 0, stderr: stderrTail)
            }
            let bytes = ArtifactFiles.fileSize(path) ?? 0
            let cached = ArtifactFiles.finalPath(root: artifactCache, sha256: sha)
            if !FileManager.default.fileExists(atPath: cached) {
                try FileManager.default.moveItem(atPath: path, toPath: cached)
            }
            try client.upload(path: cached, sha256: sha)
            produced.append(ProducedArtifact(name: artifact.name, sha256: sha, bytes: bytes))
        }
        // Metrics are numbers or null (booleans as 0/1): `EngineEvents` refused anything else.
        var metrics: [String: Double?] = [:]
        for (k, v) in result["metrics"]?.objectValue ?? [:] {
            switch v {
            case .number(let d): metrics[k] = .some(d)
            case .bool(let b): metrics[k] = .some(b ? 1 : 0)
            default: metrics[k] = .some(nil)
            }
        }
        var units: [String: String] = [:]
        for (k, v) in result["units"]?.objectValue ?? [:] {
            units[k] = v.displayText.truncatedUTF8(WireLimits.maxUnitLength)
        }
        try? FileManager.default.removeItem(atPath: workdir)
        return (
            .result,
            TaskResult(
                attemptId: assign.attemptId, taskId: assign.taskId, metrics: metrics, units: units,
                details: result["details"] ?? .null, artifacts: produced)
        )
    }
}
