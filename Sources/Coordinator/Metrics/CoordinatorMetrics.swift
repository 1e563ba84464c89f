import Prometheus
import SweepKit
import Synchronization

/// A worker's state as the coordinator knows it. The scheduler has no draining state: a worker
/// that finishes its attempts and says bye is `left`; one that went silent is `dead`.
public enum WorkerMetricState: String, Sendable, CaseIterable {
    case alive, left, dead
}

/// The coordinator's Prometheus metrics (names and meaning: docs/metrics.md). Fed by the event
/// loop's thread, read by whoever serves `/metrics` (`exposition()`), from any thread: every
/// series is made once, up front (or once per stage), so feeding it is an atomic add or a short
/// uncontended lock, never a registry lookup.
public final class CoordinatorMetrics: Sendable {
    /// The registry everything is registered in; `exposition()` renders it.
    public let registry: PrometheusCollectorRegistry
    private let tasks: [TaskState: Gauge]
    private let attempts: [AttemptOutcome: Counter]
    private let workers: [WorkerMetricState: Gauge]
    private let queueDepth: Gauge
    private let dispatchLatency: ValueHistogram
    /// Task duration histograms by stage, made on first use. Stage names come from sweep specs,
    /// so at most `maxStages` distinct ones get a series of their own; the rest share `otherStage`.
    private let stageDurations = Mutex<[String: ValueHistogram]>([:])

    static let maxStages = 64
    /// The stage label of durations beyond the first `maxStages` stage names.
    public static let otherStage = "(other)"

    /// Seconds a ready task waits for its assign: from milliseconds when slots are free up to
    /// hours when a sweep has many more tasks than slots.
    public static let dispatchLatencyBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400,
    ]
    /// Seconds an attempt ran: a smoke-test task takes well under a second, a training stage hours.
    public static let taskDurationBuckets: [Double] = [
        0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400,
    ]

    static let taskDurationHelp =
        "Seconds from an attempt's assign to its stored result, for succeeded attempts, by stage "
        + "(attempts that were running when this coordinator started are not observed)."

    /// `sparsegrid_<name>[_<unit>]`: the namespace and the unit suffix by Prometheus conventions.
    static func descriptor(_ name: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "sparsegrid", metricName: name, unitName: unit, helpText: help)
    }

    /// `version`: this build's version, shown as `sparsegrid_build_info{version}`.
    public init(version: String, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let tasksFamily = Self.descriptor("tasks", help: "Tasks by state, across every sweep this coordinator holds.")
        var tasks: [TaskState: Gauge] = [:]
        for state in TaskState.allCases {
            tasks[state] = registry.makeGauge(descriptor: tasksFamily, labels: [("state", state.rawValue)])
        }
        self.tasks = tasks
        let attemptsFamily = Self.descriptor(
            "attempts", unit: "total", help: "Attempts ended since this coordinator started, by outcome.")
        var attempts: [AttemptOutcome: Counter] = [:]
        for outcome in AttemptOutcome.allCases where outcome != .running {
            attempts[outcome] = registry.makeCounter(
                descriptor: attemptsFamily, labels: [("outcome", outcome.rawValue)])
        }
        self.attempts = attempts
        let workersFamily = Self.descriptor(
            "workers",
            help: "Workers that said hello to this coordinator, by state (left: said bye; dead: went silent "
                + "or disconnected).")
        var workers: [WorkerMetricState: Gauge] = [:]
        for state in WorkerMetricState.allCases {
            workers[state] = registry.makeGauge(descriptor: workersFamily, labels: [("state", state.rawValue)])
        }
        self.workers = workers
        queueDepth = registry.makeGauge(
            descriptor: Self.descriptor(
                "queue_depth",
                help: "Ready tasks waiting for a free worker slot (not counting those waiting out a retry backoff)."))
        dispatchLatency = registry.makeValueHistogram(
            descriptor: Self.descriptor(
                "dispatch_latency", unit: "seconds",
                help: "Seconds from a task becoming ready (its launch, its inputs done, or the end of its retry "
                    + "backoff) to its assign being sent to a worker, after the commit (tasks that were already "
                    + "ready when this coordinator started are not observed)."),
            buckets: Self.dispatchLatencyBuckets)
        let buildInfo = registry.makeGauge(
            descriptor: Self.descriptor(
                "build_info", help: "Always 1; the version label carries this coordinator's version."),
            labels: [("version", version)])
        buildInfo.set(to: 1)
    }

    /// The number of tasks in each state; a state missing from `counts` has none.
    public func taskStatesChanged(_ counts: [TaskState: Int]) {
        for (state, gauge) in tasks { gauge.set(to: Double(counts[state] ?? 0)) }
    }

    /// Ready tasks waiting for a slot.
    public func queueDepthChanged(_ depth: Int) {
        queueDepth.set(to: Double(depth))
    }

    /// The number of workers in each state; a state missing from `counts` has none.
    public func workersChanged(_ counts: [WorkerMetricState: Int]) {
        for (state, gauge) in workers { gauge.set(to: Double(counts[state] ?? 0)) }
    }

    /// An attempt ended. `duration` (seconds since its assign) is recorded for succeeded
    /// attempts only, by `stage`, when both are known.
    public func attemptEnded(outcome: AttemptOutcome, stage: String?, duration: Double?) {
        attempts[outcome]?.increment()
        guard outcome == .succeeded, let stage, let duration, duration.isFinite, duration >= 0 else { return }
        durationHistogram(stage: stage).record(duration)
    }

    /// A task's assign was sent `latency` seconds after it became ready.
    public func dispatched(latency: Double) {
        guard latency.isFinite else { return }
        dispatchLatency.record(max(0, latency))
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4), for `GET /metrics`.
    public func exposition() -> String {
        registry.emitToString()
    }

    private func durationHistogram(stage: String) -> ValueHistogram {
        stageDurations.withLock { histograms in
            if let known = histograms[stage] { return known }
            let label = histograms.count < Self.maxStages ? stage : Self.otherStage
            if let shared = histograms[label] { return shared }
            let made = registry.makeValueHistogram(
                descriptor: Self.descriptor("task_duration", unit: "seconds", help: Self.taskDurationHelp),
                labels: [("stage", label)], buckets: Self.taskDurationBuckets)
            histograms[label] = made
            return made
        }
    }
}
