import SweepKit

/// A key a pivot can group by: `model`, `method` (the train stage's tasks are "dense"),
/// `stage`, `seed`, `sweep`, `state`, or any task parameter by name.
struct Dimension: Sendable, Equatable {
    let name: String

    func value(of row: ResultRow) -> String {
        switch name {
        case "method": return row.method
        case "stage": return row.stage
        case "sweep": return row.sweep
        case "state": return row.state.rawValue
        default: return row.params[name]?.displayText ?? "(none)"
        }
    }

    /// Study order first (the order of the published tables), then numeric or alphabetical.
    func ordered(_ values: Set<String>) -> [String] {
        let preferred = Dimension.preferredOrder[name] ?? []
        return values.sorted { a, b in
            let ia = preferred.firstIndex(of: a) ?? Int.max, ib = preferred.firstIndex(of: b) ?? Int.max
            if ia != ib { return ia < ib }
            if let x = Double(a), let y = Double(b), x != y { return x < y }
            return a < b
        }
    }

    static let preferredOrder: [String: [String]] = [
        "model": ["resnet18", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0"],
        "method": ["dense", "nm_2_4", "block_4x4"],
        "stage": ["train", "finetune"],
    ]
}
