import Foundation
import Testing

private let venvPython = "\(Harness.repoRoot)/.venv/bin/python"

/// The whole product on sweeps/smoke.yaml: real coordinator, two real worker processes, the
/// real PyTorch engine on tiny synthetic CIFAR-format data. Needs the venv `make test`
/// builds (torch); without it this suite is skipped and says so.
@Suite(
    "The smoke sweep with the PyTorch engine", .serialized,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: venvPython),
        "needs \(venvPython) with torch: run `make venv` (make test does)"))
struct EngineSystemTests {
    @Test("sweeps/smoke.yaml runs end to end and every task has its metrics")
    func smoke() async throws {
        let dir = Harness.tempDir("smoke")
        let state = "\(dir)/state"
        let env = ["SPARSEGRID_PYTHON": venvPython, "SPARSEGRID_CACHE": "\(dir)/cache"]
        let out = try await Harness.run(
            [
                "run", "\(Harness.repoRoot)/sweeps/smoke.yaml", "--workers", "2", "--state", state,
                "--plain",
            ], timeout: 900, environment: env, directory: Harness.repoRoot)
        #expect(out.status == 0, "run failed:\n\(out.stdout)\n\(out.stderr.suffix(3000))")
        let json = try await Harness.run(["results", "--state", state, "--sweep", "smoke", "--format", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count >= 6)
        for row in rows {
            #expect(row["state"] as? String == "succeeded", "\(row)")
            let metrics = try #require(row["metrics"] as? [String: Any])
            for name in [
                "accuracy", "latency_ms", "gmacs", "gmacs_effective", "weight_mib", "weight_compressed_mib",
                "peak_mib", "sparsity",
            ] {
                #expect(metrics[name] is NSNumber, "\(row["model"] ?? "?") \(row["method"] ?? "?") lacks \(name)")
            }
            #expect(metrics.keys.contains("latency_sparse_ms"), "latency_sparse_ms must be present (null on CPU)")
            let artifacts = row["artifacts"] as? [[String: Any]] ?? []
            #expect(!artifacts.isEmpty, "every task hands back its checkpoint")
            for artifact in artifacts {
                #expect(FileManager.default.fileExists(atPath: artifact["path"] as? String ?? "/nonexistent"))
            }
        }
        // 2:4 tasks really are half sparse in their sparsified layers: overall sparsity > 0.
        let nm = rows.filter { $0["method"] as? String == "nm_2_4" }
        #expect(!nm.isEmpty)
        for row in nm {
            let sparsity = (row["metrics"] as? [String: Any])?["sparsity"] as? Double ?? 0
            #expect(sparsity > 0.3, "2:4 sparsity \(sparsity)")
        }
        #expect(FileManager.default.fileExists(atPath: "\(state)/reports/smoke/report.html"))
    }
}
