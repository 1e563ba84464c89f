import SweepKit
import Testing

@testable import Coordinator

/// The samples of a Prometheus text exposition, by series ("name{labels}" as written), and the
/// HELP and TYPE lines by metric name. Fails the test on a line it cannot read.
struct Exposition {
    var samples: [String: Double] = [:]
    var help: [String: String] = [:]
    var type: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst("# HELP ".count)
                let name = rest.prefix { $0 != " " }
                help[String(name)] = String(rest.dropFirst(name.count + 1))
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst("# TYPE ".count).split(separator: " ")
                if parts.count == 2 { type[String(parts[0])] = String(parts[1]) }
            } else if let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) {
                samples[String(line[..<space])] = value
            } else {
                Issue.record("not an exposition line: \(line)")
            }
        }
    }

    subscript(_ series: String) -> Double? { samples[series] }
}

@Suite("Coordinator metrics in the Prometheus text format")
struct MetricsTests {
    @Test("every metric has HELP and TYPE lines, and every label value a series from the start")
    func helpTypeAndLabels() {
        let metrics = CoordinatorMetrics(version: "1.2.3")
        metrics.attemptEnded(outcome: .succeeded, stage: "train", duration: 2)
        let e = Exposition(metrics.exposition())
        let types = [
            "sparsegrid_tasks": "gauge", "sparsegrid_attempts_total": "counter", "sparsegrid_workers": "gauge",
            "sparsegrid_dispatch_latency_seconds": "histogram", "sparsegrid_queue_depth": "gauge",
            "sparsegrid_task_duration_seconds": "histogram", "sparsegrid_build_info": "gauge",
        ]
        for (name, type) in types {
            #expect(e.type[name] == type, "TYPE of \(name)")
            #expect(!(e.help[name] ?? "").isEmpty, "HELP of \(name)")
        }
        #expect(Set(e.type.keys) == Set(types.keys), "no other metric families")
        for state in TaskState.allCases {
            #expect(e["sparsegrid_tasks{state=\"\(state.rawValue)\"}"] == 0)
        }
        for outcome in AttemptOutcome.allCases where outcome != .running {
            let expected: Double = outcome == .succeeded ? 1 : 0
            #expect(e["sparsegrid_attempts_total{outcome=\"\(outcome.rawValue)\"}"] == expected)
        }
        #expect(e["sparsegrid_attempts_total{outcome=\"running\"}"] == nil, "running is not an end")
        for state in ["alive", "left", "dead"] {
            #expect(e["sparsegrid_workers{state=\"\(state)\"}"] == 0)
        }
        #expect(e["sparsegrid_queue_depth"] == 0)
        #expect(e["sparsegrid_build_info{version=\"1.2.3\"}"] == 1)
        #expect(e["sparsegrid_dispatch_latency_seconds_count"] == 0)
        #expect(e["sparsegrid_task_duration_seconds_count{stage=\"train\"}"] == 1)
    }

    @Test("counters and gauges move when fed events")
    func countersMove() {
        let metrics = CoordinatorMetrics(version: "x")
        metrics.attemptEnded(outcome: .failed, stage: "train", duration: 3)
        metrics.attemptEnded(outcome: .failed, stage: nil, duration: nil)
        metrics.attemptEnded(outcome: .lost, stage: "train", duration: 1)
        metrics.taskStatesChanged([.ready: 4, .running: 2, .succeeded: 7])
        metrics.queueDepthChanged(3)
        metrics.workersChanged([.alive: 2, .dead: 1])
        var e = Exposition(metrics.exposition())
        #expect(e["sparsegrid_attempts_total{outcome=\"failed\"}"] == 2)
        #expect(e["sparsegrid_attempts_total{outcome=\"lost\"}"] == 1)
        #expect(e["sparsegrid_attempts_total{outcome=\"succeeded\"}"] == 0)
        // Only succeeded attempts have a duration recorded.
        #expect(e.type["sparsegrid_task_duration_seconds"] == nil)
        #expect(e["sparsegrid_tasks{state=\"ready\"}"] == 4)
        #expect(e["sparsegrid_tasks{state=\"running\"}"] == 2)
        #expect(e["sparsegrid_tasks{state=\"succeeded\"}"] == 7)
        #expect(e["sparsegrid_tasks{state=\"pending\"}"] == 0)
        #expect(e["sparsegrid_queue_depth"] == 3)
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 2)
        #expect(e["sparsegrid_workers{state=\"dead\"}"] == 1)
        // A state no longer in the counts drops to zero.
        metrics.taskStatesChanged([.succeeded: 13])
        metrics.workersChanged([.left: 2])
        e = Exposition(metrics.exposition())
        #expect(e["sparsegrid_tasks{state=\"ready\"}"] == 0)
        #expect(e["sparsegrid_tasks{state=\"succeeded\"}"] == 13)
        #expect(e["sparsegrid_workers{state=\"alive\"}"] == 0)
        #expect(e["sparsegrid_workers{state=\"left\"}"] == 2)
    }

    @Test("histograms count into buckets of seconds, from milliseconds to hours")
    func histogramBuckets() {
        let latency = CoordinatorMetrics.dispatchLatencyBuckets
        let duration = CoordinatorMetrics.taskDurationBuckets
        for buckets in [latency, duration] {
            #expect(buckets == buckets.sorted() && Set(buckets).count == buckets.count)
        }
        #expect(latency.first! <= 0.001 && latency.last! >= 3600)
        #expect(duration.first! <= 0.1 && duration.last! >= 86400)

        let metrics = CoordinatorMetrics(version: "x")
        metrics.dispatched(latency: 0.003)
        metrics.dispatched(latency: 42)
        metrics.dispatched(latency: -0.5)  // clock step: counted as 0, not as a negative sum
        metrics.dispatched(latency: .nan)  // ignored
        metrics.attemptEnded(outcome: .succeeded, stage: "train", duration: 90)
        metrics.attemptEnded(outcome: .succeeded, stage: "eval", duration: 0.2)
        let e = Exposition(metrics.exposition())
        let d = "sparsegrid_dispatch_latency_seconds"
        #expect(e["\(d)_bucket{le=\"0.001\"}"] == 1)
        #expect(e["\(d)_bucket{le=\"0.0025\"}"] == 1)
        #expect(e["\(d)_bucket{le=\"0.005\"}"] == 2)
        #expect(e["\(d)_bucket{le=\"30.0\"}"] == 2)
        #expect(e["\(d)_bucket{le=\"60.0\"}"] == 3)
        #expect(e["\(d)_bucket{le=\"+Inf\"}"] == 3)
        #expect(e["\(d)_count"] == 3)
        #expect(abs((e["\(d)_sum"] ?? 0) - 42.003) < 1e-9)
        let t = "sparsegrid_task_duration_seconds"
        #expect(e["\(t)_bucket{stage=\"train\",le=\"60.0\"}"] == 0)
        #expect(e["\(t)_bucket{stage=\"train\",le=\"120.0\"}"] == 1)
        #expect(e["\(t)_bucket{stage=\"eval\",le=\"0.5\"}"] == 1)
        #expect(e["\(t)_count{stage=\"train\"}"] == 1)
        #expect(e["\(t)_sum{stage=\"eval\"}"] == 0.2)
    }

    @Test("stage names from specs get at most a bounded number of series, and are escaped")
    func stageCardinality() {
        let metrics = CoordinatorMetrics(version: "x")
        for i in 0..<(CoordinatorMetrics.maxStages + 10) {
            metrics.attemptEnded(outcome: .succeeded, stage: "s\(i)", duration: 1)
        }
        metrics.attemptEnded(outcome: .succeeded, stage: "s0", duration: 1)
        let e = Exposition(metrics.exposition())
        let counts = e.samples.filter { $0.key.hasPrefix("sparsegrid_task_duration_seconds_count{") }
        #expect(counts.count == CoordinatorMetrics.maxStages + 1)
        #expect(e["sparsegrid_task_duration_seconds_count{stage=\"s0\"}"] == 2)
        #expect(e["sparsegrid_task_duration_seconds_count{stage=\"(other)\"}"] == 10)
        #expect(e["sparsegrid_attempts_total{outcome=\"succeeded\"}"] == Double(CoordinatorMetrics.maxStages + 11))

        // A quote, a backslash and a line feed in a stage name stay inside the label value.
        let escaped = CoordinatorMetrics(version: "x")
        escaped.attemptEnded(outcome: .succeeded, stage: "q\"\\\nz", duration: 1)
        let text = escaped.exposition()
        #expect(text.contains(#"sparsegrid_task_duration_seconds_count{stage="q\"\\\nz"} 1"#))
        #expect(Exposition(text)[#"sparsegrid_task_duration_seconds_count{stage="q\"\\\nz"}"#] == 1)
    }
}
