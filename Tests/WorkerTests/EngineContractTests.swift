import Foundation
import SweepKit
import Testing
import Wire

@testable import Worker

/// What `EngineEvents` makes of lines, one at a time.
private func read(_ lines: [String]) -> (EngineEvents, [EngineEvents.Reading]) {
    var events = EngineEvents()
    let readings = lines.map { events.read($0) }
    return (events, readings)
}

private func isViolation(_ reading: EngineEvents.Reading, mentioning text: String) -> Bool {
    if case .violation(let reason) = reading { return reason.contains(text) }
    return false
}

@Suite("EngineEvents: an engine's stdout checked against engine/CONTRACT.md")
struct EngineContractTests {
    @Test("events as the contract shows them are accepted; progress and metric are passed on")
    func validEvents() {
        let sha = String(repeating: "ab", count: 32)
        let (events, readings) = read([
            #"{"event": "progress", "epoch": 1, "epochs": 10, "loss": 1.93}"#,
            #"{"event": "metric", "name": "loss", "value": 1.93, "step": 40}"#,
            #"{"event": "metric", "name": "val_acc", "value": null}"#,
            #"{"event": "artifact", "name": "checkpoint", "path": "checkpoint.pt", "sha256": "\#(sha)", "bytes": 10}"#,
            #"{"event": "error", "message": "something went wrong", "invalid": false}"#,
            #"{"event": "result", "metrics": {"accuracy": 91.5, "latency_sparse_ms": null, "ok": true}, "units": {}, "details": {"x": 1}}"#,
            "",
        ])
        #expect(
            readings.map { if case .progress = $0 { "p" } else if case .recorded = $0 { "r" } else { "v" } }
                == ["p", "p", "p", "r", "r", "r", "r"])
        #expect(events.artifacts == [EngineEvents.Artifact(name: "checkpoint", path: "checkpoint.pt", sha256: sha)])
        #expect(events.result?["metrics"]?["accuracy"] == .number(91.5))
        #expect(events.errorMessage == "something went wrong")
        #expect(events.strayNote == nil)
    }

    @Test("a second result is a violation; the first one stands")
    func secondResult() {
        let (events, readings) = read([
            #"{"event": "result", "metrics": {"a": 1}}"#,
            #"{"event": "result", "metrics": {"a": 2}}"#,
        ])
        #expect(readings[0] == .recorded)
        #expect(isViolation(readings[1], mentioning: "second `result`"))
        #expect(events.result?["metrics"]?["a"] == .number(1))
    }

    @Test(
        "events of a known kind without their required fields are violations",
        arguments: [
            (#"{"event": "metric", "value": 1}"#, "`metric` event has no `name`"),
            (#"{"event": "metric", "name": "loss"}"#, "no `value`"),
            (#"{"event": "metric", "name": "loss", "value": "high"}"#, "not a number or null"),
            (#"{"event": "artifact", "name": "checkpoint"}"#, "no `path`"),
            (#"{"event": "artifact", "path": "x.pt"}"#, "no `name`"),
            (#"{"event": "artifact", "name": "c", "path": ""}"#, "`path` is not a non-empty string"),
            (#"{"event": "artifact", "name": "c", "path": 7}"#, "`path` is not a non-empty string"),
            (#"{"event": "artifact", "name": "c", "path": "x", "sha256": "abc"}"#, "64 hex digits"),
            (#"{"event": "artifact", "name": "c", "path": "x", "bytes": -1}"#, "`bytes`"),
            (#"{"event": "result"}"#, "no `metrics`"),
            (#"{"event": "result", "metrics": [1]}"#, "`metrics` is not an object"),
            (#"{"event": "result", "metrics": {"accuracy": "91%"}}"#, "metric 'accuracy' that is not a number or null"),
            (#"{"event": "result", "metrics": {}, "units": "ms"}"#, "`units` is not an object"),
            (#"{"event": "error"}"#, "no `message`"),
            (#"{"event": "error", "message": "x", "invalid": "yes"}"#, "`invalid`"),
        ])
    func missingFields(line: String, reason: String) {
        let (events, readings) = read([line])
        #expect(isViolation(readings[0], mentioning: reason), "\(readings[0])")
        #expect(isViolation(readings[0], mentioning: "engine/CONTRACT.md"))
        #expect(events.result == nil && events.artifacts.isEmpty)
    }

    @Test("lines that are not events are counted and the first five kept for the stderr tail, not dropped")
    func strayLines() throws {
        let lines = [
            "Epoch 1/10 ...", "[1, 2]", #"{"no_event": true}"#, #"{"event": "checkpointed", "step": 3}"#,
            #"{"event": 5}"#, String(repeating: "y", count: 1000), "last",
        ]
        let (events, readings) = read(lines)
        #expect(readings.allSatisfy { $0 == .recorded })
        #expect(events.strayCount == 7)
        let note = try #require(events.strayNote)
        #expect(note.contains("7 stdout line(s)") && note.contains("and 2 more"))
        #expect(note.contains("Epoch 1/10") && note.contains("checkpointed"))
        #expect(!note.contains(String(repeating: "y", count: 201)), "each kept line is cut to 200 characters")
    }

    @Test("more artifacts than a result may carry are a violation")
    func tooManyArtifacts() {
        let lines = (0...WireLimits.maxArtifactsPerResult).map {
            #"{"event": "artifact", "name": "a\#($0)", "path": "f\#($0)"}"#
        }
        let (events, readings) = read(lines)
        #expect(events.artifacts.count == WireLimits.maxArtifactsPerResult)
        #expect(isViolation(readings.last!, mentioning: "more than \(WireLimits.maxArtifactsPerResult) artifacts"))
    }
}

@Suite("ArtifactContainment: an artifact is a regular file inside the work directory")
struct ArtifactContainmentTests {
    /// A work directory reached through a symbolic link (as a cache under a linked /tmp is),
    /// with a file inside and one next to it, outside.
    private func layout() throws -> (workdir: String, inside: String, outside: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sg-contain-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: "\(base)/real/work", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(base)/linked", withDestinationPath: "\(base)/real")
        try Data("in".utf8).write(to: URL(fileURLWithPath: "\(base)/real/work/model.pt"))
        try Data("out".utf8).write(to: URL(fileURLWithPath: "\(base)/real/outside.txt"))
        return ("\(base)/linked/work", "\(base)/real/work/model.pt", "\(base)/real/outside.txt")
    }

    @Test("relative, absolute and linked paths to a file inside resolve to its real path")
    func inside() throws {
        let (workdir, inside, _) = try layout()
        try FileManager.default.createSymbolicLink(atPath: "\(workdir)/latest.pt", withDestinationPath: "model.pt")
        try FileManager.default.createDirectory(atPath: "\(workdir)/sub", withIntermediateDirectories: true)
        for path in ["model.pt", "\(workdir)/model.pt", "latest.pt", "sub/../model.pt", "./model.pt"] {
            #expect(try ArtifactContainment.resolve(name: "c", path: path, workdir: workdir) == inside, "\(path)")
        }
    }

    @Test("absolute, ../ and linked paths out, directories, pipes and missing files are refused")
    func refused() throws {
        let (workdir, _, outside) = try layout()
        try FileManager.default.createSymbolicLink(atPath: "\(workdir)/escape.pt", withDestinationPath: outside)
        try FileManager.default.createDirectory(atPath: "\(workdir)/dir", withIntermediateDirectories: true)
        #expect(mkfifo("\(workdir)/pipe", 0o600) == 0)
        let cases = [
            (outside, "outside"), ("../outside.txt", "outside"), ("escape.pt", "outside"),
            ("/etc/passwd", "outside"), ("dir", "not a regular file"), ("pipe", "not a regular file"),
            ("missing.pt", "does not exist"), (".", "outside"),
        ]
        for (path, reason) in cases {
            #expect {
                _ = try ArtifactContainment.resolve(name: "c", path: path, workdir: workdir)
            } throws: { error in
                "\(error)".contains(reason)
            }
        }
        #expect(FileManager.default.contents(atPath: outside) == Data("out".utf8))
    }
}
