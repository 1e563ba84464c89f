import Foundation
import Store
import SweepKit
import Wire
import ZeroMQ

/// The coordinator's I/O loop, owned by one thread. Each turn it drains the sockets, feeds
/// the events to the `Scheduler`, commits every resulting state change to SQLite in one
/// transaction, and only then sends the messages those changes imply ("committed before it
/// is acted on"). Nothing here decides policy; it translates.
final class EventLoop {
    private let workers: Socket
    private let control: Socket
    private let store: SweepStore
    private var scheduler: Scheduler
    private let config: CoordinatorConfig
    private let dataEndpoint: String
    private let startedAt: Double

    // What the assign messages and status need, kept in memory.
    private var plans: [String: SweepPlan] = [:]
    private var taskMeta: [String: TaskMeta] = [:]
    private var artifactsByTask: [String: [ProducedArtifact]] = [:]
    private var identities: [String: [UInt8]] = [:]      // worker id → routing id
    private var workerIds: [[UInt8]: String] = [:]       // routing id → worker id
    private var workerHosts: [String: (host: String, slots: Int, info: JSONValue)] = [:]
    private var lastProgress: [String: JSONValue] = [:]  // attempt id → last progress event
    private var failureDetails: [String: TaskFailed] = [:]
    private var departing: Set<String> = []              // workers that said bye this turn

    // Per turn.
    private var mutations: [StoreMutation] = []
    private var outgoing: [[[UInt8]]] = []
    private var afterCommit: [() -> Void] = []
    private var lastTick: Double = 0
    private var lastHeartbeat: Double = 0

    struct TaskMeta {
        var sweep: String
        var stage: String
        var params: [String: JSONValue]
        var inputs: [String: String]

        var label: String {
            var parts = [stage]
            if let m = params["model"]?.displayText { parts.append(m) }
            if let m = params["method"]?.displayText { parts.append(m) }
            if let s = params["seed"]?.displayText { parts.append("seed \(s)") }
            return parts.joined(separator: " ")
        }
    }

    init(workers: Socket, control: Socket, store: SweepStore, config: CoordinatorConfig, dataEndpoint: String) throws {
        self.workers = workers
        self.control = control
        self.store = store
        self.config = config
        self.dataEndpoint = dataEndpoint
        let now = wallClock()
        self.startedAt = now
        self.scheduler = Scheduler(config: config.scheduler, runId: String(Int64(now * 1000), radix: 36))
        try restore(now: now)
    }

    /// Rebuilds the scheduler from the database after a (re)start: finished tasks stay
    /// finished, attempts still marked running wait for their worker to reconnect.
    private func restore(now: Double) throws {
        let snapshot = try store.loadSnapshot()
        var seedsBySweep: [String: [TaskSeed]] = [:]
        for task in snapshot.tasks { seedsBySweep[task.sweep, default: []].append(register(task)) }
        for plan in snapshot.sweeps {
            plans[plan.name] = plan
            for row in try store.resultRows(sweep: plan.name) where !row.artifacts.isEmpty {
                artifactsByTask[row.taskId] = row.artifacts.map {
                    ProducedArtifact(name: $0.name, sha256: $0.sha256, bytes: $0.bytes)
                }
            }
        }
        // Attempts first, so their tasks are seen as running, not requeued, when added.
        for plan in snapshot.sweeps {
            scheduler.addSweep(name: plan.name, engine: plan.engine, device: plan.device, retries: plan.retries,
                               cancelled: snapshot.cancelledSweeps.contains(plan.name), tasks: [])
        }
        for attempt in snapshot.runningAttempts {
            scheduler.restoreAttempt(attemptId: attempt.id, taskId: attempt.taskId, workerId: attempt.workerId,
                                     startedAt: attempt.startedAt, now: now)
        }
        for plan in snapshot.sweeps {
            scheduler.addSweep(name: plan.name, engine: plan.engine, device: plan.device, retries: plan.retries,
                               cancelled: snapshot.cancelledSweeps.contains(plan.name),
                               tasks: seedsBySweep[plan.name] ?? [])
        }
        mutations.append(.event(at: now, kind: "coordinator", sweep: nil, taskId: nil, workerId: nil,
                                message: "coordinator started with \(snapshot.tasks.count) task(s), "
                                    + "\(snapshot.runningAttempts.count) attempt(s) awaiting their workers"))
        try flush(now: now)
    }

    /// Remembers what an assign needs of a stored task and returns it as the scheduler sees it.
    private func register(_ task: TaskRecord) -> TaskSeed {
        taskMeta[task.id] = TaskMeta(sweep: task.sweep, stage: task.stage, params: task.params, inputs: task.inputs)
        return TaskSeed(id: task.id, sweep: task.sweep, stage: task.stage, priority: task.priority, state: task.state,
                        attemptsUsed: task.attemptsUsed, inputs: Array(task.inputs.values))
    }

    func run(until stopped: @escaping @Sendable () -> Bool) {
        let items = [PollItem(socket: workers, events: .readable), PollItem(socket: control, events: .readable)]
        while !stopped() {
            do {
                let fired = try Poller.poll(items, timeoutMilliseconds: 50)
                let now = wallClock()
                if fired[0].contains(.readable) {
                    var n = 0
                    while n < 4096, let frames = try workers.receive(dontWait: true) {
                        handleWorkerMessage(frames, now: now)
                        n += 1
                    }
                }
                if fired[1].contains(.readable) {
                    while let frames = try control.receive(dontWait: true) {
                        handleControlMessage(frames, now: now)
                    }
                }
                if now - lastTick >= 0.05 {
                    scheduler.tick(now: now)
                    lastTick = now
                }
                if now - lastHeartbeat >= config.heartbeatInterval {
                    for id in scheduler.aliveWorkers {
                        if let identity = identities[id] { send(identity, .heartbeat, Empty()) }
                    }
                    lastHeartbeat = now
                }
                scheduler.dispatch(now: now)
                try flush(now: now)
            } catch let error as ZMQError where error.isTerminated {
                return
            } catch let error as StoreError {
                // The scheduler has moved past what the database holds. Acting on it could run or
                // report work the database does not know about; the database is the truth, and a
                // restarted coordinator resumes from its last commit. So: say so, send nothing, stop.
                FileHandle.standardError.write(Data(
                    ("coordinator: could not commit to \(store.path): \(error)\nNothing of this turn was sent. "
                        + "Stopping; restart the coordinator to resume from the last commit.\n").utf8))
                exit(70)
            } catch {
                // A socket error while receiving: log it; what this turn decided is committed and
                // sent by the next turn's flush.
                FileHandle.standardError.write(Data("coordinator: \(error)\n".utf8))
            }
        }
    }

    // MARK: - Commit, then act

    private func flush(now: Double) throws {
        for effect in scheduler.drainEffects() { translate(effect, now: now) }
        if !mutations.isEmpty {
            let batch = mutations
            mutations.removeAll(keepingCapacity: true)
            try store.apply(batch)
        }
        // Committed: from here nothing may throw, or the next turn would send it all again.
        for frames in outgoing {
            do {
                try workers.send(frames)
            } catch let e as ZMQError where e.isHostUnreachable {
                continue  // the worker is gone; heartbeats or reconnection settle its attempts
            } catch {
                FileHandle.standardError.write(Data("coordinator: could not send to a worker: \(error)\n".utf8))
            }
        }
        outgoing.removeAll(keepingCapacity: true)
        for action in afterCommit { action() }
        afterCommit.removeAll(keepingCapacity: true)
    }

    private func send<T: Encodable>(_ identity: [UInt8], _ type: MessageType, _ header: T) {
        guard let frames = try? Codec.frames(type, header) else { return }
        outgoing.append([identity] + frames)
    }

    private func translate(_ effect: SchedulerEffect, now: Double) {
        switch effect {
        case .assign(let workerId, let attemptId, let taskId):
            guard let identity = identities[workerId], let assign = makeAssign(attemptId: attemptId, taskId: taskId)
            else { return }
            send(identity, .assign, assign)
        case .cancel(let workerId, let attemptId, let reason):
            if let identity = identities[workerId] { send(identity, .cancel, Cancel(attemptId: attemptId, reason: reason)) }
        case .taskState(let taskId, let state, let error):
            mutations.append(.taskState(taskId: taskId, state: state, error: error, at: now))
        case .attemptsUsed(let taskId, let count):
            mutations.append(.taskAttemptsUsed(taskId: taskId, attemptsUsed: count))
        case .attemptStarted(let attemptId, let taskId, let workerId, let attemptsUsed):
            mutations.append(.taskStarted(taskId: taskId, attemptsUsed: attemptsUsed, at: now))
            mutations.append(.attemptStarted(attemptId: attemptId, taskId: taskId, workerId: workerId, at: now))
        case .attemptEnded(let attemptId, _, let outcome, let error):
            let failure = failureDetails.removeValue(forKey: attemptId)
            lastProgress[attemptId] = nil
            mutations.append(.attemptEnded(attemptId: attemptId, outcome: outcome, at: now,
                                           exitCode: failure?.exitCode, error: failure?.error ?? error,
                                           stderrTail: failure?.stderrTail))
        case .workerDead(let workerId):
            let known = workerHosts[workerId]
            let state = departing.remove(workerId) != nil ? "left" : "dead"
            mutations.append(.worker(id: workerId, host: known?.host ?? "?", info: known?.info ?? .null, seenAt: now,
                                     state: state))
        case .log(let kind, let sweep, let taskId, let workerId, let message):
            mutations.append(.event(at: now, kind: kind, sweep: sweep, taskId: taskId, workerId: workerId,
                                    message: message))
        }
    }

    private func makeAssign(attemptId: String, taskId: String) -> Assign? {
        guard let meta = taskMeta[taskId], let plan = plans[meta.sweep] else { return nil }
        var inputs: [String: InputArtifact] = [:]
        for (stage, inputTask) in meta.inputs {
            // A task consumes its input's checkpoint (or its only artifact).
            let produced = artifactsByTask[inputTask] ?? []
            if let a = produced.first(where: { $0.name == "checkpoint" }) ?? produced.first {
                inputs[stage] = InputArtifact(taskId: inputTask, name: a.name, sha256: a.sha256, bytes: a.bytes)
            }
        }
        var method: JSONValue? = nil
        if let name = meta.params["method"]?.stringValue { method = plan.context["methods"]?[name] }
        return Assign(attemptId: attemptId, taskId: taskId, sweep: meta.sweep, stage: meta.stage, engine: plan.engine,
                      params: meta.params, method: method, data: plan.context["data"],
                      measure: plan.context["measure"], inputs: inputs, device: plan.device)
    }

    // MARK: - Worker messages

    private func handleWorkerMessage(_ frames: [[UInt8]], now: Double) {
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        let envelope: Envelope
        do {
            envelope = try Codec.parse(frames.dropFirst())
        } catch {
            send(identity, .reject, Reject(reason: "\(error)"))
            return
        }
        do {
            if envelope.type == .hello {
                try hello(identity, envelope.decode(Hello.self), now: now)
                return
            }
            guard let workerId = workerIds[identity] else {
                // A worker we do not know (e.g. after a coordinator restart): its results still
                // count, then it must introduce itself again.
                if envelope.type == .result { try result(envelope.decode(TaskResult.self), from: identity, now: now) }
                if envelope.type == .failed { try failed(envelope.decode(TaskFailed.self), from: identity, now: now) }
                send(identity, .reject, Reject(reason: "unknown worker: send hello"))
                return
            }
            scheduler.workerSeen(id: workerId, now: now)
            if !scheduler.isKnownAlive(workerId), envelope.type != .bye {
                if envelope.type == .result { try result(envelope.decode(TaskResult.self), from: identity, now: now) }
                if envelope.type == .failed { try failed(envelope.decode(TaskFailed.self), from: identity, now: now) }
                send(identity, .reject, Reject(reason: "unknown worker: send hello"))
                return
            }
            switch envelope.type {
            case .ready:
                scheduler.workerReady(id: workerId, credits: try envelope.decode(Ready.self).credits, now: now)
            case .heartbeat:
                let running = try envelope.decode(Heartbeat.self).running
                scheduler.workerRunning(id: workerId, running: running, now: now)
            case .progress:
                let progress = try envelope.decode(TaskProgress.self)
                lastProgress[progress.attemptId] = progress.event
                recordMetrics(progress, now: now)
            case .result:
                let message = try envelope.decode(TaskResult.self)
                try result(message, from: identity, now: now)
                if message.credit > 0 { scheduler.workerReady(id: workerId, credits: message.credit, now: now) }
            case .failed:
                let message = try envelope.decode(TaskFailed.self)
                try failed(message, from: identity, now: now)
                if message.credit > 0 { scheduler.workerReady(id: workerId, credits: message.credit, now: now) }
            case .bye:
                departing.insert(workerId)
                scheduler.workerGone(id: workerId, reason: "said bye", now: now)
                workerIds[identity] = nil
                identities[workerId] = nil
            default:
                send(identity, .reject, Reject(reason: "a worker may not send `\(envelope.type.rawValue)`"))
            }
        } catch {
            send(identity, .reject, Reject(reason: "\(error)"))
        }
    }

    private func hello(_ identity: [UInt8], _ hello: Hello, now: Double) throws {
        if let old = identities[hello.workerId], old != identity { workerIds[old] = nil }
        identities[hello.workerId] = identity
        workerIds[identity] = hello.workerId
        let capabilities = WorkerCapabilities(
            engines: Set(hello.engines.keys), hasGPU: hello.slots.contains { $0.isGPU },
            hasCPU: hello.slots.contains { !$0.isGPU }, slots: hello.slots.count)
        let info: JSONValue = [
            "pid": .number(Double(hello.pid)),
            "slots": .array(hello.slots.map { .string($0.device) }),
            "engines": .object(hello.engines),
        ]
        workerHosts[hello.workerId] = (hello.host, hello.slots.count, info)
        scheduler.workerConnected(id: hello.workerId, capabilities: capabilities, running: hello.running, now: now)
        mutations.append(.worker(id: hello.workerId, host: hello.host, info: info, seenAt: now, state: "alive"))
        send(identity, .welcome, Welcome(heartbeatInterval: config.heartbeatInterval,
                                         deadAfter: config.scheduler.deadAfter, dataEndpoint: dataEndpoint))
    }

    private func recordMetrics(_ progress: TaskProgress, now: Double) {
        guard case .object(let fields) = progress.event else { return }
        let step = fields["epoch"]?.intValue ?? fields["step"]?.intValue ?? 0
        for (name, value) in fields where name != "event" && name != "epoch" && name != "epochs" {
            if let v = value.doubleValue {
                mutations.append(.metric(attemptId: progress.attemptId, step: step, name: name, value: v))
            }
        }
    }

    private func result(_ result: TaskResult, from identity: [UInt8], now: Double) throws {
        // Every artifact the result names must already be here, verified.
        for artifact in result.artifacts {
            let path = ArtifactFiles.finalPath(root: config.artifactDirectory, sha256: artifact.sha256)
            guard FileManager.default.fileExists(atPath: path) else {
                try failed(TaskFailed(attemptId: result.attemptId, taskId: result.taskId,
                                      error: "the result names artifact \(artifact.name) (\(artifact.sha256.prefix(12))) "
                                          + "that never reached the coordinator", exitCode: nil, stderrTail: nil,
                                      retryable: true),
                           from: identity, now: now)
                return
            }
        }
        let decision = scheduler.resultArrived(attemptId: result.attemptId, now: now)
        let outcome: String
        switch decision {
        case .accept(let taskId):
            var metrics: [String: Double?] = [:]
            for (name, value) in result.metrics {
                switch value {
                case .number(let d): metrics[name] = d
                case .null: metrics[name] = .some(nil)
                case .bool(let b): metrics[name] = b ? 1 : 0
                default: continue
                }
            }
            mutations.append(.result(taskId: taskId, attemptId: result.attemptId, metrics: metrics, units: result.units,
                                     details: result.details, at: now))
            for artifact in result.artifacts {
                let path = ArtifactFiles.finalPath(root: config.artifactDirectory, sha256: artifact.sha256)
                mutations.append(.artifact(sha256: artifact.sha256, bytes: artifact.bytes, path: path, at: now))
                mutations.append(.taskArtifact(taskId: taskId, name: artifact.name, sha256: artifact.sha256))
            }
            if !result.artifacts.isEmpty { artifactsByTask[taskId] = result.artifacts }
            outcome = "stored"
        case .duplicate:
            outcome = "duplicate"
        case .unknown:
            outcome = "unknown"
        }
        // The ack leaves after the commit, so a worker forgets a result only once it is stored.
        send(identity, .ack, Ack(attemptId: result.attemptId, outcome: outcome))
    }

    private func failed(_ failure: TaskFailed, from identity: [UInt8], now: Double) throws {
        failureDetails[failure.attemptId] = failure
        let known = scheduler.failureArrived(attemptId: failure.attemptId, retryable: failure.retryable,
                                             error: failure.error, now: now)
        if known == nil { failureDetails[failure.attemptId] = nil }
        send(identity, .ack, Ack(attemptId: failure.attemptId, outcome: known == nil ? "unknown" : "recorded"))
    }

    // MARK: - Control messages

    private func handleControlMessage(_ frames: [[UInt8]], now: Double) {
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        var reply: ControlReply
        do {
            let envelope = try Codec.parse(frames.dropFirst())
            switch envelope.type {
            case .launch:
                reply = try launch(envelope.decode(LaunchRequest.self).plan, now: now)
            case .status:
                reply = ControlReply(ok: true, body: try JSONValue.parse(Data(Codec.encodeJSON(liveStatus(now: now)))))
            case .cancelSweep:
                let name = try envelope.decode(SweepRequest.self).sweep
                guard plans[name] != nil else { throw CoordinatorError("there is no sweep named '\(name)'") }
                scheduler.cancelSweep(name, now: now)
                mutations.append(.sweepCancelled(sweep: name, cancelled: true, at: now))
                reply = ControlReply(ok: true, body: ["sweep": .string(name)])
            case .retrySweep:
                let name = try envelope.decode(SweepRequest.self).sweep
                guard plans[name] != nil else { throw CoordinatorError("there is no sweep named '\(name)'") }
                let n = scheduler.retrySweep(name)
                mutations.append(.sweepCancelled(sweep: name, cancelled: false, at: now))
                reply = ControlReply(ok: true, body: ["sweep": .string(name), "retried": .number(Double(n))])
            default:
                reply = ControlReply(ok: false, error: "the control socket does not take `\(envelope.type.rawValue)`")
            }
        } catch {
            reply = ControlReply(ok: false, error: "\(error)")
        }
        if let frames = try? Codec.frames(.reply, reply) {
            // Replies to the CLI go out after this turn's commit as well.
            let control = self.control
            afterCommit.append { try? control.send([identity] + frames) }
        }
    }

    private func launch(_ plan: SweepPlan, now: Double) throws -> ControlReply {
        try flush(now: now)  // earlier state changes first: launch commits on its own
        let summary = try store.launch(plan, now: now)
        plans[plan.name] = plan
        let seeds = try store.loadSnapshot(sweep: plan.name).tasks.map(register)
        scheduler.addSweep(name: plan.name, engine: plan.engine, device: plan.device, retries: plan.retries,
                           cancelled: false, tasks: seeds)
        mutations.append(.event(at: now, kind: "launch", sweep: plan.name, taskId: nil, workerId: nil,
                                message: "launched: \(summary.new) new, \(summary.reused) reused, "
                                    + "\(summary.rerun) to run again, \(summary.total) total"))
        return ControlReply(ok: true, body: [
            "sweep": .string(summary.sweep), "new": .number(Double(summary.new)),
            "reused": .number(Double(summary.reused)), "rerun": .number(Double(summary.rerun)),
            "total": .number(Double(summary.total)),
        ])
    }

    private func liveStatus(now: Double) -> LiveStatus {
        let sweeps = plans.keys.sorted().map { name -> LiveStatus.SweepStatus in
            let counts = scheduler.counts(sweep: name)
            var byName: [String: Int] = [:]
            for (state, n) in counts { byName[state.rawValue] = n }
            let open = (counts[.ready] ?? 0) + (counts[.pending] ?? 0)
            return LiveStatus.SweepStatus(
                name: name, counts: byName, total: counts.values.reduce(0, +),
                cancelled: scheduler.sweeps[name]?.cancelled ?? false,
                waitingReason: open > 0 ? scheduler.waitingReason(sweep: name) : nil)
        }
        let workers = workerHosts.keys.sorted().map { id -> LiveStatus.WorkerStatus in
            let running = scheduler.runningAttempts(ofWorker: id).map { attempt -> LiveStatus.RunningAttempt in
                let taskId = scheduler.taskOf(attempt: attempt) ?? "?"
                return LiveStatus.RunningAttempt(attemptId: attempt, taskId: taskId,
                                                 label: taskMeta[taskId]?.label ?? taskId,
                                                 startedAt: scheduler.startedAt(attempt: attempt) ?? now,
                                                 progress: lastProgress[attempt])
            }
            let entry = workerHosts[id]!
            return LiveStatus.WorkerStatus(id: id, host: entry.host, slots: entry.slots,
                                           alive: scheduler.isKnownAlive(id),
                                           secondsSinceSeen: now - (scheduler.lastSeen(ofWorker: id) ?? now),
                                           running: running)
        }
        return LiveStatus(now: now, startedAt: startedAt, sweeps: sweeps, workers: workers)
    }
}
