import Foundation
import SweepKit
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One engine subprocess: `<engine> run --task FILE --workdir DIR` (or `describe`), kept
/// under the worker's control:
///
/// - It runs in a session and process group of its own (`Spawn`), with an empty signal mask,
///   default signal dispositions and no descriptor of the worker but 0, 1 and 2.
/// - `terminate` (from any thread) sends SIGTERM to the whole group, then SIGKILL to the
///   group after `killGrace` seconds.
/// - The run ends when the engine process exits, not when every process that inherited its
///   stdout has closed it: whatever is left in its group is SIGKILLed then, what is already in
///   the pipes is read (new output waited for at most `drainSeconds`), and the pipes are closed.
/// - Output is bounded: stdout is split into lines in one pass over the bytes (each byte is
///   looked at once), a line longer than `maxLineBytes` stops the engine with a reason, and
///   stderr keeps only its last `tailBytes`.
final class EngineProcess: Sendable {
    struct Outcome {
        var exitCode: Int32?
        var signal: Int32?
        var stderrTail: String
        /// Why the worker stopped the engine itself (a line over the cap, a broken contract:
        /// see `abort`), if it did.
        var abortReason: String? = nil
    }

    static let tailBytes = 4096
    /// The longest stdout line (one event) an engine may print, newline excluded.
    static let maxLineBytes = 1 << 20
    /// Seconds between SIGTERM and SIGKILL when the worker stops an engine.
    static let defaultKillGrace: Double = 5
    /// After the engine exited, its pipes are read until end-of-file, but new output is
    /// waited for at most `drainSeconds` and at most `drainBytes` are read in all. What the
    /// engine wrote before it exited is already in the pipes (at most their capacity, 1 MiB
    /// at the most each); the bounds only matter for a writer that escaped the group.
    static let drainSeconds: Double = 0.5
    static let drainBytes = 4 << 20

    /// The engine's pid, also its process group and session id.
    let pid: Int32
    let killGrace: Double
    let stdoutFd: Int32
    let stderrFd: Int32
    /// Becomes readable (one byte, then end-of-file) once the engine has exited and been reaped.
    let exitedFd: Int32
    /// The write end of the engine's stdin (non-blocking), for a `serve` engine; -1 otherwise
    /// (its stdin is /dev/null).
    let stdinFd: Int32

    private struct State {
        var reaped = false
        /// The wait status; nil when it could not be had.
        var status: Int32? = nil
        var abortReason: String? = nil
        var reading = false
        var closed = false
        var stdinClosed = false
    }

    private let state = Mutex(State())

    init(
        command: EngineCommand, arguments: [String], environment: [String: String], directory: String,
        killGrace: Double = EngineProcess.defaultKillGrace, stdin: Bool = false
    ) throws {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in command.environment { env[k] = v }
        for (k, v) in environment { env[k] = v }
        let executable = URL(fileURLWithPath: EngineProcess.resolve(command.executable)).path
        let out = try Spawn.pipe()
        let err: (read: Int32, write: Int32)
        let exited: (read: Int32, write: Int32)
        do { err = try Spawn.pipe() } catch { close(out.read); close(out.write); throw error }
        do { exited = try Spawn.pipe() } catch {
            for fd in [out.read, out.write, err.read, err.write] { close(fd) }
            throw error
        }
        var input: (read: Int32, write: Int32)? = nil
        if stdin {
            do { input = try Spawn.pipe() } catch {
                for fd in [out.read, out.write, err.read, err.write, exited.read, exited.write] { close(fd) }
                throw error
            }
        }
        let pid: pid_t
        do {
            pid = try Spawn.start(
                executable: executable, arguments: command.arguments + arguments, environment: env,
                directory: directory, stdout: out.write, stderr: err.write, stdin: input?.read)
        } catch {
            for fd in [out.read, out.write, err.read, err.write, exited.read, exited.write] { close(fd) }
            if let input { close(input.read); close(input.write) }
            throw WorkerError("cannot start engine \(command.executable): \(error)")
        }
        // The child has its own copies; the worker keeps only the read ends (and stdin's write end,
        // non-blocking: an engine that does not read its stdin cannot block the worker).
        close(out.write)
        close(err.write)
        if let input {
            close(input.read)
            _ = fcntl(input.write, F_SETFL, fcntl(input.write, F_GETFL) | O_NONBLOCK)
        }
        self.stdinFd = input?.write ?? -1
        self.pid = pid
        self.killGrace = killGrace
        self.stdoutFd = out.read
        self.stderrFd = err.read
        self.exitedFd = exited.read

        // The waiter: sees the exit without reaping (the pid, and so the group id, cannot be
        // reused meanwhile), kills what is left of the group, reaps, and says so.
        let notify = exited.write
        Thread.detachNewThread { [self] in
            var info = siginfo_t()
            var seen: Int32
            repeat { seen = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) } while seen != 0 && errno == EINTR
            state.withLock { s in
                // (Had someone else reaped it, the pid would no longer be the engine's: no signal.)
                if seen == 0 {
                    killpg(pid, SIGKILL)
                    var status: Int32 = 0
                    var reaped: pid_t
                    repeat { reaped = waitpid(pid, &status, 0) } while reaped == -1 && errno == EINTR
                    s.status = reaped == pid ? status : nil
                }
                s.reaped = true
            }
            var byte: UInt8 = 1
            _ = write(notify, &byte, 1)
            close(notify)
        }
    }

    deinit {
        // Only reached once the waiter has finished (it holds `self` until the engine is reaped).
        state.withLock { s in
            if !s.closed { for fd in [stdoutFd, stderrFd, exitedFd] { close(fd) } }
            if stdinFd >= 0, !s.stdinClosed { close(stdinFd) }
        }
    }

    /// Closes the engine's stdin (a `serve` engine then exits 0). Idempotent.
    func closeStdin() {
        state.withLock { s in
            guard stdinFd >= 0, !s.stdinClosed else { return }
            s.stdinClosed = true
            close(stdinFd)
        }
    }

    /// Whether the engine has exited and been reaped.
    var hasExited: Bool { state.withLock { $0.reaped } }

    /// Waits up to `timeout` seconds for the engine to exit (without reading the exit pipe, so
    /// it can be asked again); true once it has been reaped.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = EngineProcess.now() + timeout
        while !hasExited {
            let left = deadline - EngineProcess.now()
            if left <= 0 { return false }
            let closed = state.withLock { $0.closed }
            if closed { return hasExited }
            var fd = pollfd(fd: exitedFd, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, Int32(min(left * 1000, 1000).rounded(.up)))
        }
        return true
    }

    /// How the engine ended, once reaped: its exit status, or the signal that killed it
    /// (both nil when the status could not be had, or it has not been reaped).
    var exitStatus: (exitCode: Int32?, signal: Int32?) {
        state.withLock { s in
            guard s.reaped, let status = s.status else { return (nil, nil) }
            let signal = status & 0x7f
            return signal != 0 ? (nil, signal) : ((status >> 8) & 0xff, nil)
        }
    }

    /// Calls `line` for each stdout line (without its newline) until the engine has exited and
    /// its pipes are drained (see the type's comment), then returns how it ended. Call once.
    func readLines(_ line: (String) -> Void) -> Outcome {
        let first = state.withLock { s -> Bool in
            defer { s.reading = true }
            return !s.reading && !s.closed
        }
        precondition(first, "EngineProcess.readLines is called once")

        var fds = [
            pollfd(fd: stdoutFd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stderrFd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: exitedFd, events: Int16(POLLIN), revents: 0),
        ]
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var pending: [UInt8] = []  // the stdout line being read (no newline seen yet)
        var tail: [UInt8] = []
        var exited = false
        var cut = false  // stdout is read no further (a line over the cap, or `abort`)
        var drainUntil = 0.0

        /// Hands one complete line to `line`; false once stdout is to be read no further.
        func deliver(_ bytes: ArraySlice<UInt8>) -> Bool {
            line(String(decoding: bytes, as: UTF8.self))
            return !isAborted
        }
        func overLong() {
            abort(
                "the engine printed a stdout line longer than the 1 MiB limit (\(EngineProcess.maxLineBytes) bytes "
                    + "per event line); it was stopped")
        }
        /// Splits newly read stdout bytes into lines; only these bytes are searched for `\n`.
        /// False once stdout is to be read no further.
        func take(_ bytes: ArraySlice<UInt8>) -> Bool {
            var start = bytes.startIndex
            while let newline = bytes[start...].firstIndex(of: 0x0A) {
                let piece = bytes[start..<newline]
                start = newline + 1
                if pending.count + piece.count > EngineProcess.maxLineBytes { overLong(); return false }
                if pending.isEmpty {
                    if !deliver(piece) { return false }
                } else {
                    pending.append(contentsOf: piece)
                    let complete = pending
                    pending.removeAll(keepingCapacity: true)
                    if !deliver(complete[...]) { return false }
                }
            }
            let rest = bytes[start...]
            if pending.count + rest.count > EngineProcess.maxLineBytes { overLong(); return false }
            pending.append(contentsOf: rest)
            return true
        }
        func stopReading(_ i: Int) {
            close(fds[i].fd)
            fds[i].fd = -1
        }

        var afterExit = 0  // bytes read since the engine exited
        while true {
            if exited, (fds[0].fd < 0 && fds[1].fd < 0) || afterExit > EngineProcess.drainBytes { break }
            // Once exited: wait for more output only until the drain deadline, then take only
            // what is already there (poll returns at once), up to `drainBytes` in all.
            let timeout: Int32 = exited ? Int32(max(0, ((drainUntil - EngineProcess.now()) * 1000).rounded(.up))) : -1
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                if exited { break }
                continue
            }
            let wasExited = exited
            for i in 0..<fds.count where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = chunk.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if n < 0, errno == EINTR || errno == EAGAIN { continue }
                if i == 2 {
                    // The waiter's byte, or end-of-file after it (closed again at the end).
                    exited = true
                    drainUntil = EngineProcess.now() + EngineProcess.drainSeconds
                    fds[i].fd = -1
                    continue
                }
                if n <= 0 { stopReading(i); continue }
                if wasExited { afterExit += n }
                if i == 0 {
                    if !take(chunk[0..<n]) { cut = true; stopReading(i) }
                } else {
                    // Trimmed to `tailBytes` whenever it doubles: amortised linear in the bytes.
                    tail.append(contentsOf: chunk[0..<n])
                    let excess = tail.count - EngineProcess.tailBytes
                    if excess > EngineProcess.tailBytes { tail.removeFirst(excess) }
                }
            }
        }
        // A last line without its newline still counts (unless stdout was cut off).
        if !cut, !pending.isEmpty, !isAborted { _ = deliver(pending[...]) }

        // Not reaped yet: only when reading itself failed. Then the engine is stopped and waited for.
        if !state.withLock({ $0.reaped }) {
            let problem = String(cString: strerror(errno))
            abort("the worker could not read the engine's output (\(problem))")
            var byte: UInt8 = 0
            while read(exitedFd, &byte, 1) < 0, errno == EINTR {}
        }
        let ended = state.withLock { s -> (status: Int32?, reason: String?) in
            for i in 0..<2 where fds[i].fd >= 0 { close(fds[i].fd) }
            close(exitedFd)
            s.closed = true
            return (s.status, s.abortReason)
        }
        let text = String(decoding: tail.suffix(EngineProcess.tailBytes), as: UTF8.self)
        guard let status = ended.status else {
            return Outcome(exitCode: nil, signal: nil, stderrTail: text, abortReason: ended.reason)
        }
        let signal = status & 0x7f
        if signal != 0 {
            return Outcome(exitCode: nil, signal: signal, stderrTail: text, abortReason: ended.reason)
        }
        return Outcome(exitCode: (status >> 8) & 0xff, signal: nil, stderrTail: text, abortReason: ended.reason)
    }

    /// Stops the engine's whole process group: SIGTERM now, SIGKILL after `grace` seconds
    /// (`killGrace` by default) if the engine has not exited by then. From any thread.
    func terminate(grace: Double? = nil) {
        guard signalGroup(SIGTERM) else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + (grace ?? killGrace)) { [self] in
            _ = signalGroup(SIGKILL)
        }
    }

    /// Stops the engine because of what it did (the first reason is kept and reported in the
    /// outcome); its stdout is read no further. From any thread, including inside `readLines`'s
    /// callback.
    func abort(_ reason: String) {
        let first = state.withLock { s -> Bool in
            guard s.abortReason == nil else { return false }
            s.abortReason = reason
            return true
        }
        if first { terminate() }
    }

    var isAborted: Bool { state.withLock { $0.abortReason != nil } }

    /// Why the worker stopped the engine (`abort`), if it did.
    var abortReason: String? { state.withLock { $0.abortReason } }

    /// Signals the engine's group unless the engine has been reaped (its pid could then be
    /// someone else's). True if it was sent.
    private func signalGroup(_ signal: Int32) -> Bool {
        state.withLock { s in
            guard !s.reaped else { return false }
            killpg(pid, signal)
            // An engine that moved itself out of its group is still signalled itself.
            if getpgid(pid) != pid { kill(pid, signal) }
            return true
        }
    }

    /// Seconds on a monotonic clock.
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// A bare program name is looked up on PATH; a path is used as it is.
    static func resolve(_ executable: String) -> String {
        if executable.contains("/") { return executable }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return executable
    }
}
