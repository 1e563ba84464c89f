import Foundation

/// One sweep's line in `run` and `status`: bar, counts, rate, ETA.
public struct SweepProgress: Sendable, Equatable {
    public var name: String
    public var total: Int
    /// Task counts by state name (`succeeded`, `running`, `ready`, `pending`, `failed`, `cancelled`).
    public var counts: [String: Int]
    public var cancelled: Bool
    /// Tasks finished per minute lately; nil when nothing has been measured yet.
    public var perMinute: Double?
    public var eta: ETA

    public init(name: String, total: Int, counts: [String: Int], cancelled: Bool, perMinute: Double?, eta: ETA) {
        self.name = name
        self.total = total
        self.counts = counts
        self.cancelled = cancelled
        self.perMinute = perMinute
        self.eta = eta
    }

    func count(_ state: String) -> Int { max(counts[state] ?? 0, 0) }
}

/// A running attempt's line: worker, task, epoch k/n, loss, elapsed.
public struct RunningTaskProgress: Sendable, Equatable {
    public var worker: String
    public var label: String
    public var epoch: Int?
    public var epochs: Int?
    public var loss: Double?
    public var elapsed: Double

    public init(worker: String, label: String, epoch: Int?, epochs: Int?, loss: Double?, elapsed: Double) {
        self.worker = worker
        self.label = label
        self.epoch = epoch
        self.epochs = epochs
        self.loss = loss
        self.elapsed = elapsed
    }
}

/// How live output may look: redrawn in place and coloured only on a terminal.
public struct TerminalMode: Sendable, Equatable {
    /// Redraw a block in place (cursor codes); otherwise append plain lines.
    public var redraw: Bool
    /// ANSI colours.
    public var colour: Bool

    public init(redraw: Bool, colour: Bool) {
        self.redraw = redraw
        self.colour = colour
    }

    /// Redraws only when stdout is a terminal that is not `TERM=dumb` (and `plain` was not
    /// asked for); colour only then and when `NO_COLOR` is unset or empty (no-color.org).
    public static func detect(stdoutIsTerminal: Bool, environment: [String: String], plain: Bool = false) -> Self {
        let capable = stdoutIsTerminal && !plain && environment["TERM"] != "dumb"
        let noColour = !(environment["NO_COLOR"] ?? "").isEmpty
        return TerminalMode(redraw: capable, colour: capable && !noColour)
    }
}

/// Decides when plain (non-terminal) output prints: when what it shows changed, and at least
/// every `interval` seconds even when nothing did, so a log never looks stuck.
public struct PlainThrottle: Sendable {
    public var interval: Double
    private var lastKey: String?
    private var lastAt = -Double.infinity

    public init(interval: Double = 30) { self.interval = interval }

    public mutating func shouldPrint(key: String, now: Double) -> Bool {
        guard key != lastKey || now - lastAt >= interval else { return false }
        lastKey = key
        lastAt = now
        return true
    }
}

/// Pure text for the live display; no I/O.
public enum ProgressText {
    static let barWidth = 20

    /// 45s, 3m10s, 2h05m.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(max(seconds, 0).rounded())
        if s >= 3600 { return "\(s / 3600)h" + pad(s % 3600 / 60) + "m" }
        if s >= 60 { return "\(s / 60)m" + pad(s % 60) + "s" }
        return "\(s)s"
    }

    private static func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `ETA 3m10s (2m40s–4m05s)`; `ETA ?` with the reason while a stage has no finished task.
    public static func eta(_ eta: ETA) -> String {
        switch eta {
        case .done: return "ETA 0s"
        case .noWorkers: return "ETA ? (no worker slots)"
        case .unknown(let stages, let atLeast):
            if stages.isEmpty { return "ETA ?" }
            let why = "no \(stages.joined(separator: "/")) task finished yet"
            // A bound under a second says nothing (the measured stages' tasks already ran past
            // their estimate): the reason alone.
            if let atLeast, atLeast >= 1 { return "ETA ? (at least \(duration(atLeast)); \(why))" }
            return "ETA ? (\(why))"
        case .estimate(let e, let low, let high):
            let (l, m, h) = (duration(low), duration(e), duration(high))
            return l == h ? "ETA \(m)" : "ETA \(m) (\(l)–\(h))"
        }
    }

    /// `[########------------]`: finished (succeeded, failed or cancelled) of total.
    public static func bar(_ p: SweepProgress, colour: Bool) -> String {
        let finished = p.count("succeeded") + p.count("failed") + p.count("cancelled")
        let fraction = p.total > 0 ? min(Double(finished) / Double(p.total), 1) : 1
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        let full = String(repeating: "#", count: filled)
        let empty = String(repeating: "-", count: barWidth - filled)
        return colour ? "[" + paint(full, green) + paint(empty, dim) + "]" : "[\(full)\(empty)]"
    }

    /// `quick [####----] 12/40 done, 3 running, 5 ready, 20 pending, 0 failed, 2.5 tasks/min, ETA 3m10s (2m40s–4m05s)`
    public static func sweep(_ p: SweepProgress, colour: Bool) -> String {
        var parts = ["\(p.count("succeeded"))/\(p.total) done"]
        parts.append(paintIf(colour && p.count("running") > 0, "\(p.count("running")) running", yellow))
        parts.append("\(p.count("ready")) ready")
        parts.append("\(p.count("pending")) pending")
        parts.append(paintIf(colour && p.count("failed") > 0, "\(p.count("failed")) failed", red))
        if p.count("cancelled") > 0 { parts.append("\(p.count("cancelled")) cancelled") }
        if let rate = p.perMinute, rate.isFinite, rate >= 0 { parts.append(perMinute(rate)) }
        parts.append(eta(p.eta))
        let name = p.cancelled ? "\(p.name) (cancelled)" : p.name
        return "\(colour ? paint(name, bold) : name) \(bar(p, colour: colour)) " + parts.joined(separator: ", ")
    }

    /// `  local-1  train resnet18 dense  epoch 3/10  loss 1.234  2m03s`
    public static func task(_ t: RunningTaskProgress, colour: Bool) -> String {
        var parts = ["  \(t.worker)", t.label]
        if let e = t.epoch {
            parts.append(t.epochs.map { "epoch \(e)/\($0)" } ?? "epoch \(e)")
        }
        if let loss = t.loss, loss.isFinite { parts.append("loss " + lossText(loss)) }
        parts.append(duration(t.elapsed))
        let text = parts.joined(separator: "  ")
        return colour ? paint(text, cyan) : text
    }

    static func lossText(_ loss: Double) -> String {
        let a = abs(loss)
        if a != 0, a < 0.001 || a >= 100_000 { return String(format: "%.3e", loss) }
        return String(format: "%.4f", loss)
    }

    static func perMinute(_ rate: Double) -> String {
        if rate >= 10 { return String(format: "%.0f tasks/min", rate) }
        if rate >= 1 { return String(format: "%.1f tasks/min", rate) }
        if rate > 0 { return String(format: "%.1f tasks/h", rate * 60) }
        return "0 tasks/min"
    }

    static let green = "32"
    static let yellow = "33"
    static let red = "31"
    static let dim = "2"
    static let cyan = "36"
    static let bold = "1"

    static func paint(_ text: String, _ code: String) -> String {
        guard !text.isEmpty else { return text }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    static func paintIf(_ condition: Bool, _ text: String, _ code: String) -> String {
        condition ? paint(text, code) : text
    }
}
