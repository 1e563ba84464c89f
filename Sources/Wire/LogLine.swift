import Foundation
import SweepKit

/// How the coordinator and the worker print their operator log on stderr (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// `[2025-06-01T12:00:00.123Z] coordinator: worker W1 joined from …` (warnings say so).
    case text
    /// One JSON object per line: `ts`, `level`, `event`, `worker`, `task`, `attempt`, `sweep`, `msg`.
    case json
}

/// One line of an operator log: what happened (`event`, a short stable word), to whom, and a
/// sentence. Absent ids are `null` in JSON, so every line has the same keys.
public struct LogLine: Sendable, Equatable {
    public enum Level: String, Sendable {
        case info, warn, error
    }

    /// Seconds since 1970.
    public var ts: Double
    public var level: Level
    public var event: String
    public var worker: String?
    public var task: String?
    public var attempt: String?
    public var sweep: String?
    public var msg: String

    public init(
        ts: Double, level: Level = .info, event: String, worker: String? = nil, task: String? = nil,
        attempt: String? = nil, sweep: String? = nil, msg: String
    ) {
        self.ts = ts
        self.level = level
        self.event = event
        self.worker = worker
        self.task = task
        self.attempt = attempt
        self.sweep = sweep
        self.msg = msg
    }

    /// ISO 8601, UTC, milliseconds.
    public var timestamp: String {
        Date(timeIntervalSince1970: ts).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    public var json: JSONValue {
        let text = { (s: String?) -> JSONValue in s.map { .string($0) } ?? .null }
        return [
            "ts": .string(timestamp), "level": .string(level.rawValue), "event": .string(event),
            "worker": text(worker), "task": text(task), "attempt": text(attempt), "sweep": text(sweep),
            "msg": .string(msg),
        ]
    }

    /// The line without its newline. `source` names the process in text lines ("coordinator",
    /// a worker's id); JSON lines carry it as `worker` where it is a worker.
    public func rendered(_ format: LogFormat, source: String) -> String {
        switch format {
        case .json:
            return json.canonicalText
        case .text:
            let flag = level == .info ? "" : "\(level == .warn ? "warning" : "error"): "
            // One event, one line: a newline in a message (an engine's error) would split it.
            let oneLine = msg.replacingOccurrences(of: "\n", with: " ⏎ ")
            return "[\(timestamp)] \(source): \(flag)\(oneLine)"
        }
    }
}

/// Writes operator log lines to a file handle (stderr by default), one `write` per line so lines
/// from several threads never interleave.
public final class OperatorLog: Sendable {
    public let format: LogFormat
    /// Names the process in text lines.
    public let source: String
    private let handle: FileHandle

    public init(format: LogFormat, source: String, handle: FileHandle = .standardError) {
        self.format = format
        self.source = source
        self.handle = handle
    }

    public func write(_ line: LogLine) {
        handle.write(Data((line.rendered(format, source: source) + "\n").utf8))
    }

    public func write(
        event: String, level: LogLine.Level = .info, worker: String? = nil, task: String? = nil,
        attempt: String? = nil, sweep: String? = nil, _ msg: String
    ) {
        write(
            LogLine(
                ts: Date().timeIntervalSince1970, level: level, event: event, worker: worker, task: task,
                attempt: attempt, sweep: sweep, msg: msg))
    }
}
