import SweepKit

/// The conditions a number was obtained under — dataset, device class, training epochs of the
/// stage — for claims (from the reference table's optional columns) and for measured tasks
/// (from what the engine recorded). A claim is compared with a measurement under other
/// conditions only with a warning that names each difference.
struct Conditions: Hashable, Sendable {
    /// "cifar10", "synthetic", "cifar10 (unverified)", …; nil when not stated / not recorded.
    var dataset: String?
    /// "gpu", "cpu", …; nil when not stated / not recorded.
    var device: String?
    /// Training epochs of the stage that produced the number; nil when not stated / recorded.
    var epochs: Int?

    /// What the engine recorded for a task.
    static func measured(_ row: ResultRow) -> Conditions {
        let details = row.details.objectValue ?? [:]
        var dataset: String?
        if let info = details["dataset"]?.objectValue, let name = info["dataset"]?.stringValue {
            dataset = normalDataset(name)
            if dataset == "cifar10" && info["verified"]?.boolValue != true { dataset = "cifar10 (unverified)" }
        }
        let device = details["device"]?.stringValue.map(normalDevice)
        let epochs = details["stage_params"]?["epochs"]?.intValue ?? row.params["epochs"]?.intValue
        return Conditions(dataset: dataset, device: device, epochs: epochs)
    }

    /// "CIFAR-10", "cifar_10" → "cifar10"; other names lowercased.
    static func normalDataset(_ name: String) -> String {
        let lower = name.lowercased().trimmingCharacters(in: .whitespaces)
        let squeezed = lower.filter { $0 != "-" && $0 != "_" && $0 != " " }
        return squeezed == "cifar10" ? "cifar10" : lower
    }

    /// "cuda:0", "cuda", "mps", "GPU" → "gpu"; "cpu" → "cpu"; others lowercased as given.
    static func normalDevice(_ device: String) -> String {
        let type = device.lowercased().split(separator: ":").first.map(String.init) ?? ""
        switch type {
        case "cuda", "gpu", "mps", "xpu", "rocm": return "gpu"
        default: return type
        }
    }

    static func datasetName(_ d: String?) -> String {
        switch d {
        case nil: return "data not recorded"
        case "cifar10": return "CIFAR-10"
        case "synthetic": return "synthetic data"
        case "cifar10 (unverified)": return "an unverified CIFAR-10 copy"
        case let other?: return other
        }
    }

    static func deviceName(_ d: String?) -> String {
        switch d {
        case nil: return "a device not recorded"
        case "gpu": return "GPU"
        case "cpu": return "CPU"
        case let other?: return other
        }
    }
}

/// The differences between claimed and measured conditions over the cells of one table,
/// gathered so that one warning line names them all.
struct ConditionDifferences {
    private(set) var measured: (datasets: Set<String?>, devices: Set<String?>, epochs: Set<Int?>) = ([], [], [])
    private(set) var claimed: (datasets: Set<String>, devices: Set<String>, epochs: Set<Int>) = ([], [], [])
    private(set) var aspects: Set<String> = []

    var isEmpty: Bool { aspects.isEmpty }

    /// Compares a claim's stated conditions with the tasks measured for it; returns whether
    /// any differs. A condition the claim does not state is not compared; a condition the
    /// task did not record differs from any stated one (it cannot be shown to match).
    mutating func compare(claimed c: Conditions, with rows: [ResultRow]) -> Bool {
        var differs = false
        for row in rows where row.state == .succeeded {
            let m = Conditions.measured(row)
            if let d = c.dataset, m.dataset != d {
                aspects.insert("dataset")
                measured.datasets.insert(m.dataset)
                claimed.datasets.insert(d)
                differs = true
            }
            if let d = c.device, m.device != d {
                aspects.insert("device")
                measured.devices.insert(m.device)
                claimed.devices.insert(d)
                differs = true
            }
            if let e = c.epochs, m.epochs != e {
                aspects.insert("epochs")
                measured.epochs.insert(m.epochs)
                claimed.epochs.insert(e)
                differs = true
            }
        }
        return differs
    }

    /// "measured on synthetic data on CPU with 1–2 epochs; claimed on CIFAR-10 on GPU with
    /// 10/3 epochs: Δ compares different experiments."
    func warning(subject: String) -> String {
        var m: [String] = [], c: [String] = []
        if aspects.contains("dataset") {
            m.append("on " + Self.list(measured.datasets.map(Conditions.datasetName)))
            c.append("on " + Self.list(claimed.datasets.map(Conditions.datasetName)))
        }
        if aspects.contains("device") {
            m.append("on " + Self.list(measured.devices.map(Conditions.deviceName)))
            c.append("on " + Self.list(claimed.devices.map(Conditions.deviceName)))
        }
        if aspects.contains("epochs") {
            let known = measured.epochs.compactMap { $0 }
            var text = known.isEmpty ? "" : "with " + Self.range(known) + " epochs"
            if measured.epochs.contains(nil) { text += (text.isEmpty ? "" : " or ") + "epochs not recorded" }
            m.append(text)
            c.append("with " + claimed.epochs.sorted(by: >).map(String.init).joined(separator: "/") + " epochs")
        }
        return
            "CONDITIONS DIFFER — measured \(m.joined(separator: " ")); claimed \(c.joined(separator: " ")): \(subject) compares different experiments."
    }

    private static func list(_ names: [String]) -> String { names.sorted().joined(separator: " and ") }

    private static func range(_ values: [Int]) -> String {
        let low = values.min()!, high = values.max()!
        return low == high ? "\(low)" : "\(low)–\(high)"
    }
}
