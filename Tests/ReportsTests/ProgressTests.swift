import Foundation
import Reports
import Testing

@Suite("Live progress: the ETA estimator and the progress text")
struct ProgressTests {
    func work(
        _ stage: String = "train", _ model: String? = "resnet18", waiting: Int = 0, running: [Double] = [],
        durations: [Double] = []
    ) -> ETAGroup {
        ETAGroup(stage: stage, model: model, waiting: waiting, runningElapsed: running, durations: durations)
    }

    func point(_ eta: ETA) -> (Double, Double, Double)? {
        if case .estimate(let e, let low, let high) = eta { return (e, low, high) }
        return nil
    }

    @Test("quantiles interpolate between order statistics")
    func quantiles() {
        #expect(ETAEstimator.quantile([10], 0.25) == 10)
        #expect(ETAEstimator.quantile([10, 20, 30, 40, 50], 0.5) == 30)
        #expect(ETAEstimator.quantile([10, 20, 30, 40, 50], 0.25) == 20)
        #expect(ETAEstimator.quantile([10, 20], 0.5) == 15)
    }

    @Test("work divided over the slots, with the quartiles as the range")
    func workOverSlots() throws {
        // 8 waiting tasks of ~100 s on 2 slots: 400 s; quartiles 90 and 110 → 360…440 s.
        let eta = ETAEstimator.estimate(
            [work(waiting: 8, durations: [80, 90, 100, 110, 120])], slots: 2)
        let (e, low, high) = try #require(point(eta))
        #expect(e == 400)
        #expect(low == 360)
        #expect(high == 440)
    }

    @Test("running tasks count only what is left of their typical length")
    func runningCredit() throws {
        let eta = ETAEstimator.estimate([work(waiting: 1, running: [60, 500], durations: [100])], slots: 2)
        let (e, _, _) = try #require(point(eta))
        // 100 (waiting) + 40 (60 s in) + 0 (already past 100 s) over 2 slots = 70, but one task
        // alone takes 100 s.
        #expect(e == 100)
    }

    @Test("one task that finishes far faster than the others does not swing the estimate")
    func stableAgainstOutlier() throws {
        let steady = ETAEstimator.estimate([work(waiting: 10, durations: [300, 310, 290, 305])], slots: 1)
        let withOutlier = ETAEstimator.estimate(
            [work(waiting: 9, durations: [300, 310, 290, 305, 20])], slots: 1)
        let (a, _, _) = try #require(point(steady))
        let (b, _, _) = try #require(point(withOutlier))
        // Nine tasks left of ~300 s: the fast one moved the median by one order statistic only.
        #expect(abs(b - 9 * 300) <= 9 * 10)
        #expect(b <= a)
        // A mean over the finished tasks would have dropped by a fifth.
        let mean = [300.0, 310, 290, 305, 20].reduce(0, +) / 5
        #expect(abs(b - 9 * mean) > 400)
    }

    @Test("each stage and model has its own typical length")
    func perModel() throws {
        let eta = ETAEstimator.estimate(
            [
                work("train", "resnet18", waiting: 2, durations: [10, 10, 10]),
                work("train", "resnet50", waiting: 2, durations: [100, 100, 100]),
            ], slots: 1)
        let (e, _, _) = try #require(point(eta))
        #expect(e == 220)
    }

    @Test("a model with no finished task borrows its stage's durations")
    func stageFallback() throws {
        let eta = ETAEstimator.estimate(
            [
                work("train", "resnet18", durations: [50, 50]),
                work("train", "vgg16", waiting: 2),
            ], slots: 1)
        let (e, _, _) = try #require(point(eta))
        #expect(e == 100)
    }

    @Test("unknown only while a stage with work left has no finished task; the rest is a lower bound")
    func unknownStage() {
        let eta = ETAEstimator.estimate(
            [
                work("train", waiting: 1, durations: [30]),
                work("prune", waiting: 3),
            ], slots: 1)
        #expect(eta == .unknown(stages: ["prune"], atLeast: 30))
        #expect(ETAEstimator.estimate([work(waiting: 2)], slots: 1) == .unknown(stages: ["train"], atLeast: nil))
        #expect(ETAEstimator.estimate([work(durations: [5])], slots: 1) == .done)
        #expect(ETAEstimator.estimate([work(waiting: 1, durations: [5])], slots: 0) == .noWorkers)
    }

    @Test("hostile durations (negative, infinite, NaN) are ignored")
    func hostileDurations() throws {
        let eta = ETAEstimator.estimate([work(waiting: 1, durations: [-5, .infinity, .nan, 40])], slots: 1)
        let (e, _, _) = try #require(point(eta))
        #expect(e == 40)
    }

    @Test("ETA text: estimate with its range, a reason for ?")
    func etaText() {
        #expect(ProgressText.eta(.estimate(190, low: 160, high: 245)) == "ETA 3m10s (2m40s–4m05s)")
        #expect(ProgressText.eta(.estimate(30, low: 30, high: 30)) == "ETA 30s")
        #expect(ProgressText.eta(.unknown(stages: ["prune"], atLeast: nil)) == "ETA ? (no prune task finished yet)")
        #expect(ProgressText.eta(.unknown(stages: ["prune"], atLeast: 65)).contains("at least 1m05s"))
        #expect(
            ProgressText.eta(.unknown(stages: ["finetune"], atLeast: 0))
                == "ETA ? (no finetune task finished yet)")
        #expect(ProgressText.duration(7260) == "2h01m")
    }

    @Test("the sweep line shows the bar, every count, the rate and the ETA; colour only when asked")
    func sweepLine() {
        let p = SweepProgress(
            name: "quick", total: 40,
            counts: ["succeeded": 10, "running": 3, "ready": 5, "pending": 20, "failed": 2],
            cancelled: false, perMinute: 2.5, eta: .estimate(190, low: 160, high: 245))
        let plain = ProgressText.sweep(p, colour: false)
        #expect(
            plain
                == "quick [######--------------] 10/40 done, 3 running, 5 ready, 20 pending, 2 failed, "
                + "2.5 tasks/min, ETA 3m10s (2m40s–4m05s)")
        #expect(!plain.contains("\u{1B}"))
        let coloured = ProgressText.sweep(p, colour: true)
        #expect(coloured.contains("\u{1B}["))
    }

    @Test("a running task's line: worker, task, epoch k/n, loss, elapsed")
    func taskLine() {
        let t = RunningTaskProgress(
            worker: "local-1", label: "train resnet18 seed 0", epoch: 3, epochs: 10, loss: 1.23456, elapsed: 123)
        #expect(
            ProgressText.task(t, colour: false) == "  local-1  train resnet18 seed 0  epoch 3/10  loss 1.2346  2m03s")
        let bare = RunningTaskProgress(worker: "w", label: "t", epoch: nil, epochs: nil, loss: .nan, elapsed: 5)
        #expect(ProgressText.task(bare, colour: false) == "  w  t  5s")
    }

    @Test("colour and redraws only on a terminal, never with NO_COLOR or TERM=dumb")
    func terminalMode() {
        #expect(
            TerminalMode.detect(stdoutIsTerminal: true, environment: ["TERM": "xterm"])
                == TerminalMode(redraw: true, colour: true))
        #expect(
            TerminalMode.detect(stdoutIsTerminal: true, environment: ["NO_COLOR": "1"])
                == TerminalMode(redraw: true, colour: false))
        #expect(
            TerminalMode.detect(stdoutIsTerminal: true, environment: ["NO_COLOR": ""])
                == TerminalMode(redraw: true, colour: true))
        #expect(
            TerminalMode.detect(stdoutIsTerminal: false, environment: [:]) == TerminalMode(redraw: false, colour: false)
        )
        #expect(
            TerminalMode.detect(stdoutIsTerminal: true, environment: ["TERM": "dumb"])
                == TerminalMode(redraw: false, colour: false))
        #expect(
            TerminalMode.detect(stdoutIsTerminal: true, environment: [:], plain: true)
                == TerminalMode(redraw: false, colour: false))
    }

    @Test("plain output prints on a change and at least every 30 s")
    func throttle() {
        var t = PlainThrottle(interval: 30)
        let printed = [("a", 0.0), ("a", 10), ("b", 11), ("b", 40), ("b", 41)].map { t.shouldPrint(key: $0, now: $1) }
        #expect(printed == [true, false, true, false, true])
    }
}
