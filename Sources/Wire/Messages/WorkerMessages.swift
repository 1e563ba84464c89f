import SweepKit

// Worker → coordinator messages. Each reads its header through `Fields` (types, ranges and
// lengths checked) and writes it with `json`: one encoding, used by both sides.

/// One execution slot of a worker: a GPU (CUDA_VISIBLE_DEVICES set per slot) or a CPU share.
public struct SlotInfo: Sendable, Hashable {
    public var index: Int
    /// "cpu" or "cuda:N"
    public var device: String
    public var memoryMiB: Int?
    /// How many of the worker's slots share this slot's device: `--per-gpu K` gives each of a
    /// GPU's K slots `share` K; a worker's N CPU slots share the host's cores (`share` N). 1: the
    /// device is this slot's alone (a hello without the field, from an older worker, means 1).
    public var share: Int

    public init(index: Int, device: String, memoryMiB: Int? = nil, share: Int = 1) {
        self.index = index
        self.device = device
        self.memoryMiB = memoryMiB
        self.share = share
    }

    public var isGPU: Bool { device.hasPrefix("cuda") }
    /// Other slots of the worker may run tasks on this slot's device at the same time.
    public var isShared: Bool { share > 1 }

    init(json: JSONValue) throws {
        let f = try Fields(json, message: "hello.slots[]")
        index = try f.int("index", in: 0...WireLimits.maxSlots)
        device = try f.id("device")
        memoryMiB = f.optional("memoryMiB") == nil ? nil : try f.int("memoryMiB", in: 0...(1 << 30))
        // GPU slots: at most --per-gpu's 64; CPU slots: at most one share per slot a hello may list.
        share = try f.optionalInt("share", in: 1...WireLimits.maxSlots, default: 1)
        if device.hasPrefix("cuda"), share > WireLimits.maxPerGPU {
            throw f.fail("share", "must be at most \(WireLimits.maxPerGPU) for a GPU slot")
        }
    }

    var json: JSONValue {
        [
            "index": .number(Double(index)), "device": .string(device),
            "memoryMiB": memoryMiB.map { .number(Double($0)) } ?? .null, "share": .number(Double(share)),
        ]
    }
}

/// Who else ran on an attempt's device while it ran, as its worker saw it: the task ids of the
/// other attempts that ran on the same device at any time during it, and the most tasks that
/// ran there at once (the attempt included). The worker's claim, carried by its result.
public struct CoTenancy: Sendable, Hashable {
    /// The slot's device: "cuda:N" or "cpu".
    public var device: String
    /// Sorted, at most `WireLimits.maxCoTenants` (the first to come; `atOnce` still counts them all).
    public var taskIds: [String]
    /// 1...`WireLimits.maxSlots`; 1 when the attempt had the device to itself.
    public var atOnce: Int

    public init(device: String, taskIds: [String], atOnce: Int) {
        self.device = device
        self.taskIds = taskIds
        self.atOnce = atOnce
    }

    /// Whether other tasks ran on the device while this attempt ran.
    public var isShared: Bool { atOnce > 1 || !taskIds.isEmpty }

    init(json: JSONValue) throws {
        let f = try Fields(json, message: "result.cotenancy")
        device = try f.id("device")
        taskIds = try f.ids("taskIds", maxCount: WireLimits.maxCoTenants)
        guard Set(taskIds).count == taskIds.count else { throw f.fail("taskIds", "lists a task twice") }
        atOnce = try f.int("atOnce", in: 1...WireLimits.maxSlots)
        // A listed co-tenant ran at the same time as this attempt, so at least two ran at once
        // (the converse need not hold: another attempt of the same task is not listed).
        if atOnce == 1, !taskIds.isEmpty { throw f.fail("atOnce", "is 1 but `taskIds` lists co-tenants") }
    }

    var json: JSONValue {
        [
            "device": .string(device), "taskIds": .array(taskIds.map { .string($0) }),
            "atOnce": .number(Double(atOnce)),
        ]
    }
}

public struct Hello: WireMessage {
    /// Stable across reconnects of the same worker process (and restarts with `--id`).
    public var workerId: String
    public var host: String
    public var pid: Int32
    public var slots: [SlotInfo]
    /// Engine name → what `describe` printed (models, methods, versions); "null" is built in.
    public var engines: [String: JSONValue]
    /// Attempts this worker is still running (after a reconnect), so the coordinator reconciles.
    public var running: [String]

    public init(
        workerId: String, host: String, pid: Int32, slots: [SlotInfo], engines: [String: JSONValue],
        running: [String]
    ) {
        self.workerId = workerId
        self.host = host
        self.pid = pid
        self.slots = slots
        self.engines = engines
        self.running = running
    }

    public init(fields f: Fields) throws {
        workerId = try f.id("workerId")
        host = try f.string("host", maxBytes: WireLimits.maxHostLength)
        guard host.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw f.fail("host", "has control characters")
        }
        pid = Int32(try f.int("pid", in: 0...Int(Int32.max)))
        slots = try f.array("slots", maxCount: WireLimits.maxSlots).map(SlotInfo.init(json:))
        engines = try f.object("engines", maxCount: WireLimits.maxEngines)
        guard engines.keys.allSatisfy(WireId.isValid) else { throw f.fail("engines", "has a name that is not an id") }
        running = try f.ids("running", maxCount: WireLimits.maxRunning)
    }

    public var json: JSONValue {
        [
            "workerId": .string(workerId), "host": .string(host), "pid": .number(Double(pid)),
            "slots": .array(slots.map(\.json)), "engines": .object(engines),
            "running": .array(running.map { .string($0) }),
        ]
    }
}

/// Pull-based credit: the worker has `credits` more free slots.
public struct Ready: WireMessage {
    public var credits: Int
    public init(credits: Int) { self.credits = credits }
    public init(fields f: Fields) throws { credits = try f.int("credits", in: 0...WireLimits.maxCredits) }
    public var json: JSONValue { ["credits": .number(Double(credits))] }
}

public struct Heartbeat: WireMessage {
    public var running: [String]
    public init(running: [String]) { self.running = running }
    public init(fields f: Fields) throws { running = try f.ids("running", maxCount: WireLimits.maxRunning) }
    public var json: JSONValue { ["running": .array(running.map { .string($0) })] }
}

public struct TaskProgress: WireMessage {
    public var attemptId: String
    /// The engine's progress or metric event as it printed it (an object).
    public var event: JSONValue

    public init(attemptId: String, event: JSONValue) {
        self.attemptId = attemptId
        self.event = event
    }

    public init(fields f: Fields) throws {
        attemptId = try f.id("attemptId")
        event = .object(try f.object("event", maxCount: WireLimits.maxMetrics))
    }

    public var json: JSONValue { ["attemptId": .string(attemptId), "event": event] }
}

/// An artifact a task produced, already uploaded over the data socket: the scheduler's
/// `ArtifactDigest`, with its wire form.
public typealias ProducedArtifact = ArtifactDigest

extension ArtifactDigest {
    init(json: JSONValue) throws {
        let f = try Fields(json, message: "result.artifacts[]")
        self.init(
            name: try f.id("name"), sha256: try f.sha256("sha256"),
            bytes: try f.int64("bytes", in: 0...WireLimits.maxArtifactBytes))
    }

    var json: JSONValue { ["name": .string(name), "sha256": .string(sha256), "bytes": .number(Double(bytes))] }
}

public struct TaskResult: WireMessage {
    public var attemptId: String
    public var taskId: String
    /// Metric name → value; nil where the engine reported null (e.g. no sparse kernel ran).
    public var metrics: [String: Double?]
    public var units: [String: String]
    public var details: JSONValue
    /// Already uploaded over the data socket and verified by the coordinator.
    public var artifacts: [ProducedArtifact]
    /// Slots this message frees for more work (a `ready` folded into the result: one
    /// message less per task).
    public var credit: Int
    /// The device the attempt ran on and who shared it meanwhile; nil from an older worker
    /// (and for the built-in null engine, which runs on no slot).
    public var cotenancy: CoTenancy?

    public init(
        attemptId: String, taskId: String, metrics: [String: Double?], units: [String: String],
        details: JSONValue, artifacts: [ProducedArtifact], credit: Int = 0, cotenancy: CoTenancy? = nil
    ) {
        self.attemptId = attemptId
        self.taskId = taskId
        self.metrics = metrics
        self.units = units
        self.details = details
        self.artifacts = artifacts
        self.credit = credit
        self.cotenancy = cotenancy
    }

    public init(fields f: Fields) throws {
        attemptId = try f.id("attemptId")
        taskId = try f.id("taskId")
        var metrics: [String: Double?] = [:]
        for (name, value) in try f.object("metrics", maxCount: WireLimits.maxMetrics, optional: true) {
            guard name.utf8.count <= WireLimits.maxMetricNameLength else {
                throw f.fail("metrics", "has a name too long")
            }
            switch value {
            case .number(let d): metrics[name] = .some(d)
            case .null: metrics[name] = .some(nil)
            default: throw f.fail("metrics.\(name)", "must be a number or null")
            }
        }
        self.metrics = metrics
        var units: [String: String] = [:]
        for (name, value) in try f.object("units", maxCount: WireLimits.maxMetrics, optional: true) {
            guard case .string(let s) = value, s.utf8.count <= WireLimits.maxUnitLength,
                name.utf8.count <= WireLimits.maxMetricNameLength
            else {
                throw f.fail(
                    "units.\(name.prefix(64))", "must be a string of at most \(WireLimits.maxUnitLength) bytes")
            }
            units[name] = s
        }
        self.units = units
        details = f.optional("details") ?? .null
        artifacts = try f.array("artifacts", maxCount: WireLimits.maxArtifactsPerResult, optional: true)
            .map(ProducedArtifact.init(json:))
        credit = try f.optionalInt("credit", in: 0...WireLimits.maxCredits, default: 0)
        cotenancy = try f.optional("cotenancy").map(CoTenancy.init(json:))
        if let cotenancy, cotenancy.taskIds.contains(taskId) {
            throw f.fail("cotenancy.taskIds", "lists the attempt's own task")
        }
    }

    public var json: JSONValue {
        [
            "attemptId": .string(attemptId), "taskId": .string(taskId),
            "metrics": .object(metrics.mapValues { $0.map(JSONValue.number) ?? .null }),
            "units": .object(units.mapValues { .string($0) }), "details": details,
            "artifacts": .array(artifacts.map(\.json)), "credit": .number(Double(credit)),
            "cotenancy": cotenancy?.json ?? .null,
        ]
    }
}

public struct TaskFailed: WireMessage {
    /// How the attempt ended, when it is more than "the engine failed" (`retryable` says whether
    /// the task may run again).
    public enum Outcome: String, Sendable, CaseIterable {
        /// The worker stopped the engine at a time limit: the stage's `timeout`, its own
        /// `--task-timeout`, or `--idle-timeout` (no event from the engine). Always retryable.
        case timeout
    }

    public var attemptId: String
    public var taskId: String
    public var error: String
    public var exitCode: Int32?
    public var stderrTail: String?
    /// False when retrying cannot help (the engine said the task is invalid: exit 2).
    public var retryable: Bool
    /// Slots this message frees for more work (see `TaskResult.credit`).
    public var credit: Int
    /// nil: an ordinary failure (recorded `failed`, or `invalid` when not retryable).
    public var outcome: Outcome?

    public init(
        attemptId: String, taskId: String, error: String, exitCode: Int32?, stderrTail: String?,
        retryable: Bool, credit: Int = 0, outcome: Outcome? = nil
    ) {
        self.attemptId = attemptId
        self.taskId = taskId
        self.error = error
        self.exitCode = exitCode
        self.stderrTail = stderrTail
        self.retryable = retryable
        self.credit = credit
        self.outcome = outcome
    }

    public init(fields f: Fields) throws {
        attemptId = try f.id("attemptId")
        taskId = try f.id("taskId")
        error = try f.string("error", maxBytes: WireLimits.maxTextBytes)
        exitCode =
            f.optional("exitCode") == nil ? nil : Int32(try f.int("exitCode", in: Int(Int32.min)...Int(Int32.max)))
        stderrTail = try f.optionalString("stderrTail", maxBytes: WireLimits.maxStderrTailBytes)
        retryable = try f.bool("retryable", default: true)
        credit = try f.optionalInt("credit", in: 0...WireLimits.maxCredits, default: 0)
        if let raw = try f.optionalString("outcome", maxBytes: 32) {
            guard let outcome = Outcome(rawValue: raw) else {
                throw f.fail(
                    "outcome",
                    "is not a known failure outcome (\(Outcome.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard retryable else { throw f.fail("outcome", "`\(raw)` is always retryable, but `retryable` is false") }
            self.outcome = outcome
        } else {
            outcome = nil
        }
    }

    public var json: JSONValue {
        [
            "attemptId": .string(attemptId), "taskId": .string(taskId), "error": .string(error),
            "exitCode": exitCode.map { .number(Double($0)) } ?? .null,
            "stderrTail": stderrTail.map { .string($0) } ?? .null, "retryable": .bool(retryable),
            "credit": .number(Double(credit)), "outcome": outcome.map { .string($0.rawValue) } ?? .null,
        ]
    }
}

extension String {
    /// At most `maxBytes` of UTF-8, cut on a character boundary (for text a peer will check).
    public func truncatedUTF8(_ maxBytes: Int) -> String {
        if utf8.count <= maxBytes { return self }
        var out = ""
        var used = 0
        for ch in self {
            let n = ch.utf8.count
            if used + n > maxBytes { break }
            out.append(ch)
            used += n
        }
        return out
    }
}
