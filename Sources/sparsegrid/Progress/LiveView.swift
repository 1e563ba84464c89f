import Foundation
import Reports
import SweepKit
import Wire

/// The live status as lines: each sweep's progress (bar, counts, rate, ETA) with its running
/// tasks (worker, epoch, loss, elapsed). Shared by `run` and `status`.
enum LiveView {
    /// Slots of the workers alive now.
    static func slots(_ status: LiveStatus) -> Int {
        status.workers.filter(\.alive).reduce(0) { $0 + max($1.slots, 0) }
    }

    static func progress(_ sweep: LiveStatus.SweepStatus, slots: Int) -> SweepProgress {
        var eta = ETA.unknown(stages: [], atLeast: nil)
        var perMinute: Double?
        if let timing = sweep.timing {
            eta = ETAEstimator.estimate(
                timing.groups.map {
                    ETAGroup(
                        stage: $0.stage, model: $0.model, waiting: $0.waiting, runningElapsed: $0.runningElapsed,
                        durations: $0.durations)
                }, slots: slots)
            // A rate over less than a minute says little; none until a task has finished.
            if timing.window >= 60 || (timing.finishedInWindow > 0 && timing.window >= 1) {
                perMinute = Double(max(timing.finishedInWindow, 0)) / timing.window * 60
            }
        }
        let open = ["running", "ready", "pending"].reduce(0) { $0 + (sweep.counts[$1] ?? 0) }
        if open == 0 { eta = .done }
        return SweepProgress(
            name: sweep.name, total: sweep.total, counts: sweep.counts, cancelled: sweep.cancelled,
            perMinute: perMinute, eta: eta)
    }

    /// The running attempts of `sweep` (all when nil), oldest first.
    static func running(_ status: LiveStatus, sweep: String?) -> [RunningTaskProgress] {
        var out: [(start: Double, line: RunningTaskProgress)] = []
        for worker in status.workers {
            for attempt in worker.running where sweep == nil || attempt.sweep == sweep {
                let p = attempt.progress
                out.append(
                    (
                        attempt.startedAt,
                        RunningTaskProgress(
                            worker: worker.id, label: attempt.label, epoch: p?["epoch"]?.intValue,
                            epochs: p?["epochs"]?.intValue, loss: p?["loss"]?.doubleValue,
                            elapsed: status.now - attempt.startedAt)
                    ))
            }
        }
        return out.sorted { ($0.start, $0.line.worker) < ($1.start, $1.line.worker) }.map(\.line)
    }

    /// Each sweep (only `only` when given): its line, its running tasks, why it waits.
    static func sweepLines(_ status: LiveStatus, only: String?, colour: Bool) -> [String] {
        let slots = slots(status)
        var lines: [String] = []
        for sweep in status.sweeps where only == nil || sweep.name == only {
            lines.append(ProgressText.sweep(progress(sweep, slots: slots), colour: colour))
            for task in running(status, sweep: sweep.name) { lines.append(ProgressText.task(task, colour: colour)) }
            if let why = sweep.waitingReason { lines.append("  waiting: \(why)") }
        }
        return lines
    }

    /// What plain output compares to decide that something changed: counts, running tasks
    /// and their epochs, not the clock.
    static func changeKey(_ status: LiveStatus, only: String?) -> String {
        var key = ""
        for sweep in status.sweeps where only == nil || sweep.name == only {
            key += "\(sweep.name) \(sweep.counts.sorted { $0.key < $1.key }) \(sweep.waitingReason ?? "")\n"
            for t in running(status, sweep: sweep.name) { key += "\(t.worker) \(t.label) \(t.epoch ?? -1)\n" }
        }
        for w in status.workers { key += "\(w.id) \(w.alive)\n" }
        return key
    }
}

/// Writes the live view: on a terminal a block redrawn in place; otherwise plain lines,
/// printed when something changed and at least every `PlainThrottle.interval` seconds.
final class LiveOutput {
    let mode: TerminalMode
    /// On a terminal, clear the screen and draw from its top (`status --watch`) rather than
    /// redraw the block below the lines already printed (`run`).
    let fullScreen: Bool
    private var throttle: PlainThrottle
    private var rowsDrawn = 0

    init(mode: TerminalMode, fullScreen: Bool = false, interval: Double = 30) {
        self.mode = mode
        self.fullScreen = fullScreen
        self.throttle = PlainThrottle(interval: interval)
    }

    /// The mode for stdout: `TerminalMode.detect` with this process's stdout and environment.
    static func detectMode(plain: Bool = false) -> TerminalMode {
        TerminalMode.detect(
            stdoutIsTerminal: isatty(STDOUT_FILENO) == 1, environment: ProcessInfo.processInfo.environment,
            plain: plain)
    }

    func show(_ lines: [String], changeKey: String, now: Double = Date().timeIntervalSince1970) {
        if mode.redraw, fullScreen {
            print("\u{1B}[H\u{1B}[2J", terminator: "")
            for line in lines { print(line) }
        } else if mode.redraw {
            erase()
            for line in lines { print(line) }
            let width = Self.terminalColumns()
            rowsDrawn = lines.reduce(0) { $0 + max(1, (Self.visibleCount($1) + width - 1) / width) }
        } else if throttle.shouldPrint(key: changeKey, now: now) {
            for line in lines { print(line) }
        }
        flushOutput()
    }

    /// A line that stays (printed above the redrawn block).
    func note(_ text: String) {
        erase()
        print(text)
        flushOutput()
    }

    /// Leaves the last block on screen.
    func finish() { rowsDrawn = 0 }

    private func erase() {
        guard mode.redraw, rowsDrawn > 0 else { return }
        print("\u{1B}[\(rowsDrawn)A\u{1B}[J", terminator: "")
        rowsDrawn = 0
    }

    /// Characters a terminal shows of `line` (colour codes take no room).
    static func visibleCount(_ line: String) -> Int {
        var count = 0
        var inEscape = false
        for scalar in line.unicodeScalars {
            if inEscape {
                if scalar == "m" { inEscape = false }
            } else if scalar == "\u{1B}" {
                inEscape = true
            } else {
                count += 1
            }
        }
        return count
    }

    static func terminalColumns() -> Int {
        var size = winsize()
        let ok = withUnsafeMutablePointer(to: &size) { ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), $0) }
        if ok == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }
}
