import SweepKit
import Testing

@Suite("An attempt's last progress: only checked fields of progress events")
struct AttemptProgressTests {
    func running() -> (Scheduler, String) {
        var s = Scheduler(config: SchedulerConfig(deadAfter: 5, retryBackoff: 0))
        s.addSweep(
            name: "sw", engine: "null", device: "any", retries: 2, cancelled: false,
            tasks: [
                TaskSeed(
                    id: "t0", sweep: "sw", stage: "run", priority: 1, state: .pending, attemptsUsed: 0, inputs: [])
            ])
        let caps = WorkerCapabilities(engines: ["null"], hasGPU: false, hasCPU: true, slots: 1)
        _ = s.workerHello(
            id: "w1", registration: WorkerRegistration(identity: [1], key: nil, host: "h", info: .null),
            capabilities: caps, running: [], now: 0)
        s.workerReady(id: "w1", credits: 1, now: 0)
        s.dispatch(now: 0)
        let attempt = s.drainEffects().compactMap { effect -> String? in
            if case .assign(_, let a, _) = effect { return a }
            return nil
        }[0]
        return (s, attempt)
    }

    @Test("a metric event after a progress event does not hide the epoch and loss")
    func metricDoesNotReplace() {
        var (s, attempt) = running()
        let progress = s.progressArrived(
            attemptId: attempt, from: "w1",
            event: ["event": "progress", "epoch": 3, "epochs": 10, "step": 40, "loss": 1.5, "lr": 0.1])
        let metric = s.progressArrived(
            attemptId: attempt, from: "w1", event: ["event": "metric", "name": "loss", "value": 2])
        #expect(progress && metric)
        #expect(s.progress(ofAttempt: attempt) == ["epoch": 3, "epochs": 10, "step": 40, "loss": 1.5])
    }

    @Test("out-of-range or mistyped fields are dropped; strings never pass through")
    func hostileFields() {
        #expect(
            AttemptProgress.checked(["event": "progress", "epoch": 11, "epochs": 10, "loss": "x", "step": -1]) == nil)
        #expect(
            AttemptProgress.checked([
                "event": "progress", "epoch": 2.5, "epochs": 4, "loss": .number(.infinity), "test_acc": 140,
            ]) == nil)
        #expect(
            AttemptProgress.checked(["event": "progress", "epoch": 1e12, "loss": 0.25, "label": "\u{1B}[2J"])
                == ["loss": 0.25])
        #expect(AttemptProgress.checked(["epoch": 1, "epochs": 2]) == nil)
    }
}
