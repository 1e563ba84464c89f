import Foundation
import Reports
import SweepKit
import Testing

@Suite("The results listing shows one line per task")
struct ResultsListingTests {
    @Test("JSON gives every task with its metrics (nulls kept), units, params, attempts, error and artifacts")
    func json() throws {
        let text = try Reports.renderResults(Fixture.rows, format: .json)
        let tasks = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        #expect(tasks.count == Fixture.rows.count)
        for task in tasks {
            for key in [
                "sweep", "stage", "model", "method", "seed", "state", "metrics", "units", "params", "task_id",
                "attempts", "error", "artifacts",
            ] {
                #expect(task.keys.contains(key), "a task lacks \(key)")
            }
        }
        let dense = try #require(tasks.first { $0["task_id"] as? String == "train-resnet18-dense-0" })
        let metrics = try #require(dense["metrics"] as? [String: Any])
        #expect(metrics["latency_sparse_ms"] is NSNull)
        #expect(metrics["accuracy"] as? Double == 93.3)
        #expect(dense["method"] as? String == "dense")
        let artifact = try #require((dense["artifacts"] as? [[String: Any]])?.first)
        #expect(Set(artifact.keys) == ["name", "sha256", "bytes", "path"])
        #expect(artifact["bytes"] as? Int == 44_780_000)
        let failed = try #require(tasks.first { $0["state"] as? String == "failed" })
        #expect((failed["error"] as? String)?.hasPrefix("CUDA out of memory") == true)
        #expect(failed["attempts"] as? Int == 3)
    }

    @Test("sorting by a metric puts the largest first with '-', and tasks without it last")
    func sortByMetric() throws {
        let text = try Reports.renderResults(Fixture.rows, format: .json, sortBy: "-accuracy")
        let tasks = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
        let values = tasks.map { ($0["metrics"] as! [String: Any])["accuracy"] as? Double }
        let present = values.compactMap { $0 }
        #expect(present == present.sorted(by: >))
        #expect(values.firstIndex(where: { $0 == nil })! == present.count)
        #expect(values.suffix(values.count - present.count).allSatisfy { $0 == nil })
    }

    @Test("sorting by a column orders by it")
    func sortByColumn() throws {
        let text = try Reports.renderResults(Fixture.rows, format: .csv, sortBy: "state")
        let states = Read.csv(text).dropFirst().map { $0[5] }
        #expect(states == states.sorted())
    }

    @Test("an unknown sort key is an error that lists the valid ones")
    func unknownKey() {
        #expect {
            try Reports.renderResults(Fixture.rows, format: .table, sortBy: "speed")
        } throws: { error in
            let e = error as? ReportsError
            return e?.code == .unknownSortKey && e!.description.contains("'speed'")
                && e!.description.contains("accuracy")
        }
    }

    @Test("LaTeX and HTML are refused with a sentence that says what to use")
    func unsupported() {
        for format in [OutputFormat.latex, .html] {
            #expect {
                try Reports.renderResults(Fixture.rows, format: format)
            } throws: { error in
                let e = error as? ReportsError
                return e?.code == .unsupportedFormat && e!.description.contains("sparsegrid report")
            }
        }
    }

    @Test("the terminal listing fits 100 columns and puts each error under its task")
    func terminal() throws {
        let text = try Reports.renderResults(Fixture.rows, format: .table)
        let lines = text.components(separatedBy: "\n")
        #expect(lines.allSatisfy { $0.count <= 100 })
        let failed = try #require(lines.firstIndex { $0.contains("failed") && $0.contains("nm_2_4") })
        #expect(lines[failed + 1].trimmingCharacters(in: .whitespaces).hasPrefix("error: CUDA out of memory"))
        #expect(lines.contains("sweep: demo"))
    }
}
