import Foundation
import Reports
import SweepKit

/// Reading outputs back the way a user's tools would.
enum Read {
    /// The report as JSON, for checking numbers rather than their spelling.
    static func reportJSON(
        _ rows: [ResultRow], specs: [ReportSpec] = Reports.defaultSpecs,
        reference: ReferenceTable? = nil
    ) throws -> [String: Any] {
        let text = Reports.renderReport(
            sweep: Fixture.sweep, rows: rows, specs: specs, format: .json, reference: reference)
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    }

    static func tables(_ json: [String: Any]) -> [[String: Any]] { json["tables"] as! [[String: Any]] }

    /// The cell record of a table (matched by title prefix) for row × column × metric.
    static func cell(_ json: [String: Any], table: String, row: String, column: String, metric: String) -> [String:
        Any]?
    {
        for t in tables(json) where (t["title"] as! String).hasPrefix(table) {
            for c in t["cells"] as! [[String: Any]]
            where c["row"] as? String == row && c["column"] as? String == column && c["metric"] as? String == metric {
                return c
            }
        }
        return nil
    }

    /// RFC 4180 fields per record, written here independently of the module's own reader.
    static func csv(_ text: String) -> [[String]] {
        var records: [[String]] = [], fields: [String] = [], field = ""
        var quoted = false, afterQuote = false
        for ch in text.unicodeScalars {
            if quoted {
                if ch == "\"" { quoted = false; afterQuote = true } else { field.unicodeScalars.append(ch) }
                continue
            }
            switch ch {
            case "\"":
                if afterQuote { field += "\"" }
                quoted = true
                afterQuote = false
            case ",": fields.append(field); field = ""; afterQuote = false
            case "\n": fields.append(field); records.append(fields); fields = []; field = ""; afterQuote = false
            default: field.unicodeScalars.append(ch); afterQuote = false
            }
        }
        if !field.isEmpty || !fields.isEmpty { fields.append(field); records.append(fields) }
        return records
    }
}
