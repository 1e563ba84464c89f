import Foundation
import SweepKit
import Worker

/// The table of what the sparsity engine accepts that `validate`, `launch` and `run` check a
/// spec against: the live engine's own `describe()["ranges"]` when its code is found (from the
/// describe cache the workers share, so only the first check after the engine changes starts
/// Python), else the table built into this binary (`EngineRanges.builtin`). Says on stderr, in
/// one line, which it used.
final class SpecRanges {
    let builtinOnly: Bool
    let engines: [String]
    /// What `ranges(for:)` chose, for `report()`.
    private(set) var line: String?

    /// `builtinOnly`: --builtin-ranges. `engines`: `run`'s --engine NAME=COMMAND, one of which
    /// may replace the sparsity engine.
    init(builtinOnly: Bool, engines: [String] = []) {
        self.builtinOnly = builtinOnly
        self.engines = engines
    }

    /// For `SpecLoader`, which asks only for a spec of the sparsity engine.
    func ranges(for engine: String) -> EngineRanges {
        let (ranges, line) = Self.resolve(engine: engine, builtinOnly: builtinOnly, engines: engines)
        self.line = line
        return ranges
    }

    /// Prints the line saying which table was used (after the spec's own messages, so that
    /// these start the output), if one was asked for.
    func report() {
        if let line { printErr(line) }
    }

    /// Where `describe` answers are cached: the workers' default, or $SPARSEGRID_CACHE/describe.
    static var cacheDirectory: String {
        if let dir = ProcessInfo.processInfo.environment["SPARSEGRID_CACHE"], !dir.isEmpty { return "\(dir)/describe" }
        return "\(NSHomeDirectory())/.cache/sparsegrid/describe"
    }

    static func resolve(engine: String, builtinOnly: Bool, engines: [String]) -> (EngineRanges, String) {
        let builtin = "ranges: this build's table of the \(engine) engine"
        if builtinOnly { return (.builtin, "\(builtin) (--builtin-ranges)") }
        let command: EngineCommand
        let source: String
        if let custom = engines.compactMap({ try? EngineCommand.parse($0) }).last(where: { $0.0 == engine }) {
            command = custom.1
            source = "`" + ([custom.1.executable] + custom.1.arguments).joined(separator: " ") + "`"
        } else {
            let choice: EngineLocator.Choice?
            do {
                choice = try EngineLocator.locate()
            } catch {
                return (.builtin, "\(builtin) (\(error))")
            }
            guard let choice else {
                return (
                    .builtin,
                    "\(builtin) (\(EngineLocator.notFound): install it (`sparsegrid-engine` on the PATH) or set "
                        + "SPARSEGRID_PYTHON or SPARSEGRID_ENGINE_DIR to check against the engine itself)"
                )
            }
            command = choice.command
            source = "the engine \(choice.summary)"
        }
        let outcome = EngineDescription.describe(
            name: engine, command: command, cacheDirectory: cacheDirectory,
            willRun: { printErr("asking \(source) for its ranges (its describe is cached once it answers)…") })
        guard let described = outcome.described else {
            return (.builtin, "\(builtin) (\(source) could not be described: \(Self.oneLine(outcome.problem)))")
        }
        do {
            let ranges = try EngineRanges(describe: described)
            return (ranges, "ranges: \(source)'s own describe\(outcome.fromCache ? " (cached)" : "")")
        } catch {
            return (.builtin, "\(builtin) (\(source): \(error))")
        }
    }

    /// The worker's log line about a failed describe, as part of one line: its last line of
    /// output kept, at most 300 characters.
    static func oneLine(_ problem: String?) -> String {
        var text = problem ?? "no answer"
        if let cut = text.range(of: " is not offered: ") { text = String(text[cut.upperBound...]) }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let head = lines.first ?? ""
        let last = lines.count > 1 ? lines.last(where: { !$0.isEmpty }) ?? "" : ""
        let joined = last.isEmpty ? head : "\(head) … \(last)"
        return joined.count > 300 ? String(joined.prefix(300)) + "…" : joined
    }
}
