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

    @Test("a curve point keeps every checked field, lr and train_acc included, and the arrival time")
    func curvePointFields() {
        let point = AttemptProgress.curvePoint(
            [
                "event": "progress", "epoch": 3, "epochs": 10, "step": 96, "steps": 320, "loss": 1.25,
                "train_acc": 55.5, "test_acc": 50, "val_acc": 0, "lr": 0.05, "images_per_s": 1234,
            ], at: 1_764_530_101.25)
        #expect(
            point
                == CurvePoint(
                    epoch: 3, epochs: 10, step: 96, loss: 1.25, trainAcc: 55.5, testAcc: 50, valAcc: 0, lr: 0.05,
                    at: 1_764_530_101.25))
        // Bounds are inclusive.
        let edges = AttemptProgress.curvePoint(
            [
                "event": "progress", "epoch": 0, "epochs": 0, "step": 1e9, "loss": -1e15, "train_acc": 100,
                "lr": 1000,
            ], at: 0)
        #expect(
            edges == CurvePoint(epoch: 0, epochs: 0, step: 1_000_000_000, loss: -1e15, trainAcc: 100, lr: 1000, at: 0))
    }

    @Test("hostile curve fields become nil one by one; a point with none left is no point")
    func curvePointHostile() {
        func point(_ fields: [String: JSONValue]) -> CurvePoint? {
            var event = fields
            event["event"] = "progress"
            return AttemptProgress.curvePoint(.object(event), at: 5)
        }
        // Each hostile value alone: nil for that field, the good loss kept.
        let hostile: [(String, JSONValue)] = [
            ("epoch", .number(.nan)), ("epoch", -1), ("epoch", 2.5), ("epoch", 1e12), ("epoch", "3"),
            ("step", -5), ("step", .number(.infinity)), ("step", "12"), ("step", true),
            ("train_acc", 100.5), ("train_acc", -0.1), ("train_acc", .number(.nan)), ("train_acc", "99"),
            ("test_acc", 140), ("test_acc", .number(-.infinity)), ("val_acc", 1e300), ("val_acc", .null),
            ("lr", -0.01), ("lr", 1000.5), ("lr", .number(.nan)), ("lr", "0.1"), ("lr", ["x": 1]),
        ]
        for (key, value) in hostile {
            #expect(point([key: value, "loss": 0.5]) == CurvePoint(loss: 0.5, at: 5), "\(key): \(value)")
        }
        for loss: JSONValue in [.number(.nan), 1e300, -1e300, .number(.infinity), "1.0", [1]] {
            #expect(point(["loss": loss, "step": 7]) == CurvePoint(step: 7, at: 5), "loss: \(loss)")
        }
        // epoch > epochs drops the epoch, and epochs goes with it.
        #expect(point(["epoch": 11, "epochs": 10, "loss": 0.5]) == CurvePoint(loss: 0.5, at: 5))
        // Negative or mistyped epochs: dropped; the epoch alone stays.
        #expect(point(["epoch": 2, "epochs": -3]) == CurvePoint(epoch: 2, at: 5))
        #expect(point(["epoch": 2, "epochs": "10"]) == CurvePoint(epoch: 2, at: 5))
        // Nothing valid, or nothing but extra keys: no point.
        #expect(point(["epoch": -1, "loss": "x", "lr": -1, "label": "\u{1B}[2J"]) == nil)
        #expect(point(["images_per_s": 100, "steps": 10]) == nil)
        // Not a progress event, not an object, or a non-finite arrival time.
        #expect(AttemptProgress.curvePoint(["event": "metric", "name": "loss", "value": 1, "step": 1], at: 5) == nil)
        #expect(AttemptProgress.curvePoint(["epoch": 1, "loss": 1], at: 5) == nil)
        #expect(AttemptProgress.curvePoint(.array([1, 2]), at: 5) == nil)
        #expect(AttemptProgress.curvePoint(["event": "progress", "loss": 1], at: .nan) == nil)
    }
}
