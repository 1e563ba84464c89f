import Foundation
import SweepKit
import Synchronization

/// One engine's `describe`, for commands other than the worker (`validate`, `launch`, `run`
/// check specs against the engine's published ranges): answered from the describe cache the
/// workers share when the engine's files have not changed, else by running it once (as a
/// worker would, with its timeout and output bound) and caching the answer.
public enum EngineDescription {
    public struct Outcome: Sendable {
        /// nil: the engine could not be described (`problem` says why).
        public var described: JSONValue?
        /// Whether the answer came from the cache (no engine process was started).
        public var fromCache: Bool
        public var problem: String?
    }

    /// Blocks until answered (a `describe` that hangs is killed after
    /// `EngineDescriber.describeTimeout`); the engine runs on a thread of its own, not on
    /// Swift concurrency's pool.
    /// `willRun` is called before an engine process is started (the cache had no answer).
    public static func describe(
        name: String, command: EngineCommand, cacheDirectory: String, willRun: () -> Void = {}
    ) -> Outcome {
        let messages = Mutex<[String]>([])
        let config = WorkerConfig(
            coordinator: "", workerId: "describe", host: "", slots: [], engines: [name: command],
            cacheDirectory: FileManager.default.temporaryDirectory.path, describeEngines: true,
            describeCacheDirectory: cacheDirectory)
        let describer = EngineDescriber(config: config) { log in
            if log.level == .warn { messages.withLock { $0.append(log.message) } }
        }
        let (known, pending) = describer.known()
        if let described = known[name] { return Outcome(described: described, fromCache: true, problem: nil) }
        guard !pending.isEmpty else { return Outcome(described: nil, fromCache: false, problem: "not an engine here") }
        willRun()
        let answer = Mutex<JSONValue?>(nil)
        let done = DispatchSemaphore(value: 0)
        describer.start(pending) { _, described in
            answer.withLock { $0 = described }
            done.signal()
        }
        done.wait()
        let described = answer.withLock { $0 }
        let problem = described == nil ? (messages.withLock { $0.last } ?? "`describe` gave no answer") : nil
        return Outcome(described: described, fromCache: false, problem: problem)
    }
}
