import Foundation
import Testing

/// Golden files: expected outputs kept under Tests/ReportsTests/Golden and copied into the
/// test bundle. Run with SPARSEGRID_UPDATE_GOLDEN=1 to rewrite them in the source tree (then
/// review the diff and commit it), so that a change of output is always a deliberate one.
enum Golden {
    static var updating: Bool { ProcessInfo.processInfo.environment["SPARSEGRID_UPDATE_GOLDEN"] == "1" }

    static func check(_ actual: String, against name: String, sourceLocation: SourceLocation = #_sourceLocation) throws
    {
        if updating {
            let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
                "Golden/\(name)")
            try Data(actual.utf8).write(to: url, options: .atomic)
            return
        }
        guard let directory = Bundle.module.url(forResource: "Golden", withExtension: nil) else {
            Issue.record(
                "The Golden directory is not in the test bundle; check Package.swift's resources.",
                sourceLocation: sourceLocation)
            return
        }
        let url = directory.appendingPathComponent(name)
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record(
                "No golden file \(name); run the tests with SPARSEGRID_UPDATE_GOLDEN=1 to create it, then review and commit it.",
                sourceLocation: sourceLocation)
            return
        }
        if actual != expected {
            Issue.record(
                "Output differs from golden file \(name) at line \(firstDifference(actual, expected)); if the change is intended, rerun with SPARSEGRID_UPDATE_GOLDEN=1 and review the diff.\n--- actual ---\n\(actual)",
                sourceLocation: sourceLocation)
        }
    }

    private static func firstDifference(_ a: String, _ b: String) -> Int {
        let x = a.components(separatedBy: "\n"), y = b.components(separatedBy: "\n")
        for i in 0..<max(x.count, y.count) where i >= x.count || i >= y.count || x[i] != y[i] { return i + 1 }
        return 0
    }
}

/// Files of the repository the tests read (the shipped reference table).
enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var referenceCSV: String { root.appendingPathComponent("sweeps/reference/tatarnikova-raskopina.csv").path }
}
