import Foundation
import SweepKit
import Testing

@testable import Wire

private func decodeAssign(_ extra: String) throws -> Assign {
    let text = #"{"attemptId":"a","taskId":"t","sweep":"s","stage":"train","engine":"e","device":"any""# + extra + "}"
    return try Envelope(type: .assign, header: Array(text.utf8)).decode(Assign.self)
}

private func decodeFailed(_ extra: String) throws -> TaskFailed {
    let text = #"{"attemptId":"a","taskId":"t","error":"e""# + extra + "}"
    return try Envelope(type: .failed, header: Array(text.utf8)).decode(TaskFailed.self)
}

@Suite("Wire: an assign's timeout and a failure's outcome")
struct TimeoutFieldTests {
    @Test("`assign.timeout` is optional and, when present, a number of seconds in (0, 30 days]")
    func assignTimeout() throws {
        #expect(try decodeAssign("").timeout == nil)
        #expect(try decodeAssign(#","timeout":null"#).timeout == nil)
        #expect(try decodeAssign(#","timeout":3600"#).timeout == 3600)
        #expect(try decodeAssign(#","timeout":0.5"#).timeout == 0.5)
        #expect(try decodeAssign(#","timeout":2592000"#).timeout == 2_592_000)
        for bad in ["0", "-1", "2592001", "1e300", #""60""#, "true", "[1]"] {
            #expect(throws: WireError.self, "timeout \(bad)") { _ = try decodeAssign(#","timeout":"# + bad) }
        }
    }

    @Test("`failed.outcome` is absent or `timeout`, and `timeout` cannot be marked not retryable")
    func failedOutcome() throws {
        #expect(try decodeFailed("").outcome == nil)
        #expect(try decodeFailed(#","outcome":null"#).outcome == nil)
        #expect(try decodeFailed(#","outcome":"timeout""#).outcome == .timeout)
        #expect(try decodeFailed(#","outcome":"timeout","retryable":true"#).outcome == .timeout)
        for bad in [
            #","outcome":"lost""#, #","outcome":"Timeout""#, #","outcome":1"#,
            #","outcome":"timeout","retryable":false"#,
        ] {
            #expect(throws: WireError.self, "\(bad)") { _ = try decodeFailed(bad) }
        }
    }
}

@Suite("Operator log lines")
struct LogLineTests {
    @Test("`--log-format json` writes one JSON object per line with ts, level, event, worker, task, attempt and msg")
    func jsonLines() throws {
        let line = LogLine(
            ts: 1_700_000_000.25, level: .warn, event: "dead", worker: "w1", task: "t1",
            attempt: nil, sweep: "sw", msg: "worker w1 went silent for 30 s:\ndeclared dead")
        let text = line.rendered(.json, source: "coordinator")
        #expect(!text.contains("\n"), "one line")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        for key in ["ts", "level", "event", "worker", "task", "attempt", "msg"] {
            #expect(object.keys.contains(key), "missing \(key)")
        }
        #expect(object["ts"] as? String == "2023-11-14T22:13:20.250Z")
        #expect(object["level"] as? String == "warn")
        #expect(object["event"] as? String == "dead")
        #expect(object["worker"] as? String == "w1")
        #expect(object["task"] as? String == "t1")
        #expect(object["attempt"] is NSNull)
        #expect(object["msg"] as? String == "worker w1 went silent for 30 s:\ndeclared dead")
    }

    @Test("text lines carry the time, the source and the message on one line; warnings say so")
    func textLines() {
        let info = LogLine(ts: 0, event: "joined", worker: "w1", msg: "worker w1 joined")
        #expect(
            info.rendered(.text, source: "coordinator") == "[1970-01-01T00:00:00.000Z] coordinator: worker w1 joined")
        let warn = LogLine(ts: 0, level: .warn, event: "failed", msg: "a\nb")
        #expect(warn.rendered(.text, source: "w1") == "[1970-01-01T00:00:00.000Z] w1: warning: a ⏎ b")
    }

    @Test("OperatorLog writes whole lines to its handle")
    func writes() throws {
        let pipe = Pipe()
        let log = OperatorLog(format: .json, source: "coordinator", handle: pipe.fileHandleForWriting)
        log.write(event: "joined", worker: "w1", "worker w1 joined")
        log.write(event: "left", level: .info, worker: "w1", "worker w1 said bye")
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 2)
        for line in lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any])
        }
    }
}
