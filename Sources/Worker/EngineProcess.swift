import Foundation
import SweepKit
import Synchronization

/// One engine subprocess: `<engine> run --task FILE --workdir DIR`. stdout is read line by
/// line as JSON events on the calling thread; stderr is drained on its own thread into a
/// bounded tail. `terminate` (from any thread) sends SIGTERM, then SIGKILL after a grace period.
final class EngineProcess: Sendable {
    struct Outcome {
        var exitCode: Int32?
        var signal: Int32?
        var stderrTail: String
    }

    private let process: Process
    private let stdout: Pipe
    private let stderr: Pipe
    private let tail = TailBuffer()
    private let stderrDone = DispatchSemaphore(value: 0)
    static let tailBytes = 4096

    init(command: EngineCommand, arguments: [String], environment: [String: String], directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: EngineProcess.resolve(command.executable))
        process.arguments = command.arguments + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in command.environment { env[k] = v }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        self.process = process
        self.stdout = stdout
        self.stderr = stderr
        do {
            try process.run()
        } catch {
            throw WorkerError("cannot start engine \(command.executable): \(error.localizedDescription)")
        }
        let handle = stderr.fileHandleForReading
        let tail = self.tail
        let done = stderrDone
        Thread.detachNewThread {
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                tail.bytes.withLock { buffer in
                    buffer.append(contentsOf: data)
                    if buffer.count > EngineProcess.tailBytes * 2 { buffer.removeFirst(buffer.count - EngineProcess.tailBytes) }
                }
            }
            done.signal()
        }
    }

    var pid: Int32 { process.processIdentifier }

    /// Calls `line` for each stdout line until the engine closes stdout, then waits for exit.
    func readLines(_ line: (String) -> Void) -> Outcome {
        let handle = stdout.fileHandleForReading
        var buffer: [UInt8] = []
        while true {
            let data = handle.availableData
            if data.isEmpty { break }
            buffer.append(contentsOf: data)
            while let newline = buffer.firstIndex(of: 0x0A) {
                line(String(decoding: buffer[..<newline], as: UTF8.self))
                buffer.removeSubrange(...newline)
            }
        }
        if !buffer.isEmpty { line(String(decoding: buffer, as: UTF8.self)) }
        process.waitUntilExit()
        _ = stderrDone.wait(timeout: .now() + 5)
        let text = tail.bytes.withLock { String(decoding: $0.suffix(EngineProcess.tailBytes), as: UTF8.self) }
        if process.terminationReason == .uncaughtSignal {
            return Outcome(exitCode: nil, signal: process.terminationStatus, stderrTail: text)
        }
        return Outcome(exitCode: process.terminationStatus, signal: nil, stderrTail: text)
    }

    func terminate(grace: Double = 5) {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        kill(pid, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [process] in
            if process.isRunning { kill(pid, SIGKILL) }
        }
    }

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

/// The last bytes an engine wrote to stderr.
final class TailBuffer: Sendable {
    let bytes = Mutex<[UInt8]>([])
}
