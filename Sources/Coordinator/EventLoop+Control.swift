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
            afterCommit.append { _ = try? control.send([identity] + frames) }
        }
    }

    func launch(_ plan: SweepPlan, now: Double) throws -> ControlReply {
        do {
            try flush(now: now)  // earlier state changes first: launch commits on its own
        } catch let error as StoreError {
            // Not a failed launch but a failed commit: stop the loop like any other (the run
            // loop checks), so nothing of this turn is sent.
            fatalStoreError = error
            throw error
        }
        let summary = try store.launch(plan, now: now)
        plans[plan.name] = plan
        let seeds = try store.loadSnapshot(sweep: plan.name).tasks.map(RestoredState.seed)
        scheduler.addSweep(
            name: plan.name, engine: plan.engine, device: plan.device, retries: plan.retries,
            cancelled: false, deadAfter: plan.deadAfter, tasks: seeds, now: now)
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
                "total": .number(Double(summary.total)),
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
                waitingReason: open > 0 ? scheduler.waitingReason(sweep: name) : nil)
        }
        let workers = scheduler.knownWorkers.map { id -> LiveStatus.WorkerStatus in
            let running = scheduler.runningAttempts(ofWorker: id).map { attempt -> LiveStatus.RunningAttempt in
                let taskId = scheduler.taskOf(attempt: attempt) ?? "?"
                return LiveStatus.RunningAttempt(
                    attemptId: attempt, taskId: taskId,
                    label: scheduler.assignment(of: taskId)?.label ?? taskId,
                    startedAt: scheduler.startedAt(attempt: attempt) ?? now,
                    progress: scheduler.progress(ofAttempt: attempt))
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
}
