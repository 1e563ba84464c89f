import Foundation
import Store
import SweepKit
import Wire
import ZeroMQ

/// The control socket: launch, status, cancel, retry — each only with the token or an
/// allow-listed CURVE client key.
extension EventLoop {
    // MARK: - Control messages

    func handleControlMessage(_ message: ReceivedMessage, now: Double) {
        let frames = message.frames
        guard frames.count >= 2 else { return }
        let identity = frames[0]
        var reply: ControlReply
        do {
            let envelope = try Codec.parse(
                frames.dropFirst(), maxPayloadBytes: 256,
                maxHeaderBytes: WireLimits.maxControlBytes)
            // A CURVE client got through the ZAP handler's control allow-list (its key is the
            // User-Id); anyone else shows the token, in the payload frame, compared in constant time.
            let curveClient = message.userId != nil && config.curve?.securesControl == true
            guard curveClient || envelope.payload.map({ ControlToken.matches($0, controlToken) }) == true else {
                throw WireError(
                    "the control request carries no valid token: run the command as the user that "
                        + "owns the coordinator's state directory (it reads control.token there), or "
                        + "pass --token-file", code: .unauthorized)
            }
            switch envelope.type {
            case .launch:
                reply = try launch(LaunchRequest(header: envelope.header).plan, now: now)
            case .launchBegin:
                reply = try launchBegin(LaunchBegin(header: envelope.header), client: identity, now: now)
            case .launchTasks:
                reply = try launchPart(LaunchTasks(header: envelope.header), client: identity, now: now)
            case .launchEnd:
                reply = try launchEnd(LaunchEnd(header: envelope.header), client: identity, now: now)
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
            afterCommit.append { _ = try? control.send([identity] + frames) }
        }
    }

    /// A whole plan in one message (`launch`).
    func launch(_ plan: SweepPlan, now: Double) throws -> ControlReply {
        try commitLaunch(plan, now: now) { try self.store.launch(plan, now: now) }
    }

    /// Stores a launch (`write`: the plan's whole launch, or the merge of a launch in parts),
    /// then hands the sweep's tasks to the scheduler.
    func commitLaunch(_ plan: SweepPlan, now: Double, write: () throws -> LaunchSummary) throws -> ControlReply {
        do {
            try flush(now: now)  // earlier state changes first: launch commits on its own
        } catch let error as StoreError {
            // Not a failed launch but a failed commit: stop the loop like any other (the run
            // loop checks), so nothing of this turn is sent.
            fatalStoreError = error
            throw error
        }
        let summary = try write()
        // Held for its context (data, methods, measure) and stage settings; the tasks are the
        // scheduler's and the database's, so the list is not kept a second time.
        var outline = plan
        outline.tasks = []
        plans[plan.name] = outline
        timingCache[plan.name] = nil
        releaseMemory = true  // the rows read back below, once they are gone
        let seeds = try store.loadSnapshot(sweep: plan.name).tasks.map(RestoredState.seed)
        scheduler.addSweep(
            name: plan.name, engine: plan.engine, device: plan.device, retries: plan.retries,
            cancelled: false, deadAfter: plan.deadAfter, exclusiveStages: Set(plan.exclusiveStages ?? []),
            tasks: seeds, now: now)
        metricsTap.launched(
            ready: seeds.compactMap { $0.state == .ready ? $0.id : nil }, scheduler: scheduler, now: now)
        note(
            SchedulerLog(
                kind: "launch", sweep: plan.name, taskId: nil, workerId: nil,
                message: "sweep \(plan.name) launched: \(summary.new) new, \(summary.reused) reused, "
                    + "\(summary.rerun) to run again, \(summary.total) total"), now: now)
        return ControlReply(
            ok: true,
            body: [
                "sweep": .string(summary.sweep), "new": .number(Double(summary.new)),
                "reused": .number(Double(summary.reused)), "rerun": .number(Double(summary.rerun)),
                "total": .number(Double(summary.total)), "dropped": .number(Double(summary.dropped)),
            ])
    }

    func liveStatus(now: Double) -> LiveStatus {
        let sweeps = plans.keys.sorted().map { name -> LiveStatus.SweepStatus in
            let counts = scheduler.counts(sweep: name)
            var byName: [String: Int] = [:]
            for (state, n) in counts { byName[state.rawValue] = n }
            let open = (counts[.ready] ?? 0) + (counts[.pending] ?? 0)
            return LiveStatus.SweepStatus(
                name: name, counts: byName, total: counts.values.reduce(0, +),
                cancelled: scheduler.sweeps[name]?.cancelled ?? false,
                waitingReason: open > 0 ? scheduler.waitingReason(sweep: name) : nil,
                timing: timing(sweep: name, now: now))
        }
        let workers = scheduler.knownWorkers.map { id -> LiveStatus.WorkerStatus in
            let running = scheduler.runningAttempts(ofWorker: id).map { attempt -> LiveStatus.RunningAttempt in
                let taskId = scheduler.taskOf(attempt: attempt) ?? "?"
                return LiveStatus.RunningAttempt(
                    attemptId: attempt, taskId: taskId,
                    label: scheduler.assignment(of: taskId)?.label ?? taskId,
                    startedAt: scheduler.startedAt(attempt: attempt) ?? now,
                    progress: scheduler.progress(ofAttempt: attempt),
                    sweep: scheduler.assignment(of: taskId)?.sweep)
            }
            return LiveStatus.WorkerStatus(
                id: id, host: scheduler.registration(ofWorker: id)?.host ?? "?",
                slots: scheduler.capabilities(ofWorker: id)?.slots ?? 0,
                alive: scheduler.isKnownAlive(id),
                secondsSinceSeen: now - (scheduler.lastSeen(ofWorker: id) ?? now),
                running: running)
        }
        return LiveStatus(now: now, startedAt: startedAt, sweeps: sweeps, workers: workers)
    }

    /// A sweep's ETA figures, read from the database (every task of the sweep: seconds at a
    /// million tasks) at most once per `max(2 s, 10 × what the last read took)`, so that `status`
    /// polls (`run` every 0.5 s, the dashboard) cost the loop a tenth of its time at most. The
    /// counts beside it come from the scheduler, always current.
    func timing(sweep name: String, now: Double) -> LiveStatus.SweepTiming? {
        if let cached = timingCache[name], now - cached.at < max(2, 10 * cached.took) { return cached.value }
        let started = wallClock()
        let value = (try? store.progressTimings(sweep: name)).map {
            EventLoop.timing($0.tasks, running: $0.running, now: now)
        }
        timingCache[name] = (now, wallClock() - started, value)
        return value
    }

    /// The rate window: throughput is measured over at most the last 10 minutes.
    static let rateWindow = 600.0

    /// Groups a sweep's tasks by (stage, model) for the ETA: waiting tasks, running tasks'
    /// elapsed time, succeeded tasks' durations (the most recent `maxDurations`); and how many
    /// succeeded in the rate window, which starts at the earliest start of an attempt that
    /// ended in it or still runs, when that is later than 10 minutes ago.
    static func timing(
        _ tasks: [TaskTiming], running: [(stage: String, model: String?, startedAt: Double)], now: Double
    ) -> LiveStatus.SweepTiming {
        struct Key: Hashable {
            var stage: String
            var model: String?
        }
        var groups: [Key: LiveStatus.SweepTiming.Group] = [:]
        var order: [Key] = []
        func group(_ key: Key) -> LiveStatus.SweepTiming.Group {
            if let g = groups[key] { return g }
            order.append(key)
            return .init(stage: key.stage, model: key.model, waiting: 0, runningElapsed: [], durations: [])
        }
        var ended: [Key: [(end: Double, duration: Double)]] = [:]
        var finishedInWindow = 0
        var windowStart = now
        let earliest = now - rateWindow
        for t in tasks {
            let key = Key(stage: t.stage, model: t.model)
            var g = group(key)
            if t.state == .ready || t.state == .pending { g.waiting += 1 }
            if t.state == .succeeded, let start = t.startedAt, let end = t.endedAt, end >= start {
                ended[key, default: []].append((end, end - start))
                if end >= earliest {
                    finishedInWindow += 1
                    windowStart = min(windowStart, start)
                }
            }
            groups[key] = g
        }
        for r in running {
            let key = Key(stage: r.stage, model: r.model)
            var g = group(key)
            g.runningElapsed.append(max(now - r.startedAt, 0))
            windowStart = min(windowStart, r.startedAt)
            groups[key] = g
        }
        for (key, list) in ended {
            groups[key]?.durations = list.sorted { $0.end < $1.end }.suffix(LiveStatus.SweepTiming.maxDurations)
                .map(\.duration)
        }
        return LiveStatus.SweepTiming(
            groups: order.compactMap { groups[$0] }, finishedInWindow: finishedInWindow,
            window: now - max(windowStart, earliest))
    }
}
