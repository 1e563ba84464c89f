/// RFC 4180 CSV: reading (quoted fields with commas, quotes and line breaks) and writing.
enum CSVText {
    /// Records with the 1-based line each starts on; blank lines are skipped. CRLF reads as LF.
    /// Walks Unicode scalars, as `Escaping.csvField` writes them: a quote or comma followed by
    /// a combining mark is still a quote or comma.
    static func parse(_ text: String) -> [(line: Int, fields: [String])] {
        var records: [(Int, [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1, recordLine = 1
        var chars = Array(text.unicodeScalars)[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        var i = chars.startIndex
        func endRecord() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { records.append((recordLine, fields)) }
            fields = []
        }
        while i < chars.endIndex {
            let c = chars[i], next = i + 1 < chars.endIndex ? chars[i + 1] : nil
            if c == "\r" && next == "\n" {
                // The line feed that follows ends the line.
            } else if inQuotes {
                if c == "\"" {
                    if next == "\"" {
                        field += "\""
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
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
                field.unicodeScalars.append(c)
            }
            i += 1
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }

    /// One record, each field quoted only when it must be (`Escaping.csvField`).
    static func line(_ values: [String]) -> String { values.map(Escaping.csvField).joined(separator: ",") }
}
