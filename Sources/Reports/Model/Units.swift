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
                !labels.contains(label)
            {
                labels.append(label)
            }
        }
        labels.sort()
        let shortUnits = labels.compactMap(MetricUnits.shortUnit(of:))
        unit = MetricUnits.mostCommon(shortUnits) ?? info.unit
        descriptions = labels.isEmpty ? [info.unit.isEmpty ? info.meaning : "\(info.unit), \(info.meaning)"] : labels
    }

    /// "ms, median of 200 runs" → "ms"; "ms per forward call, …" → "ms"; "G-MAC per image (…)"
    /// → "G-MAC"; a label that starts with no unit → nil (the catalog's unit is used).
    static func shortUnit(of label: String) -> String? {
        let stop = label.firstIndex(where: { ",;:(".contains($0) }) ?? label.endIndex
        let head = label[..<stop].trimmingCharacters(in: .whitespaces)
        if !head.isEmpty, head.count <= 8, !head.contains(" ") { return head }
        let firstWord = head.split(separator: " ").first.map(String.init) ?? ""
        return unitWords.contains(firstWord) ? firstWord : nil
    }

    /// Units a long label may start with ("ms per forward call, …").
    static let unitWords: Set<String> = [
        "%", "ms", "s", "us", "µs", "MiB", "GiB", "KiB", "MB", "GB", "GMAC", "G-MAC",
        "GFLOP", "GFLOPs", "G-FLOP", "fraction", "img/s", "M",
    ]

    private static func mostCommon(_ values: [String]) -> String? {
        var counts: [String: Int] = [:]
        for v in values { counts[v, default: 0] += 1 }
        return counts.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }?.key
    }
}
