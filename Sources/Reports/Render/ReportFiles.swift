import Foundation

/// The one place Reports writes files.
enum ReportFiles {
    static func write(_ files: [(name: String, content: String)], into directory: String) throws -> [String] {
        let root = URL(fileURLWithPath: directory, isDirectory: true)
        var written: [String] = []
        for file in files {
            let url = root.appendingPathComponent(file.name)
            do {
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(file.content.utf8).write(to: url, options: .atomic)
            } catch {
                throw ReportsError(
                    .cannotWrite,
                    "Could not write the report file \(url.path): \(error.localizedDescription). Check that \(directory) is a writable directory, or choose another with --out."
                )
            }
            written.append(url.path)
        }
        return written
    }
}
