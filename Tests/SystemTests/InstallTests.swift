import Foundation
import Testing

/// `make install` lays out the dist bundle's tree under PREFIX (scripts/dist.sh): the binary, its
/// private libraries, the man page (which formats cleanly), the engine's wheel and deploy/.
/// The debug binary stands in for the release one (INSTALL_BIN), so no release build is made;
/// the Swift runtime's libraries it needs are left out of the tree. DistBundleTests installs the
/// release binary and compares the tree with the bundle's.
@Suite("make install")
struct InstallTests {
    private func run(_ executable: String, _ arguments: [String], in directory: String? = nil) async throws -> (
        status: Int32, output: String
    ) {
        let out = try await Harness.exec(
            "/usr/bin/env", [executable] + arguments, timeout: 300, directory: directory, mergeStderr: true)
        return (out.status, out.stdout)
    }

    @Test("the binary, libzmq, the man page, the wheel and deploy/ go under PREFIX; groff formats the page")
    func install() async throws {
        let prefix = Harness.tempDir("install") + "/usr local"  // a space: the paths are quoted
        // -o .venv/.installed: the wheel is built with the venv the suites run with; make is not
        // to reinstall its requirements from a test.
        let made = try await run(
            "make", ["-s", "-o", ".venv/.installed", "install", "PREFIX=\(prefix)", "INSTALL_BIN=\(Harness.binary)"],
            in: Harness.repoRoot)
        #expect(made.status == 0, "\(made.output)")
        let binary = "\(prefix)/bin/sparsegrid"
        let page = "\(prefix)/share/man/man1/sparsegrid.1"
        #expect(FileManager.default.isExecutableFile(atPath: binary))
        #expect(FileManager.default.fileExists(atPath: page))
        let version = try EnginePackageTests.cliVersion()
        #expect(
            FileManager.default.fileExists(
                atPath: "\(prefix)/share/sparsegrid/wheels/sparsegrid_engine-\(version)-py3-none-any.whl"))
        #expect(FileManager.default.fileExists(atPath: "\(prefix)/share/sparsegrid/deploy/systemd"))
        let libraries = try FileManager.default.contentsOfDirectory(atPath: "\(prefix)/lib/sparsegrid")
        #expect(libraries.contains("libzmq.so.5"), "\(libraries)")
        #expect(
            !libraries.contains { $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") || $0.hasPrefix("libc.") },
            "\(libraries)")
        let help = try await run(binary, ["help"])
        #expect(help.status == 0)
        #expect(help.output.contains("SUBCOMMANDS"))
        // Every subcommand the binary lists in its help is named on a tag line (after `.TP`) of
        // the page's COMMANDS section.
        let commands = Self.subcommands(help: help.output)
        #expect(commands.count >= 12 && commands.contains("dashboard"), "\(commands)")
        let tags = Self.commandTags(page: Harness.read(page))
        for command in commands {
            let named = tags.contains { tag in
                tag.split { !("a"..."z").contains($0) && $0 != "-" }.contains(Substring(command))
            }
            #expect(named, "\(command) is not on a tag line of the man page's COMMANDS section")
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/groff") {
            // -ww: every warning; -z: no output. A roff mistake shows as a warning on stderr.
            let formatted = try await run("groff", ["-man", "-Tutf8", "-ww", "-z", page])
            #expect(formatted.status == 0)
            #expect(formatted.output.isEmpty, "groff warns: \(formatted.output)")
        }
        let removed = try await run("make", ["-s", "uninstall", "PREFIX=\(prefix)"], in: Harness.repoRoot)
        #expect(removed.status == 0)
        let left = FileManager.default.enumerator(atPath: prefix)?.allObjects as? [String] ?? []
        #expect(left.allSatisfy { !$0.contains("sparsegrid") }, "left after uninstall: \(left)")
    }

    /// The names in the SUBCOMMANDS section of `sparsegrid help`: lines of two spaces, a name,
    /// then its abstract.
    static func subcommands(help: String) -> [String] {
        guard let section = help.range(of: "SUBCOMMANDS:") else { return [] }
        return help[section.upperBound...].split(separator: "\n").compactMap { line in
            line.firstMatch(of: #/^  ([a-z][a-z-]*) {2,}\S/#).map { String($0.1) }
        }
    }

    /// The tag lines of the man page's COMMANDS section: each line right after a `.TP`.
    static func commandTags(page: String) -> [String] {
        let lines = page.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(of: ".SH COMMANDS") else { return [] }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix(".SH ") } ?? lines.endIndex
        return (start + 1..<end).compactMap { i in lines[i - 1] == ".TP" ? lines[i] : nil }
    }
}
