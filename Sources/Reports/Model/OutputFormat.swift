/// The forms a listing or a report can take. The raw value is what the CLI's `--format` accepts.
public enum OutputFormat: String, CaseIterable, Sendable {
    case table, markdown, csv, json, latex, html

    /// The file extension `writeReport` uses for this format.
    public var fileExtension: String {
        switch self {
        case .table: "txt"
        case .markdown: "md"
        case .csv: "csv"
        case .json: "json"
        case .latex: "tex"
        case .html: "html"
        }
    }
}
