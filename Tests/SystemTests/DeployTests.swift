import Foundation
import Testing

/// The files in deploy/ cannot run here (no Slurm, no systemd as init), so this checks what
/// can be: the batch script parses as bash, and every `sparsegrid` flag they use exists in
/// the CLI's help, so they keep up with the CLI.
@Suite("Deployment files stay in step with the CLI")
struct DeployTests {
    static let files = [
        "deploy/slurm/workers.sbatch", "deploy/systemd/sparsegrid-coordinator.service",
        "deploy/systemd/sparsegrid-worker@.service",
    ]

    /// (subcommand, flags) for each `sparsegrid` / `"$0"` invocation in a file.
    static func invocations(in text: String) -> [(String, [String])] {
        let joined = text.replacingOccurrences(of: "\\\n", with: " ")
        var out: [(String, [String])] = []
        for line in joined.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let i = words.firstIndex(where: { $0 == "coordinator" || $0 == "worker" }), i > 0,
                words[i - 1].hasSuffix("sparsegrid") || words[i - 1] == "\"$0\""
            else { continue }
            // A flag ends where the characters of a flag name do (e.g. "--insecure`)." in prose).
            let flags = words[(i + 1)...].filter { $0.hasPrefix("--") }
                .map { String($0.prefix { $0 == "-" || $0.isLetter || $0.isNumber }) }
            out.append((words[i], flags))
        }
        return out
    }

    @Test("every sparsegrid flag in deploy/ exists", arguments: files)
    func flagsExist(file: String) async throws {
        let text = try String(contentsOfFile: "\(Harness.repoRoot)/\(file)", encoding: .utf8)
        let calls = Self.invocations(in: text)
        #expect(!calls.isEmpty, "\(file) should start sparsegrid")
        for (command, flags) in calls {
            let help = try await Harness.run([command, "--help"])
            for flag in flags {
                #expect(
                    help.stdout.contains(flag + " ") || help.stdout.contains(flag + "\n")
                        || help.stdout.contains(flag + ","), "`sparsegrid \(command)` has no \(flag) (\(file))")
            }
        }
    }

    @Test("the Slurm batch script is valid bash")
    func bashSyntax() async throws {
        let out = try await Harness.exec("/bin/bash", ["-n", "\(Harness.repoRoot)/deploy/slurm/workers.sbatch"])
        #expect(out.status == 0, "\(out.stderr)")
    }
}
