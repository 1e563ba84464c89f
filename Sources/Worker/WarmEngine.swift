import Foundation
import SweepKit
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A long-lived engine, `<engine> serve` (engine/CONTRACT.md): one process
/// that runs many tasks, one at a time. It is an `EngineProcess` (own session and group, the
/// same signal and descriptor rules) whose stdin is a pipe from the worker. Per task the
/// worker writes one line, `{"task": FILE, "workdir": DIR}`, and reads the task's events up to
/// the engine's `{"event": "end", "exit": N}` line, with the same per-line checks as `run`.
///
/// The stream is not trusted: output before a task line or after `end` (a second `end`, a
/// stray line) marks the process as not to be used again; stdout closed while the process
/// lives, a malformed `end`, a line over the cap, or stdin refusing the task line stop it and
/// fail the task; a process that exits before its `end` fails the task with its exit status.
final class WarmEngine: Sendable {
    let process: EngineProcess
    /// What it was started as: a slot's warm engine is reused only for the same engine, command
    /// and environment.
    let name: String
    let command: EngineCommand
    let environment: [String: String]

    /// How one task ended.
    struct TaskOutcome {
        /// As `EngineProcess.readLines` reports it: the `end` line's `exit` when the engine
        /// printed one, else the process's own exit status or signal; the task's stderr tail.
        var outcome: EngineProcess.Outcome
        /// The `end` line was read (the process still runs).
        var ended: Bool
        /// The engine asked to be replaced (`"recycle": true`), or it printed something it
        /// should not have after its `end`: the process is not given another task.
        var recycle: Bool
        /// 1 for the process's first task.
        var taskIndex: Int
        /// The task line could not be written (the engine closed its stdin, or does not read
        /// it): the process was stopped; the task itself may be fine.
        var notDelivered: String? = nil
    }

    private struct Reader {
        /// Bytes of the stdout line being read (no newline seen yet).
        var pending: [UInt8] = []
        var stdoutClosed = false
        var stderrClosed = false
        var tasks = 0
        /// Why the process may not run another task (nil: it may).
        var spoiled: String? = nil
        var busy = false
    }

    private let reader = Mutex(Reader())

    init(
        name: String, command: EngineCommand, environment: [String: String], directory: String,
        killGrace: Double = EngineProcess.defaultKillGrace
    ) throws {
        self.name = name
        self.command = command
        self.environment = environment
        self.process = try EngineProcess(
            command: command, arguments: ["serve"], environment: environment, directory: directory,
            killGrace: killGrace, stdin: true)
    }

    var pid: Int32 { process.pid }
    var tasksRun: Int { reader.withLock { $0.tasks } }

    /// Why this process may not take another task (it exited, printed between tasks, closed
    /// its stdout, broke the stream), or nil when it may. Reads (and drops) what came on stderr
    /// since the last task.
    func unusableReason() -> String? {
        if let spoiled = reader.withLock({ $0.spoiled }) { return spoiled }
        if process.hasExited || process.isAborted { return "the engine process has exited" }
        var fds = [
            pollfd(fd: process.stdoutFd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: process.stderrFd, events: Int16(POLLIN), revents: 0),
        ]
        let stdoutClosed = reader.withLock { $0.stdoutClosed }
        if stdoutClosed { return "the engine closed its stdout" }
        _ = poll(&fds, 2, 0)
        if fds[1].revents != 0 { _ = drainStderr() }
        if fds[0].revents != 0 {
            let reason = "the engine printed on stdout (or closed it) between tasks"
            reader.withLock { $0.spoiled = reason }
            return reason
        }
        return nil
    }

    /// Runs one task: writes its line, hands each stdout line of the task (but `end`) to
    /// `line`, and returns once the engine printed `end` or exited. The caller stops the
    /// process (`process.abort` or `terminate`) to end a task early. One task at a time.
    func runTask(taskFile: String, workdir: String, line: (String) -> Void) -> TaskOutcome {
        let index = reader.withLock { r -> Int in
            precondition(!r.busy, "WarmEngine.runTask runs one task at a time")
            r.busy = true
            r.tasks += 1
            return r.tasks
        }
        defer { reader.withLock { $0.busy = false } }

        let request: JSONValue = ["task": .string(taskFile), "workdir": .string(workdir)]
        if let problem = writeLine(request.canonicalText) {
            reader.withLock { $0.spoiled = "its stdin refused a task" }
            process.terminate()
            _ = process.waitForExit(timeout: 2 * process.killGrace + 5)
            let status = process.exitStatus
            return TaskOutcome(
                outcome: EngineProcess.Outcome(exitCode: status.exitCode, signal: status.signal, stderrTail: ""),
                ended: false, recycle: true, taskIndex: index,
                notDelivered: "the worker could not give the task to the engine's serve process (\(problem))")
        }

        var tail: [UInt8] = []
        var end: (exit: Int32, recycle: Bool)? = nil
        var afterEnd = false
        var exited = false
        var drainUntil = 0.0
        var afterExit = 0
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var r = reader.withLock { $0 }

        func keep(_ bytes: ArraySlice<UInt8>) {
            tail.append(contentsOf: bytes)
            let excess = tail.count - EngineProcess.tailBytes
            if excess > EngineProcess.tailBytes { tail.removeFirst(excess) }
        }
        /// One complete stdout line.
        func deliver(_ bytes: ArraySlice<UInt8>) {
            if end != nil {
                afterEnd = true
                return
            }
            if process.isAborted { return }
            if let parsed = Self.endLine(bytes) {
                switch parsed {
                case .success(let value): end = value
                case .failure(let problem):
                    process.abort("the engine broke its contract (engine/CONTRACT.md): \(problem)")
                }
                return
            }
            line(String(decoding: bytes, as: UTF8.self))
        }
        /// Splits new stdout bytes into lines.
        func take(_ bytes: ArraySlice<UInt8>) {
            var start = bytes.startIndex
            while let newline = bytes[start...].firstIndex(of: 0x0A) {
                let piece = bytes[start..<newline]
                start = newline + 1
                if end != nil {
                    afterEnd = true
                    return
                }
                if r.pending.count + piece.count > EngineProcess.maxLineBytes { return overLong() }
                if r.pending.isEmpty {
                    deliver(piece)
                } else {
                    r.pending.append(contentsOf: piece)
                    let complete = r.pending
                    r.pending.removeAll(keepingCapacity: true)
                    deliver(complete[...])
                }
            }
            let rest = bytes[start...]
            if rest.isEmpty { return }
            if end != nil {
                afterEnd = true
                return
            }
            if r.pending.count + rest.count > EngineProcess.maxLineBytes { return overLong() }
            r.pending.append(contentsOf: rest)
        }
        func overLong() {
            r.pending.removeAll()
            process.abort(
                "the engine printed a stdout line longer than the 1 MiB limit (\(EngineProcess.maxLineBytes) bytes "
                    + "per event line); it was stopped")
        }

        while end == nil {
            if exited, (r.stdoutClosed && r.stderrClosed) || afterExit > EngineProcess.drainBytes { break }
            var fds = [
                pollfd(fd: r.stdoutClosed ? -1 : process.stdoutFd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: r.stderrClosed ? -1 : process.stderrFd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: exited ? -1 : process.exitedFd, events: Int16(POLLIN), revents: 0),
            ]
            let timeout: Int32 =
                exited ? Int32(max(0, ((drainUntil - EngineProcess.now()) * 1000).rounded(.up))) : -1
            let ready = poll(&fds, 3, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                process.abort("the worker could not read the engine's output (\(String(cString: strerror(errno))))")
                _ = process.waitForExit(timeout: 2 * process.killGrace + 5)
                break
            }
            if ready == 0 {
                if exited { break }
                continue
            }
            if fds[2].revents != 0 {
                // Not read: the byte stays, so `hasExited`/`waitForExit` keep seeing it.
                exited = true
                drainUntil = EngineProcess.now() + EngineProcess.drainSeconds
            }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                if n <= 0 {
                    if i == 0 { r.stdoutClosed = true } else { r.stderrClosed = true }
                    // End-of-file on stdout usually means the process exited (the waiter may not
                    // have said so yet): wait that long before calling it a process that runs on.
                    if i == 0, !exited, end == nil, !process.waitForExit(timeout: EngineProcess.drainSeconds) {
                        process.abort(
                            "the engine closed its stdout before its `end` line (it runs on); it was stopped")
                    }
                    continue
                }
                if exited { afterExit += n }
                if i == 0 { take(chunk[0..<n]) } else { keep(chunk[0..<n]) }
            }
        }
        if end == nil, !r.pending.isEmpty, !process.isAborted, exited {
            // A last line without its newline still counts (it cannot be `end`: the process is gone).
            let last = r.pending
            r.pending.removeAll()
            deliver(last[...])
        }
        if end != nil {
            // The engine flushed stderr before printing `end`: take what is in the pipe now.
            keep(drainStderr()[...])
            if !r.pending.isEmpty { afterEnd = true }
        }
        if afterEnd { r.spoiled = "the engine printed on stdout after its `end` line" }
        let spoiled = r.spoiled
        reader.withLock { state in
            state.pending = r.pending
            state.stdoutClosed = r.stdoutClosed
            state.stderrClosed = r.stderrClosed
            if state.spoiled == nil { state.spoiled = spoiled }
        }

        let text = String(decoding: tail.suffix(EngineProcess.tailBytes), as: UTF8.self)
        if let end, !process.isAborted {
            return TaskOutcome(
                outcome: EngineProcess.Outcome(exitCode: end.exit, signal: nil, stderrTail: text),
                ended: true, recycle: end.recycle || spoiled != nil, taskIndex: index)
        }
        // Stopped, or it exited on its own: the process is done with. Wait for it (the worker
        // stopped it, or it exited) so the exit status is known.
        if !process.isAborted, !exited { process.terminate() }
        _ = process.waitForExit(timeout: 2 * process.killGrace + 5)
        let status = process.exitStatus
        return TaskOutcome(
            outcome: EngineProcess.Outcome(
                exitCode: status.exitCode, signal: status.signal, stderrTail: text,
                abortReason: process.abortReason),
            ended: false, recycle: true, taskIndex: index)
    }

    /// Closes stdin (the engine exits 0), waits `killGrace` for it, then stops the whole group
    /// (SIGTERM, SIGKILL after the grace) and waits for that. Blocks; returns once it is reaped
    /// (or after twice the grace and a bit, if even SIGKILL did not reap it).
    func retire() {
        process.closeStdin()
        if process.waitForExit(timeout: process.killGrace) { return }
        process.terminate()
        _ = process.waitForExit(timeout: process.killGrace + 5)
    }

    /// What is in the stderr pipe now, read without waiting (at most `drainBytes`, the last
    /// `tailBytes` of it kept).
    private func drainStderr() -> [UInt8] {
        var kept: [UInt8] = []
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while total < EngineProcess.drainBytes {
            var fd = pollfd(fd: process.stderrFd, events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, 0) > 0 else { break }
            let n = chunk.withUnsafeMutableBytes { read(process.stderrFd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            total += n
            kept.append(contentsOf: chunk[0..<n])
            if kept.count > 2 * EngineProcess.tailBytes { kept.removeFirst(kept.count - EngineProcess.tailBytes) }
        }
        return kept
    }

    /// Writes one line to the engine's stdin: nil, or what went wrong. SIGPIPE (the engine
    /// closed its stdin) is blocked on this thread and taken back, so it cannot end the worker;
    /// the write then fails with EPIPE. The pipe is non-blocking: a full pipe is an error.
    private func writeLine(_ text: String) -> String? {
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer {
            // A SIGPIPE this write raised is pending on this thread: take it before unblocking.
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipeSignal, nil, &zero)
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(process.stdinFd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { return "its stdin is full: it does not read it" }
                return "writing to its stdin: \(String(cString: strerror(errno)))"
            }
            written += n
        }
        return nil
    }

    /// If `bytes` is an `end` event: its `exit` (an integer 0…255) and `recycle` (true or
    /// false, absent = false), or what is wrong with it. nil for any other line.
    static func endLine(_ bytes: ArraySlice<UInt8>) -> Result<(exit: Int32, recycle: Bool), EndProblem>? {
        // Cheap test first: every `end` line holds the word.
        let word: [UInt8] = Array("\"end\"".utf8)
        guard bytes.count >= word.count,
            bytes.indices.contains(where: { i in
                i + word.count <= bytes.endIndex && bytes[i..<(i + word.count)].elementsEqual(word)
            })
        else { return nil }
        guard let value = try? JSONValue.parse(String(decoding: bytes, as: UTF8.self)),
            let event = value.objectValue, event["event"]?.stringValue == "end"
        else { return nil }
        guard let exit = event["exit"]?.doubleValue, exit == exit.rounded(), (0...255).contains(exit) else {
            return .failure(EndProblem("its `end` line's `exit` is not an integer 0 to 255"))
        }
        var recycle = false
        if let flag = event["recycle"] {
            guard let b = flag.boolValue else {
                return .failure(EndProblem("its `end` line's `recycle` is not true or false"))
            }
            recycle = b
        }
        return .success((Int32(exit), recycle))
    }

    struct EndProblem: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// The warm engines of a worker: at most one per slot, kept between the slot's tasks and
/// replaced after `reuse` tasks, a failed task, a broken stream, `recycle`, or a stop.
/// Retired processes are stopped on threads of their own; `shutdown` retires every idle one
/// and waits for all of them, so none outlives the worker.
final class WarmEngines: Sendable {
    let reuse: Int
    let killGrace: Double

    private struct State {
        var idle: [Int: WarmEngine] = [:]
        /// Being retired now (by pid).
        var retiring: [Int32: WarmEngine] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let retirements = DispatchGroup()

    init(reuse: Int, killGrace: Double = EngineProcess.defaultKillGrace) {
        self.reuse = reuse
        self.killGrace = killGrace
    }

    /// The slot's warm engine for this engine, command and environment: the idle one if it may
    /// run another task, else a fresh `serve` process. Throws when it cannot be started or the
    /// worker is shutting down.
    func take(
        slot: Int, name: String, command: EngineCommand, environment: [String: String], directory: String
    ) throws -> WarmEngine {
        let (found, closed) = state.withLock { s -> (WarmEngine?, Bool) in
            (s.idle.removeValue(forKey: slot), s.closed)
        }
        if closed { throw WorkerError("the worker is shutting down") }
        if let found {
            if found.name == name, found.command == command, found.environment == environment,
                found.unusableReason() == nil
            {
                return found
            }
            retire(found)
        }
        let killGrace = killGrace
        return try SpawnThread.run {
            try WarmEngine(
                name: name, command: command, environment: environment, directory: directory, killGrace: killGrace)
        }
    }

    /// Hands a slot's engine back after a task: kept for the next task when `keep` and it has
    /// run fewer than `reuse` tasks, else retired.
    func giveBack(slot: Int, engine: WarmEngine, keep: Bool) {
        let kept = state.withLock { s -> Bool in
            guard keep, !s.closed, engine.tasksRun < reuse, s.idle[slot] == nil else { return false }
            s.idle[slot] = engine
            return true
        }
        if !kept { retire(engine) }
    }

    /// Pids of the live warm processes (idle or being retired), for tests and logs.
    var pids: [Int32] {
        state.withLock { s in (s.idle.values.map(\.pid) + s.retiring.values.map(\.pid)).sorted() }
    }

    /// Closes the idle engines' stdin, stops them (grace, then the group), and waits until
    /// every warm process this worker started has been reaped. Later `take`s throw.
    func shutdown() {
        let idle = state.withLock { s -> [WarmEngine] in
            s.closed = true
            defer { s.idle.removeAll() }
            return Array(s.idle.values)
        }
        for engine in idle { retire(engine) }
        retirements.wait()
    }

    private func retire(_ engine: WarmEngine) {
        state.withLock { $0.retiring[engine.pid] = engine }
        retirements.enter()
        Thread.detachNewThread { [self] in
            engine.retire()
            state.withLock { _ = $0.retiring.removeValue(forKey: engine.pid) }
            retirements.leave()
        }
    }
}
