import Foundation
import Reports
import SweepKit
import Testing

@Suite("CSV output loads into a data frame without cleanup")
struct CSVOutputTests {
    @Test("the report CSV has one header and the same number of fields on every line; numeric columns are numbers")
    func reportCSV() throws {
        let reference = try ReferenceTable.load(csvPath: Repository.referenceCSV)
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: Fixture.rows, specs: Reports.defaultSpecs, format: .csv,
            reference: reference)
        let records = Read.csv(text)
        let header = try #require(records.first)
        #expect(header.prefix(8) == ["table", "model", "method", "metric", "unit", "mean", "std", "n"])
        #expect(records.count > 100)
        for (i, record) in records.enumerated() {
            #expect(
                record.count == header.count, "line \(i + 1) has \(record.count) fields, the header \(header.count)")
        }
        for name in ["mean", "std", "n", "failed", "missing", "running", "claimed", "delta"] {
            let column = try #require(header.firstIndex(of: name))
            for record in records.dropFirst() where !record[column].isEmpty {
                #expect(Double(record[column]) != nil, "\(name) = '\(record[column])' is not a plain number")
            }
        }
        #expect(!text.contains("\r"))
    }

    @Test("the results CSV has one column per metric with plain numbers and nulls left empty")
    func resultsCSV() throws {
        let text = try Reports.renderResults(Fixture.rows, format: .csv)
        let records = Read.csv(text)
        let header = try #require(records.first)
        #expect(records.count == Fixture.rows.count + 1)
        for record in records { #expect(record.count == header.count) }
        let accuracy = try #require(header.firstIndex(of: "accuracy")),
            sparse = try #require(header.firstIndex(of: "latency_sparse_ms"))
        let first = records[1]
        #expect(Double(first[accuracy]) == 93.3)
        #expect(first[sparse] == "")
        let error = try #require(header.firstIndex(of: "error"))
        #expect(records.contains { $0[error].hasPrefix("CUDA out of memory") })
    }
}
