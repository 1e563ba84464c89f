import Foundation
import SweepKit

/// What was measured and on what: the summary every report opens with, computed from the
/// `details` the engine recorded with each succeeded task (the tasks that back the report).
///
/// Mixed values are listed with how many tasks had each ("cpu (Intel Xeon) ×12, cuda:0
/// (NVIDIA H200) ×3"), never collapsed to one. A value a task did not record reads "not
/// recorded" (older results have no commit, CUDA version or CPU model). The date the report
/// was rendered is not provenance and is not shown.
struct Provenance: Sendable, Equatable {
    /// One line of the summary: a label ("data", "devices", …) and its text.
    struct Item: Sendable, Equatable {
        var label: String
        var text: String
    }

    /// A value and how many tasks had it, most frequent first.
    struct Tally: Sendable, Equatable {
        var value: String
        var tasks: Int
    }

    /// Prominent lines: synthetic or unverified data, or no task backing the report.
    var warnings: [String] = []
    var datasets: [Tally] = []
    var devices: [Tally] = []
    var cpuModels: [Tally] = []
    var engines: [Tally] = []
    var python: [Tally] = []
    var torch: [Tally] = []
    var torchvision: [Tally] = []
    var cuda: [Tally] = []
    var code: [Tally] = []
    var started: Double?
    var finished: Double?
    var seeds: [Int] = []
    var tasksBacking = 0
    var tasksTotal = 0
    var cells = 0
    var tasksPerCell: ClosedRange<Int>?
    /// Tasks whose data was synthetic.
    var syntheticTasks = 0
    /// Backing tasks whose winning attempt shared its device with other tasks (as its worker
    /// recorded): their latencies were measured under contention.
    var sharedTasks = 0
    /// The most tasks that ran at once on one of those devices.
    var sharedMostAtOnce = 0
    /// The kinds of device shared ("GPU", "CPU"), sorted.
    var sharedDeviceKinds: [String] = []
    /// Backing tasks whose device use was recorded at all (shared or not).
    var sharingRecorded = 0

    static let syntheticWarning = "SYNTHETIC DATA — accuracies do not reflect CIFAR-10"
    static let notRecorded = "not recorded"

    init(rows: [ResultRow]) {
        tasksTotal = rows.count
        let backing = rows.filter { $0.state == .succeeded }
        tasksBacking = backing.count
        let details = backing.map { $0.details.objectValue ?? [:] }

        datasets = Self.tally(details.map(Self.dataset))
        syntheticTasks = details.filter { $0["dataset"]?["dataset"]?.stringValue == "synthetic" }.count
        devices = Self.tally(details.map(Self.device))
        // The host CPU matters beside a GPU too (data loading, launch overhead); on a CPU
        // device `device_name` already names it.
        let offCPU = details.contains { Conditions.normalDevice($0["device"]?.stringValue ?? "") != "cpu" }
        cpuModels =
            offCPU ? Self.tally(details.compactMap { $0["cpu_model"]?.stringValue }.filter { !$0.isEmpty }) : []
        engines = Self.tally(
            details.map { d in
                let name = d["engine"]?.stringValue, version = d["engine_version"]?.stringValue
                switch (name, version) {
                case (let n?, let v?): return "\(n) \(v)"
                case (let n?, nil): return "\(n) (version not recorded)"
                case (nil, let v?): return "version \(v)"
                default: return Self.notRecorded
                }
            })
        python = Self.tally(details.map { Self.text($0["python"]) })
        torch = Self.tally(details.map { Self.text($0["torch"]) })
        torchvision = Self.tally(details.map { Self.text($0["torchvision"]) })
        cuda = Self.tally(
            details.map { d in
                guard let value = d["cuda"] else { return Self.notRecorded }
                // torch.version.cuda is None in a CPU-only build of torch.
                return value == .null ? "none (CPU-only torch build)" : Self.text(value)
            })
        code = Self.tally(details.map(Self.commit))

        let starts = backing.compactMap(\.startedAt), ends = backing.compactMap(\.finishedAt)
        started = starts.min()
        finished = ends.max()
        seeds = Array(Set(backing.compactMap(\.seed))).sorted()

        // A cell: the tasks of one stage with the same parameters apart from the seed.
        var perCell: [String: Int] = [:]
        for row in rows {
            var params = row.params
            params["seed"] = nil
            let key =
                row.stage + "|"
                + params.keys.sorted().map { "\($0)=\(params[$0]!.displayText)" }.joined(
                    separator: ",")
            perCell[key, default: 0] += row.state == .succeeded ? 1 : 0
        }
        cells = perCell.count
        if let low = perCell.values.min(), let high = perCell.values.max() { tasksPerCell = low...high }

        let shared = backing.filter(\.measuredShared)
        sharedTasks = shared.count
        sharedMostAtOnce = shared.compactMap(\.tasksAtOnce).max() ?? 0
        sharedDeviceKinds = Set(shared.map { ($0.device ?? "").hasPrefix("cuda") ? "GPU" : "CPU" }).sorted()
        sharingRecorded = backing.filter { $0.tasksAtOnce != nil }.count

        if syntheticTasks > 0 {
            warnings.append(
                Self.syntheticWarning
                    + (syntheticTasks == tasksBacking
                        ? " (every task ran on synthetic data)."
                        : " (\(syntheticTasks) of \(tasksBacking) tasks ran on synthetic data)."))
        }
        let unverified = details.filter {
            $0["dataset"]?["dataset"]?.stringValue == "cifar10" && $0["dataset"]?["verified"]?.boolValue != true
        }.count
        if unverified > 0 {
            warnings.append(
                "UNVERIFIED DATA — \(unverified) task\(unverified == 1 ? "" : "s") read a CIFAR-10 layout whose files do not match the official archive's checksums."
            )
        }
        if tasksBacking == 0 { warnings.append("No succeeded task backs this report: every table is empty.") }
    }

    /// The summary as labelled lines, in the order every format prints them.
    var items: [Item] {
        [
            Item(label: "data", text: Self.join(datasets)),
            Item(label: "devices", text: Self.join(devices)),
        ]
            + (cpuModels.isEmpty ? [] : [Item(label: "host CPUs", text: Self.join(cpuModels))])
            + (sharedTasks == 0 ? [] : [Item(label: "shared devices", text: sharingText)])
            + [
                Item(label: "engine", text: Self.join(engines)),
                Item(label: "Python", text: Self.join(python)),
                Item(label: "torch", text: Self.join(torch)),
                Item(label: "torchvision", text: Self.join(torchvision)),
                Item(label: "CUDA", text: Self.join(cuda)),
                Item(label: "code", text: Self.join(code)),
                Item(label: "dates", text: dates),
                Item(
                    label: "seeds",
                    text: seeds.isEmpty ? Self.notRecorded : seeds.map(String.init).joined(separator: ", ")),
                Item(label: "tasks", text: tasksText),
            ]
    }

    private var dates: String {
        guard let started, let finished else { return "\(Self.notRecorded) (no attempt times stored)" }
        return "\(Self.utc(started)) to \(Self.utc(finished)) (winning attempts' start and end)"
    }

    /// "3 of 8 tasks ran on a GPU shared with other tasks (up to 3 at once): their latencies
    /// were measured under contention; …"
    var sharingText: String {
        let kinds = sharedDeviceKinds.joined(separator: " or ")
        let most = sharedMostAtOnce > 1 ? " (up to \(sharedMostAtOnce) tasks at once)" : ""
        return "\(sharedTasks) of \(tasksBacking) task\(tasksBacking == 1 ? "" : "s") ran on a \(kinds) shared "
            + "with other tasks\(most): their latencies were measured under contention (latency cells marked §); "
            + "a sweep with `resources: {exclusive: true}` measures on unshared devices"
    }

    private var tasksText: String {
        var text = "\(tasksBacking) succeeded of \(tasksTotal) task\(tasksTotal == 1 ? "" : "s") back this report"
        if let range = tasksPerCell {
            let count =
                range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)–\(range.upperBound)"
            text +=
                "; \(count) per cell over \(cells) cell\(cells == 1 ? "" : "s") (same stage and parameters, seeds apart)"
        }
        return text
    }

    /// Machine-readable form for the JSON report.
    var json: JSONValue {
        func list(_ tallies: [Tally]) -> JSONValue {
            .array(tallies.map { .object(["value": .string($0.value), "tasks": .number(Double($0.tasks))]) })
        }
        var object: [String: JSONValue] = [
            "warnings": .array(warnings.map { .string($0) }),
            "datasets": list(datasets), "devices": list(devices), "host_cpus": list(cpuModels),
            "engine": list(engines), "python": list(python), "torch": list(torch),
            "torchvision": list(torchvision), "cuda": list(cuda), "code": list(code),
            "started_at": started.map { .string(Self.utc($0)) } ?? .null,
            "finished_at": finished.map { .string(Self.utc($0)) } ?? .null,
            "seeds": .array(seeds.map { .number(Double($0)) }),
            "synthetic_tasks": .number(Double(syntheticTasks)),
            "tasks_backing": .number(Double(tasksBacking)), "tasks_total": .number(Double(tasksTotal)),
            "cells": .number(Double(cells)),
            "tasks_per_cell": tasksPerCell.map {
                .object(["min": .number(Double($0.lowerBound)), "max": .number(Double($0.upperBound))])
            } ?? .null,
            "lines": .array(items.map { .object(["label": .string($0.label), "text": .string($0.text)]) }),
        ]
        // Device sharing, only where some result recorded it (older results say nothing new).
        if sharingRecorded > 0 {
            object["shared_tasks"] = .number(Double(sharedTasks))
            object["shared_most_at_once"] = .number(Double(sharedMostAtOnce))
            object["shared_device_kinds"] = .array(sharedDeviceKinds.map { .string($0) })
            object["sharing_recorded_tasks"] = .number(Double(sharingRecorded))
        }
        return .object(object)
    }

    // MARK: - Reading one task's details

    static func dataset(_ d: [String: JSONValue]) -> String {
        guard let info = d["dataset"]?.objectValue, let name = info["dataset"]?.stringValue else {
            return notRecorded
        }
        var text: String
        switch name {
        case "synthetic": text = "synthetic"
        case "cifar10":
            text = info["verified"]?.boolValue == true ? "CIFAR-10 (verified)" : "CIFAR-10 layout (UNVERIFIED)"
        default: text = name
        }
        if let fingerprint = info["fingerprint"]?.stringValue, !fingerprint.isEmpty {
            text += " [fingerprint \(fingerprint)]"
        }
        return text
    }

    static func device(_ d: [String: JSONValue]) -> String {
        guard let device = d["device"]?.stringValue, !device.isEmpty else { return notRecorded }
        guard let name = d["device_name"]?.stringValue, !name.isEmpty, name != device else { return device }
        return "\(device) (\(name))"
    }

    static func commit(_ d: [String: JSONValue]) -> String {
        guard let code = d["code"]?.objectValue, let sha = code["commit"]?.stringValue, !sha.isEmpty else {
            return "unknown"
        }
        switch code["dirty"]?.boolValue {
        case true?: return "\(sha) (with uncommitted changes)"
        case false?: return "\(sha) (clean)"
        case nil: return "\(sha) (clean or not: not recorded)"
        }
    }

    static func text(_ value: JSONValue?) -> String {
        guard let value, value != .null else { return notRecorded }
        let text = value.stringValue ?? value.displayText
        return text.isEmpty ? notRecorded : text
    }

    // MARK: - Helpers

    /// Values come from the engine's output: control characters (a line break would forge a
    /// line of the summary) become spaces, and a value is cut at 200 characters.
    static func tally(_ values: [String]) -> [Tally] {
        var counts: [String: Int] = [:]
        for v in values { counts[clean(v), default: 0] += 1 }
        return counts.map { Tally(value: $0.key, tasks: $0.value) }.sorted {
            $0.tasks != $1.tasks ? $0.tasks > $1.tasks : $0.value < $1.value
        }
    }

    static func clean(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            out.unicodeScalars.append(scalar.properties.generalCategory == .control ? " " : scalar)
        }
        return out.count <= 200 ? out : String(out.prefix(199)) + "…"
    }

    static func join(_ tallies: [Tally]) -> String {
        tallies.isEmpty ? notRecorded : tallies.map { "\($0.value) ×\($0.tasks)" }.joined(separator: ", ")
    }

    /// "2026-05-28 14:03:09 UTC": a fixed zone, so a golden file reads the same anywhere.
    static func utc(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: seconds)) + " UTC"
    }
}
