/// RFC 4180 CSV: reading (quoted fields with commas, quotes and line breaks) and writing.
enum CSVText {
    /// Records with the 1-based line each starts on; blank lines are skipped.
    static func parse(_ text: String) -> [(line: Int, fields: [String])] {
        var records: [(Int, [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1, recordLine = 1
        var chars = Array(text.replacingOccurrences(of: "\r\n", with: "\n"))[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        var i = chars.startIndex
        func endRecord() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { records.append((recordLine, fields)) }
            fields = []
        }
        while i < chars.endIndex {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    if chars.index(after: i) < chars.endIndex && chars[chars.index(after: i)] == "\"" {
                        field.append("\"")
                        i = chars.index(after: i)
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                inQuotes = true
            } else if c == "," {
                fields.append(field)
                field = ""
            } else if c == "\n" {
                endRecord()
                line += 1
                recordLine = line
            } else {
                field.append(c)
            }
            i = chars.index(after: i)
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }

    /// A field quoted only when it must be.
    static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func line(_ values: [String]) -> String { values.map(field).joined(separator: ",") }
}
