import Foundation

/// A rough compute estimate for `sparsegrid validate`: for each task of the sparsity engine,
/// the images it trains on, evaluates and times, divided by a per-model throughput from
/// `ComputeEstimate.table`, plus a fixed start-up cost. It is an order of magnitude, not a
/// promise, and the text it prints says so and what it rests on.
///
/// Per task (`seconds(for:device:)`):
/// - trained images: epochs × min(training images, max_steps × batch_size), where the training
///   images are the data's (CIFAR-10: 50,000; synthetic: `train`) less `val_split`, and epochs
///   default to 10 for a task without inputs and 3 for one fine-tuned from a checkpoint (the
///   engine's defaults);
/// - forward-only images, counted at a third of a trained image's cost (a forward pass is about
///   a third of forward plus backward): one evaluation of the validation split (or the test
///   split) per epoch, one of the test split at the end, and the latency measurement's minimum
///   calls, (warm-up + iterations) × batch size per batch size, for the dense and the sparse
///   model (the adaptive timing may add up to `max_seconds` per batch size, not counted);
/// - start-up: `startupSeconds` per task (Python, torch, data loading).
public struct ComputeEstimate: Sendable, Equatable {
    /// Training throughput, images per second, of one task (one slot).
    public struct Throughput: Sendable, Equatable {
        /// On a CPU slot of the demo's host.
        public let cpu: Double
        /// On one data-centre GPU.
        public let gpu: Double
    }

    /// Per model. CPU: resnet18 and densenet121 measured by `make demo` (2026-11-30: the engine's
    /// `images_per_s`, 30.6–33.8 and 10.6–12.9, on a 2-core host running two workers at once);
    /// the other three models are guesses from their size relative to those two. GPU: assumed,
    /// not measured here (an A100-class GPU at batch size 64).
    public static let table: [String: Throughput] = [
        "resnet18": Throughput(cpu: 33, gpu: 4000),
        "densenet121": Throughput(cpu: 12, gpu: 1000),
        "resnet50": Throughput(cpu: 12, gpu: 1500),
        "mobilenet_v2": Throughput(cpu: 30, gpu: 3000),
        "efficientnet_b0": Throughput(cpu: 20, gpu: 2000),
    ]
    /// Start-up per task, seconds: CPU from the demo's tasks (measured 49.6 s for a resnet18
    /// train task that the terms above put at 40 s), GPU assumed (CUDA initialisation).
    public static let startupSeconds = (cpu: 10.0, gpu: 15.0)
    /// The shortest a timed GPU call takes, seconds: small batches are bound by launch overhead.
    static let gpuCallFloor = 0.003

    public enum Device: String, Sendable { case cpu, gpu }

    /// Seconds of work of all the tasks estimated, by device (CPU and GPU, or one of them when
    /// the spec's `resources.device` asks for it).
    public let seconds: [Device: Double]
    public let tasksEstimated: Int
    public let tasksTotal: Int
    /// Models without a row in `table`, whose tasks are left out.
    public let unknownModels: [String]

    /// nil for an engine other than `sparsity` (its cost is unknown here).
    public init?(plan: SweepPlan) {
        self.init(outline: plan, forEachTask: { body in plan.tasks.forEach(body) })
    }

    /// The same, the tasks made one at a time by `forEachTask` (`ValidatedSweep.forEachTask`),
    /// so a large sweep is estimated without holding its tasks; `outline`'s own are not read.
    public init?(outline plan: SweepPlan, forEachTask: ((PlannedTask) -> Void) -> Void) {
        guard plan.engine == "sparsity" else { return nil }
        let devices: [Device] =
            switch plan.device {
            case "cpu": [.cpu]
            case "gpu": [.gpu]
            default: [.cpu, .gpu]
            }
        var seconds: [Device: Double] = [:]
        var estimated = 0
        var unknown: Set<String> = []
        var total = 0
        forEachTask { task in
            total += 1
            guard let model = task.model, Self.table[model] != nil else {
                unknown.insert(task.model ?? "(none)")
                return
            }
            estimated += 1
            for device in devices {
                seconds[device, default: 0] += Self.seconds(for: task, context: plan.context, device: device)
            }
        }
        self.seconds = seconds
        self.tasksEstimated = estimated
        self.tasksTotal = total
        self.unknownModels = unknown.sorted()
    }

    /// The estimate for one task on one device; 0 for a model not in `table`.
    public static func seconds(for task: PlannedTask, context: JSONValue, device: Device) -> Double {
        guard let model = task.model, let speed = table[model] else { return 0 }
        let rate = device == .cpu ? speed.cpu : speed.gpu
        let p = task.params
        let finetune = !task.inputs.isEmpty
        let epochs = Double(p["epochs"]?.intValue ?? (finetune ? 3 : 10))
        let batch = Double(p["batch_size"]?.intValue ?? 64)
        let data = context["data"]
        let isCIFAR = data?["dataset"]?.stringValue == "cifar10"
        let trainTotal = Double(isCIFAR ? 50_000 : (data?["train"]?.intValue ?? 0))
        let testImages = Double(isCIFAR ? 10_000 : (data?["test"]?.intValue ?? 0))
        let valSplit = Double(p["val_split"]?.intValue ?? 0)
        var perEpoch = max(trainTotal - valSplit, 0)
        if let maxSteps = p["max_steps"]?.intValue { perEpoch = min(perEpoch, Double(maxSteps) * batch) }
        let trained = epochs * perEpoch
        let evaluated = epochs * (valSplit > 0 ? valSplit : testImages) + testImages

        var timing = 0.0
        if let latency = context["measure"]?["latency"], !latency.isNull {
            let calls = Double((latency["warmup"]?.intValue ?? 20) + (latency["iterations"]?.intValue ?? 200))
            for size in latency["batch_sizes"]?.arrayValue?.compactMap(\.intValue) ?? [] {
                let call = Double(size) / (3 * rate)
                timing += 2 * calls * (device == .gpu ? max(call, gpuCallFloor) : call)
            }
        }
        let startup = device == .cpu ? startupSeconds.cpu : startupSeconds.gpu
        return trained / rate + evaluated / (3 * rate) + timing + startup
    }

    /// The lines `validate` prints, labelled as the rough estimate they are.
    public var text: String {
        var parts: [String] = []
        if let cpu = seconds[.cpu] { parts.append("\(Self.duration(cpu)) on one CPU slot") }
        if let gpu = seconds[.gpu] { parts.append("\(Self.duration(gpu)) on one GPU") }
        let scope = tasksEstimated == tasksTotal ? "\(tasksTotal) tasks" : "\(tasksEstimated) of \(tasksTotal) tasks"
        var lines = [
            "estimate  rough, for \(scope): about \(parts.joined(separator: ", or ")) (divide by the slots that run at once)",
            "          basis: per-model training images/s (CPU measured by `make demo` for resnet18 and densenet121, "
                + "guessed for the others; GPU assumed, not measured), see `sparsegrid help validate`",
        ]
        if !unknownModels.isEmpty {
            lines.append(
                "          no estimate for model(s) \(unknownModels.joined(separator: ", ")): not in the table")
        }
        return lines.joined(separator: "\n")
    }

    /// "40 s", "12 min", "3.5 h", "2.1 days".
    static func duration(_ seconds: Double) -> String {
        if seconds < 90 { return "\(Int(seconds.rounded())) s" }
        if seconds < 5400 { return "\(Int((seconds / 60).rounded())) min" }
        if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
        return String(format: "%.1f days", seconds / 86400)
    }
}

/// The warning `validate` prints when a CIFAR-10 `data.root` is not a folder on this host.
public enum DataRootCheck {
    /// nil when the data is not CIFAR-10, has no root, or `exists` finds it (after `~` is
    /// expanded, as the engine does).
    public static func warning(plan: SweepPlan, exists: (String) -> Bool) -> String? {
        guard let data = plan.context["data"], data["dataset"]?.stringValue == "cifar10",
            let root = data["root"]?.stringValue
        else { return nil }
        let expanded = NSString(string: root).expandingTildeInPath
        guard !exists(expanded) else { return nil }
        return "warning: data.root \(root) does not exist on this host"
            + (expanded == root ? "" : " (\(expanded))")
            + ". Each worker resolves it on its own host, so this matters only where tasks will run; "
            + "there it must hold CIFAR-10's data_batch_1 … data_batch_5 and test_batch."
    }
}
