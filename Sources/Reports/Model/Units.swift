import Foundation
import SweepKit

/// The unit and measurement method of a metric as a set of results states it: the engine's
/// `units` labels where present (all distinct ones, so disagreeing labels stay visible),
/// otherwise the built-in catalog.
struct MetricUnits: Sendable, Equatable {
    var metric: String
    /// Short unit for headers, e.g. "ms".
    var unit: String
    /// One line per distinct label, e.g. "ms, median of 200 runs, batch 1, cpu".
    var descriptions: [String]

    init(metric: String, rows: [ResultRow]) {
        self.metric = metric
        let info = MetricCatalog.info(metric)
        var labels: [String] = []
        for row in rows {
            if let label = row.units[metric]?.trimmingCharacters(in: .whitespaces), !label.isEmpty,
               !labels.contains(label) {
                labels.append(label)
            }
        }
        labels.sort()
        let shortUnits = labels.compactMap(MetricUnits.shortUnit(of:))
        unit = MetricUnits.mostCommon(shortUnits) ?? info.unit
        descriptions = labels.isEmpty ? [info.unit.isEmpty ? info.meaning : "\(info.unit), \(info.meaning)"] : labels
    }

    /// "ms, median of 200 runs" → "ms"; a label that does not start with a short unit → nil.
    static func shortUnit(of label: String) -> String? {
        let stop = label.firstIndex(where: { ",;(".contains($0) }) ?? label.endIndex
        let head = label[..<stop].trimmingCharacters(in: .whitespaces)
        guard !head.isEmpty, head.count <= 10, !head.contains("  ") else { return nil }
        return head
    }

    private static func mostCommon(_ values: [String]) -> String? {
        var counts: [String: Int] = [:]
        for v in values { counts[v, default: 0] += 1 }
        return counts.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }?.key
    }
}
