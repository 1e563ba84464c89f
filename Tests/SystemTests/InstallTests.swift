import Foundation
import Testing

/// `make install` puts the binary and the man page under PREFIX; the page formats cleanly.
/// The debug binary stands in for the release one (INSTALL_BIN), so no release build is made.
@Suite("make install")
struct InstallTests {
    private func run(_ executable: String, _ arguments: [String], in directory: String? = nil) async throws -> (
        status: Int32, output: String
    ) {
        let out = try await Harness.exec(
            "/usr/bin/env", [executable] + arguments, timeout: 300, directory: directory, mergeStderr: true)
        return (out.status, out.stdout)
    }

    @Test("the binary goes to PREFIX/bin, the man page to PREFIX/share/man/man1, and groff formats it")
    func install() async throws {
        let prefix = Harness.tempDir("install") + "/usr local"  // a space: the paths are quoted
        let made = try await run(
            "make", ["-s", "install", "PREFIX=\(prefix)", "INSTALL_BIN=\(Harness.binary)"], in: Harness.repoRoot)
        #expect(made.status == 0, "\(made.output)")
        let binary = "\(prefix)/bin/sparsegrid"
        let page = "\(prefix)/share/man/man1/sparsegrid.1"
        #expect(FileManager.default.isExecutableFile(atPath: binary))
        #expect(FileManager.default.fileExists(atPath: page))
        let help = try await run(binary, ["help"])
        #expect(help.status == 0)
        #expect(help.output.contains("SUBCOMMANDS"))
        // Every subcommand the binary has is on the page.
        for command in ["run", "validate", "coordinator", "launch", "worker", "status", "results", "report", "keygen"] {
            #expect(Harness.read(page).contains(".B \(command)") || Harness.read(page).contains(".BI \"\(command) "))
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            // -ww: every warning; -z: no output. A roff mistake shows as a warning on stderr.
            let formatted = try await run("groff", ["-man", "-Tutf8", "-ww", "-z", page])
            #expect(formatted.status == 0)
            #expect(formatted.output.isEmpty, "groff warns: \(formatted.output)")
        }
        let removed = try await run("make", ["-s", "uninstall", "PREFIX=\(prefix)"], in: Harness.repoRoot)
        #expect(removed.status == 0)
        #expect(!FileManager.default.fileExists(atPath: binary))
    }
}
