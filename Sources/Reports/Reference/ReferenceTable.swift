import Foundation

/// Numbers a paper claims, in tidy long form, to set beside measured ones.
///
/// CSV columns (header required, any order): `model`, `method`, `metric`, `value`, and
/// optionally `unit`, `measured_metric` (which measured metric to compare with; empty → the
/// built-in mapping), `source`, `note`, and the conditions the claim was obtained under:
/// `dataset` (e.g. cifar10), `device` (gpu or cpu), `epochs` (training epochs of the stage
/// that produced the number). An empty or absent condition is not compared; a stated one that
/// the measured tasks do not share marks the comparison as one across different conditions.
///
/// Metrics named in `TextClaims.derivations` (e.g. `flops_reduction_pct`) are claims of a
/// paper's text rather than its tables; model `all` means "every model of the study".
public struct ReferenceTable: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var model: String
        public var method: String
        /// The reference's own metric name, e.g. "memory_mb".
        public var metric: String
        public var value: Double
        public var unit: String
        /// The measured metric it is compared with, e.g. "peak_mib".
        public var measuredMetric: String
        public var source: String
        public var note: String
        /// Decimals the value was written with ("96.0" → 1), so it is shown as published.
        public var decimals: Int
        /// The dataset the claim was obtained on ("cifar10"), normalized; nil when not stated.
        public var dataset: String?
        /// The device class ("gpu", "cpu"), normalized; nil when not stated.
        public var device: String?
        /// Training epochs of the stage that produced the number; nil when not stated.
        public var epochs: Int?

        public init(
            model: String, method: String, metric: String, value: Double, unit: String,
            measuredMetric: String, source: String = "", note: String = "", decimals: Int? = nil,
            dataset: String? = nil, device: String? = nil, epochs: Int? = nil
        ) {
            self.model = model
            self.method = method
            self.metric = metric
            self.value = value
            self.unit = unit
            self.measuredMetric = measuredMetric
            self.source = source
            self.note = note
            self.decimals = decimals ?? ReferenceTable.decimals(in: NumberText.plain(value))
            self.dataset = dataset.map(Conditions.normalDataset)
            self.device = device.map(Conditions.normalDevice)
            self.epochs = epochs
        }

        var conditions: Conditions { Conditions(dataset: dataset, device: device, epochs: epochs) }
    }

    /// Where it was loaded from, for notes and error messages.
    public var origin: String
    public var entries: [Entry]

    public init(origin: String, entries: [Entry]) {
        self.origin = origin
        self.entries = entries
    }

    /// Reference metric names that mean something else in the engine's vocabulary. The
    /// study's "FLOPS (G)" count multiply-accumulates and shrink with sparsity, so they are
    /// compared with effective MACs; its "memory" is the memory needed to run the model, so it
    /// is compared with peak inference memory.
    public static let defaultMapping: [String: String] = [
        "gmacs": "gmacs_effective",
        "gflops": "gmacs_effective",
        "memory_mb": "peak_mib",
        "memory_mib": "peak_mib",
    ]

    /// Digits after the decimal point in a written number ("94.20" → 2, "320" → 0).
    static func decimals(in text: String) -> Int {
        guard let dot = text.firstIndex(of: ".") else { return 0 }
        return text[text.index(after: dot)...].prefix { $0.isNumber }.count
    }

    public static func load(csvPath: String) throws -> ReferenceTable {
        let text: String
        do {
            text = try String(contentsOfFile: csvPath, encoding: .utf8)
        } catch {
            throw ReportsError(
                .unreadableReference,
                "Could not read the reference table \(csvPath): \(error.localizedDescription). Check the path, or leave out --reference to report without claimed values."
            )
        }
        return try parse(csvText: text, origin: csvPath)
    }

    /// Parses reference CSV text; `origin` names it in error messages.
    public static func parse(csvText: String, origin: String) throws -> ReferenceTable {
        let records = CSVText.parse(csvText)
        let expected =
            "model,method,metric,value (and optionally unit,measured_metric,source,note,dataset,device,epochs)"
        guard let header = records.first else {
            throw ReportsError(
                .malformedReference,
                "The reference table \(origin) is empty; it needs a header line \(expected) and one line per claimed value."
            )
        }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var column: [String: Int] = [:]
        for (i, name) in names.enumerated() where column[name] == nil { column[name] = i }
        for required in ["model", "method", "metric", "value"] where column[required] == nil {
            throw ReportsError(
                .malformedReference,
                "The reference table \(origin) has no '\(required)' column in its header (line 1: \(header.fields.joined(separator: ","))); the header must name \(expected)."
            )
        }
        var entries: [Entry] = []
        for record in records.dropFirst() {
            guard record.fields.count == names.count else {
                throw ReportsError(
                    .malformedReference,
                    "The reference table \(origin) line \(record.line) has \(record.fields.count) fields but the header has \(names.count); quote fields that contain commas."
                )
            }
            func field(_ name: String) -> String {
                column[name].map { record.fields[$0].trimmingCharacters(in: .whitespaces) } ?? ""
            }
            let rawValue = field("value")
            guard let value = Double(rawValue), value.isFinite else {
                throw ReportsError(
                    .malformedReference,
                    "The reference table \(origin) line \(record.line): value '\(rawValue)' is not a number; write it as a plain decimal like 93.1."
                )
            }
            for required in ["model", "method", "metric"] where field(required).isEmpty {
                throw ReportsError(
                    .malformedReference,
                    "The reference table \(origin) line \(record.line) has an empty '\(required)'; every line needs a model, method and metric."
                )
            }
            let metric = field("metric")
            let measured = field("measured_metric")
            let rawEpochs = field("epochs")
            var epochs: Int?
            if !rawEpochs.isEmpty {
                guard let e = Int(rawEpochs), (0...100_000).contains(e) else {
                    throw ReportsError(
                        .malformedReference,
                        "The reference table \(origin) line \(record.line): epochs '\(rawEpochs)' is not a whole number from 0 to 100000; write the training epochs of the stage that produced the value, or leave it empty."
                    )
                }
                epochs = e
            }
            let dataset = field("dataset"), device = field("device")
            entries.append(
                Entry(
                    model: field("model"), method: field("method"), metric: metric, value: value,
                    unit: field("unit"),
                    measuredMetric: measured.isEmpty ? (defaultMapping[metric] ?? metric) : measured,
                    source: field("source"), note: field("note"), decimals: decimals(in: rawValue),
                    dataset: dataset.isEmpty ? nil : dataset, device: device.isEmpty ? nil : device,
                    epochs: epochs))
        }
        return ReferenceTable(origin: origin, entries: entries)
    }
}
