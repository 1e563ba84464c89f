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
    let workers: Socket
    let control: Socket
    let store: SweepStore
    var scheduler: Scheduler
    let config: CoordinatorConfig
    let dataEndpoint: String
    let startedAt: Double

    /// Each sweep's plan, for the context an assign carries (data, methods, measure).
    var plans: [String: SweepPlan] = [:]
    /// Set after a launch or the restore: the end of the turn hands the heap's free memory back
    /// (`MemoryTrim`), once what they read is gone.
    var releaseMemory = false
    /// Each sweep's ETA figures as `status` last read them (`timing(sweep:now:)`).
    var timingCache: [String: (at: Double, took: Double, value: LiveStatus.SweepTiming?)] = [:]
    /// Launches in parts under way, by session id (EventLoop+Launch.swift).
    var launchSessions: [String: LaunchSession] = [:]
    /// Workers that said bye this turn (recorded as `left`, not `dead`).
    var departing: Set<String> = []
    /// The control socket's shared secret (`control.token` in the state directory).
    let controlToken: [UInt8]
    /// Feeds the Prometheus metrics (`/metrics`) from the effects this loop translates.
    var metricsTap: MetricsTap

    // Per turn.
    var mutations: [StoreMutation] = []
    var outgoing: [[[UInt8]]] = []
    var afterCommit: [() -> Void] = []
    var lastTick: Double = 0
    var lastHeartbeat: Double = 0

    init(
        workers: Socket, control: Socket, store: SweepStore, config: CoordinatorConfig, dataEndpoint: String,
        controlToken: [UInt8], metrics: CoordinatorMetrics
    ) throws {
        self.controlToken = controlToken
        self.metricsTap = MetricsTap(metrics: metrics)
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
        releaseMemory = true
        note(
            SchedulerLog(
                kind: "coordinator", sweep: nil, taskId: nil, workerId: nil,
                message: "coordinator started with \(restored.taskCount) task(s), "
                    + "\(restored.runningAttemptCount) attempt(s) awaiting their workers "
                    + "(for up to \(Int(config.scheduler.restartGraceSeconds)) s); workers are dead after "
                    + "\(Scheduler.seconds(config.scheduler.deadAfter)) of silence"), now: now)
        try flush(now: now)
    }

    /// Set when a commit failed and the loop stopped (the coordinator reports it and exits).
    var fatalStoreError: StoreError?

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
                    // A few per turn: a launch part is decoded and staged in its turn, and the
                    // workers' messages are read between parts.
                    var n = 0
                    while n < 8, let message = try control.receiveMessage(dontWait: true) {
                        handleControlMessage(message, now: now)
                        // A launch whose commit failed: stop as below, sending nothing.
                        if let error = fatalStoreError { throw error }
                        n += 1
                    }
                }
                if now - lastTick >= 0.05 {
                    scheduler.tick(now: now)
                    expireLaunches(now: now)
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
                FileHandle.standardError.write(
                    Data(
                        ("coordinator: could not commit to \(store.path): \(error)\nNothing of this turn was sent. "
                            + "Stopping; restart the coordinator to resume from the last commit.\n").utf8))
                fatalStoreError = error
                return
            } catch {
                // A socket error while receiving: log it; what this turn decided is committed and
                // sent by the next turn's flush.
                logProblem(event: "socket", "\(error)")
            }
        }
    }

    // MARK: - Commit, then act

    func flush(now: Double) throws {
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
                logProblem(event: "socket", "could not send to a worker: \(error)")
            }
        }
        outgoing.removeAll(keepingCapacity: true)
        metricsTap.turnSent(at: wallClock(), scheduler: scheduler)
        for action in afterCommit { action() }
        afterCommit.removeAll(keepingCapacity: true)
        if releaseMemory {
            releaseMemory = false
            MemoryTrim.release()
        }
    }

    /// An operator event: stored in the `events` table with this turn's commit, and printed on
    /// the operator log once committed.
    func note(_ entry: SchedulerLog, now: Double) {
        mutations.append(
            .event(
                at: now, kind: entry.kind, sweep: entry.sweep, taskId: entry.taskId,
                workerId: entry.workerId, message: entry.message))
        guard let log = config.log else { return }
        let line = LogLine(
            ts: now, level: LogLine.Level(rawValue: entry.level.rawValue) ?? .info, event: entry.kind,
            worker: entry.workerId, task: entry.taskId, attempt: entry.attemptId, sweep: entry.sweep,
            msg: entry.message)
        afterCommit.append { log.write(line) }
    }

    /// Something went wrong with a socket: on the operator log, or stderr without one.
    func logProblem(event: String, _ message: String) {
        if let log = config.log {
            log.write(event: event, level: .error, message)
        } else {
            FileHandle.standardError.write(Data("coordinator: \(message)\n".utf8))
        }
    }

    func send<T: WireMessage>(_ identity: [UInt8], _ type: MessageType, _ header: T) {
        outgoing.append([identity] + Codec.frames(type, header))
    }

    private func translate(_ effect: SchedulerEffect, now: Double) {
        metricsTap.observe(effect, scheduler: scheduler, departing: departing, now: now)
        switch effect {
        case .assign(let workerId, let attemptId, let taskId):
            guard let identity = scheduler.registration(ofWorker: workerId)?.identity,
                let assign = makeAssign(attemptId: attemptId, taskId: taskId)
            else { return }
            send(identity, .assign, assign)
            metricsTap.assigned(taskId: taskId, attemptId: attemptId, stage: assign.stage, now: now)
        case .cancel(let workerId, let attemptId, let reason):
            if let identity = scheduler.registration(ofWorker: workerId)?.identity {
                send(identity, .cancel, Cancel(attemptId: attemptId, reason: reason))
            }
        case .log(let entry):
            note(entry, now: now)
        default:
            appendStoreMutations(for: effect, scheduler: scheduler, departing: &departing, now: now, into: &mutations)
        }
    }

    private func makeAssign(attemptId: String, taskId: String) -> Assign? {
        guard let task = scheduler.assignment(of: taskId), let plan = plans[task.sweep] else { return nil }
        let inputs = task.inputs.mapValues {
            InputArtifact(
                taskId: $0.taskId, name: $0.artifact.name, sha256: $0.artifact.sha256, bytes: $0.artifact.bytes)
        }
        var method: JSONValue? = nil
        if let name = task.params["method"]?.stringValue { method = plan.context["methods"]?[name] }
        return Assign(
            attemptId: attemptId, taskId: taskId, sweep: task.sweep, stage: task.stage, engine: task.engine,
            params: task.params, method: method, data: plan.context["data"],
            measure: plan.context["measure"], inputs: inputs, device: task.device,
            timeout: plan.timeout(ofStage: task.stage), isolate: plan.isolates(stage: task.stage))
    }
}
