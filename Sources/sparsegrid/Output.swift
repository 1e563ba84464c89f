import ArgumentParser
import Foundation
import SweepKit

/// The default state directory: database, artifacts, logs, reports.
let defaultStateDirectory = "./.sparsegrid"
let defaultControlEndpoint = "tcp://127.0.0.1:5557"
let defaultWorkerEndpoint = "tcp://127.0.0.1:5555"

/// A user-facing failure: printed as one paragraph on stderr, exit status 1. No stack trace.
struct UserError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

func printErr(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Runs a command body, turning known errors into a paragraph on stderr and exit status 1.
func userFacing<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

/// Loads a spec, printing its validation errors as they are (file:line: key: what to do).
/// `ranges`: which table of the sparsity engine's ranges to check against; its line is
/// printed after the spec's messages.
func loadPlan(_ path: String, maxTasks: Int = SpecLimits.defaultMaxTasks, ranges: SpecRanges) throws -> SweepPlan {
    defer { ranges.report() }
    do {
        return try SpecLoader.load(path: path, limits: SpecLimits(maxTasks: maxTasks), rangesFor: ranges.ranges(for:))
    } catch let error as SpecError {
        printErr(error.description)
        throw ExitCode(1)
    }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// Flushes stdout (all C streams: `stdout` itself is not concurrency-safe to name in Swift 6).
func flushOutput() { fflush(nil) }
