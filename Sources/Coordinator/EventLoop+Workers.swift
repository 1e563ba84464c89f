import Foundation
import Store
import SweepKit
import Wire
import ZeroMQ

/// The worker socket: registration (hello), credits, heartbeats, progress, results, failures.
extension EventLoop {
    // MARK: - Worker messages

    /// One message from the worker socket. Nothing but `hello` is taken from a connection
    /// that has not registered; results, failures and progress only for the sender's own
    /// attempts; every field is checked by its type's decoder before anything acts on it.
    func handleWorkerMessage(_ message: ReceivedMessage, now: Double) {
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
                    // Committed with the loop's next batch, like the metrics rows.
                    if let point = AttemptProgress.curvePoint(progress.event, at: now) {
                        mutations.append(.curvePoint(attemptId: progress.attemptId, point: point))
                    }
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

    func hello(_ identity: [UInt8], key: String?, _ hello: Hello, now: Double) throws {
        let capabilities = WorkerCapabilities(
            engines: Set(hello.engines.keys), hasGPU: hello.slots.contains { $0.isGPU },
            hasCPU: hello.slots.contains { !$0.isGPU }, slots: hello.slots.count,
            shared: hello.slots.contains { $0.isShared })
        var info: JSONValue = [
            "pid": .number(Double(hello.pid)),
            "slots": .array(hello.slots.map { .string($0.device) }),
            "engines": .object(hello.engines),
        ]
        // How many tasks share each slot's device, in slot order (only when some slot is shared).
        if capabilities.shared, case .object(var fields) = info {
            fields["share"] = .array(hello.slots.map { .number(Double($0.share)) })
            info = .object(fields)
        }
        // Kept so that after a restart only the same key can adopt this worker's attempts.
        if let key, case .object(var fields) = info {
            fields["curveKey"] = .string(key)
            info = .object(fields)
        }
        let registration = WorkerRegistration(identity: identity, key: key, host: hello.host, info: info)
        switch scheduler.workerHello(
            id: hello.workerId, registration: registration, capabilities: capabilities,
            running: hello.running, now: now)
        {
        case .refused(let reason):
            send(identity, .reject, Reject(.idInUse, reason))
        case .accepted:
            mutations.append(.worker(id: hello.workerId, host: hello.host, info: info, seenAt: now, state: "alive"))
            metricsTap.workerJoined(hello.workerId)
            send(
                identity, .welcome,
                Welcome(
                    heartbeatInterval: config.heartbeatInterval,
                    deadAfter: config.scheduler.deadAfter, dataEndpoint: dataEndpoint))
        }
    }

    func recordMetrics(_ progress: TaskProgress) {
        guard case .object(let fields) = progress.event else { return }
        let step = fields["epoch"]?.intValue ?? fields["step"]?.intValue ?? 0
        for (name, value) in fields where name != "event" && name != "epoch" && name != "epochs" {
            if let v = value.doubleValue {
                mutations.append(.metric(attemptId: progress.attemptId, step: step, name: name, value: v))
            }
        }
    }

    func result(_ result: TaskResult, from workerId: String, identity: [UInt8], now: Double) {
        // Every artifact the result names must already be here, verified, and of the size it claims.
        for artifact in result.artifacts {
            let path = ArtifactFiles.finalPath(root: config.artifactDirectory, sha256: artifact.sha256)
            guard ArtifactFiles.fileSize(path) == artifact.bytes else {
                failed(
                    TaskFailed(
                        attemptId: result.attemptId, taskId: result.taskId,
                        error: "the result names artifact \(artifact.name) (\(artifact.sha256.prefix(12))) "
                            + "that never reached the coordinator (or not at the size it names)", exitCode: nil,
                        stderrTail: nil,
                        retryable: true),
                    from: workerId, identity: identity, now: now)
                return
            }
        }
        let outcome: Ack.Outcome
        switch scheduler.resultArrived(
            attemptId: result.attemptId, from: workerId, artifacts: result.artifacts, now: now)
        {
        case .accept(let taskId):
            mutations.append(
                .result(
                    taskId: taskId, attemptId: result.attemptId, metrics: result.metrics,
                    units: result.units, details: result.details, at: now))
            if let tenancy = result.cotenancy {
                mutations.append(
                    .attemptDevice(
                        attemptId: result.attemptId, device: tenancy.device, atOnce: tenancy.atOnce,
                        coTenants: tenancy.taskIds))
            }
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

    func failed(_ failure: TaskFailed, from workerId: String, identity: [UInt8], now: Double) {
        let report = FailureReport(
            error: failure.error, exitCode: failure.exitCode, stderrTail: failure.stderrTail,
            retryable: failure.retryable, timedOut: failure.outcome == .timeout)
        let outcome: Ack.Outcome
        switch scheduler.failureArrived(attemptId: failure.attemptId, from: workerId, report, now: now) {
        case .recorded: outcome = .recorded
        case .unknown: outcome = .unknown
        case .notYours: outcome = .refused
        }
        send(identity, .ack, Ack(attemptId: failure.attemptId, outcome: outcome))
    }
}
