import Foundation
import SweepKit
import Testing
import Wire

@testable import Worker

@Suite("Describe cache: keyed on the command and the engine's files")
struct DescribeCacheTests {
    private func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sg-describe-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Rewrites a file with other content and a later modification time.
    private func touch(_ path: String, _ text: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: path)
    }

    @Test(
        "a script engine: the same files give the same key; editing the script or a file beside it, or other arguments, give another"
    )
    func scriptKey() throws {
        let dir = try tempDir()
        try "print('v1')".write(toFile: "\(dir)/engine.py", atomically: true, encoding: .utf8)
        try "x = 1".write(toFile: "\(dir)/helper.py", atomically: true, encoding: .utf8)
        let command = EngineCommand(executable: "/bin/sh", arguments: ["\(dir)/engine.py"])
        let key = try #require(DescribeCache.key(for: command))
        #expect(DescribeCache.key(for: command) == key)
        #expect(
            DescribeCache.key(for: EngineCommand(executable: "/bin/sh", arguments: ["\(dir)/engine.py", "--fast"]))
                != key)
        #expect(
            DescribeCache.key(
                for: EngineCommand(
                    executable: "/bin/sh", arguments: ["\(dir)/engine.py"],
                    environment: ["X": "1"])) != key)
        try touch("\(dir)/engine.py", "print('v2')")
        let edited = try #require(DescribeCache.key(for: command))
        #expect(edited != key)
        try touch("\(dir)/helper.py", "x = 2")
        #expect(DescribeCache.key(for: command) != edited)
    }

    @Test("`-m PACKAGE`: keyed on every file of the package found on PYTHONPATH; not cached when it cannot be found")
    func moduleKey() throws {
        let dir = try tempDir()
        try FileManager.default.createDirectory(atPath: "\(dir)/myengine/sub", withIntermediateDirectories: true)
        try "".write(toFile: "\(dir)/myengine/__init__.py", atomically: true, encoding: .utf8)
        try "a = 1".write(toFile: "\(dir)/myengine/sub/deep.py", atomically: true, encoding: .utf8)
        let command = EngineCommand(
            executable: "/bin/sh", arguments: ["-m", "myengine"],
            environment: ["PYTHONPATH": dir])
        let key = try #require(DescribeCache.key(for: command))
        try FileManager.default.createDirectory(
            atPath: "\(dir)/myengine/__pycache__", withIntermediateDirectories: true)
        try "junk".write(toFile: "\(dir)/myengine/__pycache__/x.pyc", atomically: true, encoding: .utf8)
        #expect(DescribeCache.key(for: command) == key, "compiled caches do not count")
        try touch("\(dir)/myengine/sub/deep.py", "a = 2")
        #expect(DescribeCache.key(for: command) != key)

        let missing = EngineCommand(
            executable: "/bin/sh", arguments: ["-m", "nosuchengine"],
            environment: ["PYTHONPATH": dir])
        #expect(DescribeCache.key(for: missing) == nil)
        #expect(DescribeCache.key(for: EngineCommand(executable: "/no/such/program")) == nil)
    }

    @Test("store then load gives the description back for the same key only, and replaces the engine's older entries")
    func storeAndLoad() throws {
        let dir = try tempDir()
        let cache = DescribeCache(directory: "\(dir)/describe")
        let described: JSONValue = ["engine": "test", "version": "1", "models": ["any"]]
        #expect(cache.load(name: "test", key: "k1") == nil)
        cache.store(name: "test", key: "k1", command: "python3 engine.py", described: described, now: 1)
        #expect(cache.load(name: "test", key: "k1") == described)
        #expect(cache.load(name: "test", key: "k2") == nil)
        #expect(cache.load(name: "other", key: "k1") == nil)
        cache.store(name: "test", key: "k2", command: "python3 engine.py", described: ["version": "2"], now: 2)
        #expect(cache.load(name: "test", key: "k1") == nil, "the engine's entry under the old key is gone")
        #expect(cache.load(name: "test", key: "k2") == ["version": "2"])
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/describe")
        #expect(files.count == 1)
    }

    @Test(
        "a worker's known engines: the null engine, cached descriptions at once, the rest pending; --no-describe offers commands"
    )
    func knownEngines() throws {
        let dir = try tempDir()
        try "print('x')".write(toFile: "\(dir)/engine.py", atomically: true, encoding: .utf8)
        let command = EngineCommand(executable: "/bin/sh", arguments: ["\(dir)/engine.py"])
        var config = WorkerConfig(
            coordinator: "tcp://127.0.0.1:1", workerId: "w", host: "h",
            slots: [SlotInfo(index: 0, device: "cpu")],
            engines: ["cached": command, "fresh": EngineCommand(executable: "/bin/true")],
            cacheDirectory: dir)
        let key = try #require(DescribeCache.key(for: command))
        DescribeCache(directory: config.describeCache).store(
            name: "cached", key: key, command: "sh engine.py",
            described: ["engine": "cached"], now: 0)
        let describer = EngineDescriber(config: config) { _ in }
        let (engines, pending) = describer.known()
        #expect(Set(engines.keys) == ["null", "cached"])
        #expect(engines["cached"] == ["engine": "cached"])
        #expect(pending.map(\.name) == ["fresh"])

        config.describeEngines = false
        let plain = EngineDescriber(config: config) { _ in }.known()
        #expect(Set(plain.engines.keys) == ["null", "cached", "fresh"])
        #expect(plain.pending.isEmpty)
    }

    @Test("cancel kills a describe in progress at once and nothing more is reported")
    func cancelDescribe() throws {
        let dir = try tempDir()
        let slow = EngineCommand(executable: "/bin/sh", arguments: ["-c", "exec sleep 30", "sh"])
        let config = WorkerConfig(
            coordinator: "tcp://127.0.0.1:1", workerId: "w", host: "h",
            slots: [SlotInfo(index: 0, device: "cpu")], engines: ["slow": slow],
            cacheDirectory: dir)
        let describer = EngineDescriber(config: config) { _ in }
        let reported = Reports()
        describer.start(describer.known().pending) { name, _ in reported.add(name) }
        // Plain thread sleeps: this must not depend on the test pool's threads.
        var waited = 0.0
        while !describer.isDescribing, waited < 20 {
            Thread.sleep(forTimeInterval: 0.02)
            waited += 0.02
        }
        #expect(describer.isDescribing)
        let cancelled = Date()
        describer.cancel()
        while describer.isDescribing, Date().timeIntervalSince(cancelled) < 10 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(!describer.isDescribing)
        #expect(Date().timeIntervalSince(cancelled) < 3, "the describe process was not killed at once")
        Thread.sleep(forTimeInterval: 0.2)
        #expect(reported.names.isEmpty)
    }
}

final class Reports: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ name: String) { lock.lock(); list.append(name); lock.unlock() }
    var names: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
