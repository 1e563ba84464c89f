/// One table of the spec's `report:` section.
public struct ReportSpec: Codable, Sendable, Hashable {
    public var title: String
    public var rows: String
    public var columns: String
    public var values: [String]

    public init(title: String, rows: String, columns: String, values: [String]) {
        self.title = title
        self.rows = rows
        self.columns = columns
        self.values = values
    }
}
