import Foundation
import Hummingbird
import Reports
import Store
import SweepKit
import Wire

extension APIServer {
    /// Task states in the order counts are listed.
    static let states = TaskState.allCases.map(\.rawValue)

    static func counts(_ counts: [TaskState: Int]) -> JSONValue {
        var out: [String: JSONValue] = [:]
        for state in TaskState.allCases { out[state.rawValue] = .number(Double(counts[state] ?? 0)) }
        return .object(out)
    }

    static func number(_ value: Double?) -> JSONValue { value.map(JSONValue.number) ?? .null }

    /// `GET /api/sweeps`: every sweep in the database with its counts by state; with a live
    /// coordinator, also its throughput, ETA and why it waits.
    func sweeps() async throws -> JSONValue {
        let summaries = try await blocking { [store] in try store.sweepSummaries() }
        let status = await liveStatus()
        let slots = status.map(Self.slots) ?? 0
        var out: [JSONValue] = []
        for summary in summaries {
            out.append(Self.sweepObject(summary, live: status?.sweeps.first { $0.name == summary.name }, slots: slots))
        }
        return ["sweeps": .array(out), "live": .bool(status != nil)]
    }

    static func sweepObject(_ summary: SweepSummary, live: LiveStatus.SweepStatus?, slots: Int) -> JSONValue {
        var object: [String: JSONValue] = [
            "name": .string(summary.name), "engine": .string(summary.engine),
            "createdAt": .number(summary.createdAt), "cancelled": .bool(summary.cancelled),
            "total": .number(Double(summary.total)), "counts": counts(summary.counts),
            "perMinute": .null, "eta": .null, "waitingReason": .null,
        ]
        if let live {
            let (perMinute, eta) = progress(live, slots: slots, open: summary.open)
            object["perMinute"] = number(perMinute)
            object["eta"] = eta
            object["waitingReason"] = live.waitingReason.map(JSONValue.string) ?? .null
        }
        return .object(object)
    }

    /// Slots of the workers alive now.
    static func slots(_ status: LiveStatus) -> Int {
        status.workers.filter(\.alive).reduce(0) { $0 + max($1.slots, 0) }
    }

    /// Tasks per minute over the status' window, and the ETA, as `status` and `run` compute them.
    static func progress(_ sweep: LiveStatus.SweepStatus, slots: Int, open: Int) -> (Double?, JSONValue) {
        guard let timing = sweep.timing else { return (nil, open == 0 ? ["state": "done"] : .null) }
        var perMinute: Double? = nil
        if timing.window >= 60 || (timing.finishedInWindow > 0 && timing.window >= 1) {
            perMinute = Double(max(timing.finishedInWindow, 0)) / timing.window * 60
        }
        var eta = ETAEstimator.estimate(
            timing.groups.map {
                ETAGroup(
                    stage: $0.stage, model: $0.model, waiting: $0.waiting, runningElapsed: $0.runningElapsed,
                    durations: $0.durations)
            }, slots: slots)
        if open == 0 { eta = .done }
        switch eta {
        case .done: return (perMinute, ["state": "done"])
        case .noWorkers: return (perMinute, ["state": "no_workers"])
        case .unknown(let stages, let atLeast):
            return (
                perMinute,
                [
                    "state": "unknown", "stagesUnmeasured": .array(stages.map(JSONValue.string)),
                    "atLeastSeconds": number(atLeast),
                ]
            )
        case .estimate(let seconds, let low, let high):
            return (
                perMinute,
                ["state": "estimate", "seconds": .number(seconds), "low": .number(low), "high": .number(high)]
            )
        }
    }

    /// The sweep's summary, or a 404 naming the sweeps there are.
    func summary(_ name: String) async throws -> SweepSummary {
        let summaries = try await blocking { [store] in try store.sweepSummaries() }
        guard let summary = summaries.first(where: { $0.name == name }) else {
            let known = summaries.prefix(20).map { JSONValue.quoted($0.name) }.joined(separator: ", ")
            throw APIError(
                .notFound,
                "there is no sweep named \(JSONValue.quoted(String(name.prefix(100))))"
                    + (summaries.isEmpty ? "; no sweep has been launched" : "; sweeps: \(known)"))
        }
        return summary
    }

    /// `GET /api/sweeps/NAME`: the sweep and each of its tasks with state, parameters and
    /// final metrics.
    func sweep(_ name: String) async throws -> JSONValue {
        let summary = try await summary(name)
        let rows = try await blocking { [store] in try store.resultRows(sweep: name) }
        let status = await liveStatus()
        var object =
            Self.sweepObject(
                summary, live: status?.sweeps.first { $0.name == name }, slots: status.map(Self.slots) ?? 0
            ).objectValue ?? [:]
        object["tasks"] = .array(rows.map(Self.taskSummary))
        return .object(object)
    }

    static func taskSummary(_ row: ResultRow) -> JSONValue {
        [
            "id": .string(row.taskId), "stage": .string(row.stage), "state": .string(row.state.rawValue),
            "params": .object(row.params), "metrics": metrics(row.metrics), "attempts": .number(Double(row.attempts)),
            "error": row.error.map(JSONValue.string) ?? .null,
        ]
    }

    static func metrics(_ metrics: [String: Double?]) -> JSONValue {
        .object(metrics.mapValues { number($0) })
    }

    /// `GET /api/sweeps/NAME/results`: the JSON of `sparsegrid results NAME --format json`.
    func results(_ name: String) async throws -> String {
        _ = try await summary(name)
        let rows = try await blocking { [store] in try store.resultRows(sweep: name) }
        do {
            return try Reports.renderResults(rows, format: .json)
        } catch {
            throw APIError(.internalServerError, "cannot render the results: \(error)")
        }
    }

    /// The longest stderr tail returned, in characters (the Store caps what it keeps too).
    static let maxStderrTail = 16_384

    /// `GET /api/tasks/ID`: parameters, result, every attempt, artifacts, and the live
    /// progress when it runs now.
    func task(_ id: String) async throws -> JSONValue {
        guard let row = try await blocking({ [store] in try store.task(id: id) }) else {
            throw APIError(.notFound, "there is no task with id \(JSONValue.quoted(String(id.prefix(100))))")
        }
        let attempts = try await blocking { [store] in try store.attempts(task: id) }
        let curves = try await blocking { [store] in try store.curves(task: id) }
        let status = await liveStatus()
        var running: [JSONValue] = []
        for worker in status?.workers ?? [] {
            for attempt in worker.running where attempt.taskId == id {
                running.append(Self.runningObject(attempt, worker: worker.id, now: status?.now ?? 0))
            }
        }
        var object = Self.taskSummary(row).objectValue ?? [:]
        object["sweep"] = .string(row.sweep)
        object["units"] = .object(row.units.mapValues(JSONValue.string))
        object["details"] = row.details
        object["startedAt"] = Self.number(row.startedAt)
        object["finishedAt"] = Self.number(row.finishedAt)
        // Where the result's attempt ran and who shared the device meanwhile (null: not recorded).
        object["device"] = row.device.map(JSONValue.string) ?? .null
        object["tasksAtOnce"] = row.tasksAtOnce.map { .number(Double($0)) } ?? .null
        object["coTenants"] = row.coTenants.map { .array($0.map(JSONValue.string)) } ?? .null
        object["artifacts"] = .array(
            row.artifacts.map {
                ["name": .string($0.name), "sha256": .string($0.sha256), "bytes": .number(Double($0.bytes))]
            })
        object["attemptList"] = .array(
            attempts.map { a in
                [
                    "id": .string(a.id), "worker": .string(a.workerId), "startedAt": .number(a.startedAt),
                    "endedAt": Self.number(a.endedAt), "outcome": .string(a.outcome.rawValue),
                    "exitCode": a.exitCode.map { .number(Double($0)) } ?? .null,
                    "error": a.error.map(JSONValue.string) ?? .null,
                    "stderrTail": a.stderrTail.map { .string(String($0.suffix(Self.maxStderrTail))) } ?? .null,
                ]
            })
        object["running"] = .array(running)
        object["curves"] = .array(curves.map(Self.curveObject))
        return .object(object)
    }

    /// One attempt's stored learning curve; every point has all nine keys, null where the
    /// engine's event had no valid value.
    static func curveObject(_ curve: AttemptCurve) -> JSONValue {
        func count(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
        return [
            "attemptId": .string(curve.attemptId), "worker": .string(curve.workerId),
            "dropped": .number(Double(curve.dropped)),
            "points": .array(
                curve.points.map { p in
                    [
                        "epoch": count(p.epoch), "epochs": count(p.epochs), "step": count(p.step),
                        "loss": number(p.loss), "train_acc": number(p.trainAcc), "test_acc": number(p.testAcc),
                        "val_acc": number(p.valAcc), "lr": number(p.lr), "at": .number(p.at),
                    ]
                }),
        ]
    }

    static func runningObject(_ attempt: LiveStatus.RunningAttempt, worker: String, now: Double) -> JSONValue {
        let p = attempt.progress
        return [
            "attemptId": .string(attempt.attemptId), "taskId": .string(attempt.taskId), "label": .string(attempt.label),
            "sweep": attempt.sweep.map(JSONValue.string) ?? .null, "worker": .string(worker),
            "startedAt": .number(attempt.startedAt), "elapsedSeconds": .number(max(now - attempt.startedAt, 0)),
            "epoch": number(p?["epoch"]?.doubleValue), "epochs": number(p?["epochs"]?.doubleValue),
            "loss": number(p?["loss"]?.doubleValue),
        ]
    }

    /// `GET /api/workers`: each worker the database knows, with what the coordinator says of
    /// it now (slots, heartbeat age, running attempts with epoch and loss) and the attempts it
    /// ran to success.
    func workers() async throws -> JSONValue {
        let (rows, done) = try await blocking { [store] in (try store.workers(), try store.succeededAttemptsByWorker())
        }
        let status = await liveStatus()
        var live: [String: LiveStatus.WorkerStatus] = [:]
        for worker in status?.workers ?? [] { live[worker.id] = worker }
        var out: [JSONValue] = []
        var seen = Set<String>()
        for row in rows {
            seen.insert(row.id)
            out.append(
                Self.workerObject(
                    id: row.id, host: row.host, stored: row, live: live[row.id], now: status?.now,
                    done: done[row.id] ?? 0))
        }
        for worker in status?.workers ?? [] where !seen.contains(worker.id) {
            out.append(
                Self.workerObject(
                    id: worker.id, host: worker.host, stored: nil, live: worker, now: status?.now,
                    done: done[worker.id] ?? 0))
        }
        return ["workers": .array(out), "live": .bool(status != nil)]
    }

    static func workerObject(
        id: String, host: String, stored: WorkerRow?, live: LiveStatus.WorkerStatus?, now: Double?, done: Int
    ) -> JSONValue {
        var state = stored?.state ?? "unknown"
        if let live { state = live.alive ? (stored?.state == "draining" ? "draining" : "alive") : "dead" }
        return [
            "id": .string(id), "host": .string(host), "state": .string(state),
            "slots": live.map { .number(Double($0.slots)) } ?? .null,
            "heartbeatAgeSeconds": number(live?.secondsSinceSeen),
            "firstSeen": number(stored?.firstSeen), "lastSeen": number(stored?.lastSeen),
            "info": stored?.info ?? .null, "tasksDone": .number(Double(done)),
            "running": .array((live?.running ?? []).map { runningObject($0, worker: id, now: now ?? 0) }),
        ]
    }
}

extension SweepSummary {
    /// Tasks not finished: running, ready or pending.
    var open: Int { [TaskState.running, .ready, .pending].reduce(0) { $0 + (counts[$1] ?? 0) } }
}
