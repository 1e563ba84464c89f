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

    /// Each sweep's plan, for the context an assign carries (data, methods, measure).
    private var plans: [String: SweepPlan] = [:]
    /// Workers that said bye this turn (recorded as `left`, not `dead`).
    private var departing: Set<String> = []
    /// The control socket's shared secret (`control.token` in the state directory).
    private let controlToken: [UInt8]

    // Per turn.
    private var mutations: [StoreMutation] = []
    private var outgoing: [[[UInt8]]] = []
    private var afterCommit: [() -> Void] = []
    private var lastTick: Double = 0
    private var lastHeartbeat: Double = 0

    init(workers: Socket, control: Socket, store: SweepStore, config: CoordinatorConfig, dataEndpoint: String,
         controlToken: [UInt8]) throws {
        self.controlToken = controlToken
        self.workers = workers
        self.control = control
        self.store = store
        self.config = config
        self.dataEndpoint = dataEndpoint
        let now = wallClock()
        self.startedAt = now
        self.scheduler = Scheduler(config: config.scheduler)
        try restore(now: now)
    }

    /// Rebuilds the scheduler from the database after a (re)start: finished tasks stay
    /// finished, attempts still marked running wait (the restart grace) for their worker to
    /// reconnect and claim them.
    private func restore(now: Double) throws {
        let restored = try RestoredState(store: store, config: config.scheduler, now: now)
        scheduler = restored.scheduler
        plans = restored.plans
        mutations.append(.event(at: now, kind: "coordinator", sweep: nil, taskId: nil, workerId: nil,
                                message: "coordinator started with \(restored.taskCount) task(s), "
                                    + "\(restored.runningAttemptCount) attempt(s) awaiting their workers "
                                    + "(for up to \(Int(config.scheduler.restartGraceSeconds)) s)"))
        try flush(now: now)
    }

    /// Set when a commit failed and the loop stopped (the coordinator reports it and exits).
    private(set) var fatalStoreError: StoreError?

    func run(until stopped: @escaping @Sendable () -> Bool) {
        let items = [PollItem(socket: workers, events: .readable), PollItem(socket: control, events: .readable)]
        while !stopped() {
            do {
                let fired = try Poller.poll(items, timeoutMilliseconds: 50)
                let now = wallClock()
                if fired[0].contains(.readable) {
                    var n = 0
                    while n < 4096, let message = try workers.receiveMessage(dontWait: true) {
                        handleWorkerMessage(message, now: now)
                        n += 1
                    }
                }
                if fired[1].contains(.readable) {
                    while let message = try control.receiveMessage(dontWait: true) {
                        handleControlMessage(message, now: now)
                    }
                }
                if now - lastTick >= 0.05 {
                    scheduler.tick(now: now)
                    lastTick = now
                }
                if now - lastHeartbeat >= config.heartbeatInterval {
                    for id in scheduler.aliveWorkers {
                        if let identity = scheduler.registration(ofWorker: id)?.identity {
                            send(identity, .heartbeat, Empty())
                        }
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
                fatalStoreError = error
                return
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

    private func send<T: WireMessage>(_ identity: [UInt8], _ type: MessageType, _ header: T) {
        outgoing.append([identity] + Codec.frames(type, header))
    }

    private func translate(_ effect: SchedulerEffect, now: Double) {
        switch effect {
        case .assign(let workerId, let attemptId, let taskId):
            guard let identity = scheduler.registration(ofWorker: workerId)?.identity,
                let assign = makeAssign(attemptId: attemptId, taskId: taskId)
            else { return }
            send(identity, .assign, assign)
        case .cancel(let workerId, let attemptId, let reason):
            if let identity = scheduler.registration(ofWorker: workerId)?.identity {
                send(identity, .cancel, Cancel(attemptId: attemptId, reason: reason))
            }
        default:
            mutations += storeMutations(for: effect, scheduler: scheduler, departing: &departing, now: now)
        }
    }

    private func makeAssign(attemptId: String, taskId: String) -> Assign? {
        guard let task = scheduler.assignment(of: taskId), let plan = plans[task.sweep] else { return nil }
        let inputs = task.inputs.mapValues {
            InputArtifact(taskId: $0.taskId, name: $0.artifact.name, sha256: $0.artifact.sha256, bytes: $0.artifact.bytes)
        }
        var method: JSONValue? = nil
        if let name = task.params["method"]?.stringValue { method = plan.context["methods"]?[name] }
        return Assign(attemptId: attemptId, taskId: taskId, sweep: task.sweep, stage: task.stage, engine: task.engine,
                      params: task.params, method: method, data: plan.context["data"],
                      measure: plan.context["measure"], inputs: inputs, device: task.device)
    }

    // MARK: - Worker messages

    /// One message from the worker socket. Nothing but `hello` is taken from a connection
    /// that has not registered; results, failures and progress only for the sender's own
    /// attempts; every field is checked by its type's decoder before anything acts on it.
    private func handleWorkerMessage(_ message: ReceivedMessage, now: Double) {
        let frames = message.frames
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        do {
            let envelope = try Codec.parse(frames.dropFirst())
            if envelope.type == .hello {
                try hello(identity, key: message.userId, envelope.decode(Hello.self), now: now)
                return
            }
            guard let workerId = scheduler.workerId(forIdentity: identity) else {
                // Never hello'd, or declared dead, or this coordinator restarted: it must say
                // hello first (a worker then resends what it has not had acknowledged).
                send(identity, .reject, Reject(.unknownWorker, "unknown worker: send hello"))
                return
            }
            scheduler.workerSeen(id: workerId, now: now)
            switch envelope.type {
            case .ready:
                scheduler.workerReady(id: workerId, credits: try envelope.decode(Ready.self).credits, now: now)
            case .heartbeat:
                scheduler.workerRunning(id: workerId, running: try envelope.decode(Heartbeat.self).running, now: now)
            case .progress:
                let progress = try envelope.decode(TaskProgress.self)
                if scheduler.progressArrived(attemptId: progress.attemptId, from: workerId, event: progress.event) {
                    recordMetrics(progress)
                }
            case .result:
                let message = try envelope.decode(TaskResult.self)
                result(message, from: workerId, identity: identity, now: now)
                if message.credit > 0 { scheduler.workerReady(id: workerId, credits: message.credit, now: now) }
            case .failed:
                let message = try envelope.decode(TaskFailed.self)
                failed(message, from: workerId, identity: identity, now: now)
                if message.credit > 0 { scheduler.workerReady(id: workerId, credits: message.credit, now: now) }
            case .bye:
                departing.insert(workerId)
                scheduler.workerGone(id: workerId, reason: "said bye", now: now)
            default:
                send(identity, .reject, Reject(.notAllowed, "a worker may not send `\(envelope.type.rawValue)`"))
            }
        } catch let error as WireError {
            send(identity, .reject, Reject(error))
        } catch {
            send(identity, .reject, Reject(.malformed, "\(error)"))
        }
    }

    private func hello(_ identity: [UInt8], key: String?, _ hello: Hello, now: Double) throws {
        let capabilities = WorkerCapabilities(
            engines: Set(hello.engines.keys), hasGPU: hello.slots.contains { $0.isGPU },
            hasCPU: hello.slots.contains { !$0.isGPU }, slots: hello.slots.count)
        let info: JSONValue = [
            "pid": .number(Double(hello.pid)),
            "slots": .array(hello.slots.map { .string($0.device) }),
            "engines": .object(hello.engines),
        ]
        let registration = WorkerRegistration(identity: identity, key: key, host: hello.host, info: info)
        switch scheduler.workerHello(id: hello.workerId, registration: registration, capabilities: capabilities,
                                     running: hello.running, now: now) {
        case .refused(let reason):
            send(identity, .reject, Reject(.idInUse, reason))
        case .accepted:
            mutations.append(.worker(id: hello.workerId, host: hello.host, info: info, seenAt: now, state: "alive"))
            send(identity, .welcome, Welcome(heartbeatInterval: config.heartbeatInterval,
                                             deadAfter: config.scheduler.deadAfter, dataEndpoint: dataEndpoint))
        }
    }

    private func recordMetrics(_ progress: TaskProgress) {
        guard case .object(let fields) = progress.event else { return }
        let step = fields["epoch"]?.intValue ?? fields["step"]?.intValue ?? 0
        for (name, value) in fields where name != "event" && name != "epoch" && name != "epochs" {
            if let v = value.doubleValue {
                mutations.append(.metric(attemptId: progress.attemptId, step: step, name: name, value: v))
            }
        }
    }

    private func result(_ result: TaskResult, from workerId: String, identity: [UInt8], now: Double) {
        // Every artifact the result names must already be here, verified, and of the size it claims.
        for artifact in result.artifacts {
            let path = ArtifactFiles.finalPath(root: config.artifactDirectory, sha256: artifact.sha256)
            guard ArtifactFiles.fileSize(path) == artifact.bytes else {
                failed(TaskFailed(attemptId: result.attemptId, taskId: result.taskId,
                                  error: "the result names artifact \(artifact.name) (\(artifact.sha256.prefix(12))) "
                                      + "that never reached the coordinator (or not at the size it names)", exitCode: nil, stderrTail: nil,
                                  retryable: true),
                       from: workerId, identity: identity, now: now)
                return
            }
        }
        let digests = result.artifacts.map { ArtifactDigest(name: $0.name, sha256: $0.sha256, bytes: $0.bytes) }
        let outcome: Ack.Outcome
        switch scheduler.resultArrived(attemptId: result.attemptId, from: workerId, artifacts: digests, now: now) {
        case .accept(let taskId):
            mutations.append(.result(taskId: taskId, attemptId: result.attemptId, metrics: result.metrics,
                                     units: result.units, details: result.details, at: now))
            for artifact in result.artifacts {
                let path = ArtifactFiles.finalPath(root: config.artifactDirectory, sha256: artifact.sha256)
                mutations.append(.artifact(sha256: artifact.sha256, bytes: artifact.bytes, path: path, at: now))
                mutations.append(.taskArtifact(taskId: taskId, name: artifact.name, sha256: artifact.sha256))
            }
            outcome = .stored
        case .duplicate:
            outcome = .duplicate
        case .unknown:
            outcome = .unknown
        case .notYours:
            outcome = .refused
        }
        // The ack leaves after the commit, so a worker forgets a result only once it is stored.
        send(identity, .ack, Ack(attemptId: result.attemptId, outcome: outcome))
    }

    private func failed(_ failure: TaskFailed, from workerId: String, identity: [UInt8], now: Double) {
        let report = FailureReport(error: failure.error, exitCode: failure.exitCode, stderrTail: failure.stderrTail,
                                   retryable: failure.retryable)
        let outcome: Ack.Outcome
        switch scheduler.failureArrived(attemptId: failure.attemptId, from: workerId, report, now: now) {
        case .recorded: outcome = .recorded
        case .unknown: outcome = .unknown
        case .notYours: outcome = .refused
        }
        send(identity, .ack, Ack(attemptId: failure.attemptId, outcome: outcome))
    }

    // MARK: - Control messages

    private func handleControlMessage(_ message: ReceivedMessage, now: Double) {
        let frames = message.frames
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        var reply: ControlReply
        do {
            let envelope = try Codec.parse(frames.dropFirst(), maxPayloadBytes: 256,
                                           maxHeaderBytes: WireLimits.maxControlBytes)
            // A CURVE client got through the ZAP handler's control allow-list (its key is the
            // User-Id); anyone else shows the token, in the payload frame, compared in constant time.
            let curveClient = message.userId != nil && config.curve?.securesControl == true
            guard curveClient || envelope.payload.map({ ControlToken.matches($0, controlToken) }) == true else {
                throw WireError("the control request carries no valid token: run the command as the user that "
                                    + "owns the coordinator's state directory (it reads control.token there), or "
                                    + "pass --token-file", code: .unauthorized)
            }
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
        let seeds = try store.loadSnapshot(sweep: plan.name).tasks.map(RestoredState.seed)
        scheduler.addSweep(name: plan.name, engine: plan.engine, device: plan.device, retries: plan.retries,
                           cancelled: false, tasks: seeds, now: now)
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
        let workers = scheduler.knownWorkers.map { id -> LiveStatus.WorkerStatus in
            let running = scheduler.runningAttempts(ofWorker: id).map { attempt -> LiveStatus.RunningAttempt in
                let taskId = scheduler.taskOf(attempt: attempt) ?? "?"
                return LiveStatus.RunningAttempt(attemptId: attempt, taskId: taskId,
                                                 label: scheduler.assignment(of: taskId)?.label ?? taskId,
                                                 startedAt: scheduler.startedAt(attempt: attempt) ?? now,
                                                 progress: scheduler.progress(ofAttempt: attempt))
            }
            return LiveStatus.WorkerStatus(id: id, host: scheduler.registration(ofWorker: id)?.host ?? "?",
                                           slots: scheduler.capabilities(ofWorker: id)?.slots ?? 0,
                                           alive: scheduler.isKnownAlive(id),
                                           secondsSinceSeen: now - (scheduler.lastSeen(ofWorker: id) ?? now),
                                           running: running)
        }
        return LiveStatus(now: now, startedAt: startedAt, sweeps: sweeps, workers: workers)
    }
}
