/// Everything wrong with a sweep spec, found in one pass so a user fixes all of it at once.
///
/// Each issue names where (file, line, column, key path) and says what to do, e.g.
/// `sweeps/x.yaml:12:3: `grid.modle`: `modle` is not a key of `grid`; did you mean `model`? …`
public struct SpecError: Error, CustomStringConvertible, Sendable, Equatable {
    public struct Issue: Sendable, Hashable, CustomStringConvertible {
        public var file: String
        /// 1-based; nil when the problem has no place in the text (e.g. the file is missing).
        public var line: Int?
        public var column: Int?
        /// Where in the spec, e.g. `stages.finetune.grid.method[1]`; empty for the whole file.
        public var keyPath: String
        /// A full sentence: what is wrong and what to do about it.
        public var message: String

        public init(file: String, line: Int?, column: Int?, keyPath: String, message: String) {
            self.file = file
            self.line = line
            self.column = column
            self.keyPath = keyPath
            self.message = message
        }

        /// One line: `file:line:column: `key.path`: message`, leaving out what is unknown.
        public var description: String {
            var out = ""
            if let line {
                out = "\(file):\(line)"
                if let column { out += ":\(column)" }
                out += ": "
            } else if !keyPath.isEmpty {
                out = "\(file): "
            }
            // Without a line or a key path the message stands alone (it names the file itself).
            if !keyPath.isEmpty { out += "`\(keyPath)`: " }
            return out + message
        }
    }

    /// All problems found, in the order they appear in the file.
    public var issues: [Issue]

    public init(issues: [Issue]) {
        self.issues = issues
    }

    /// One line per issue.
    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}
