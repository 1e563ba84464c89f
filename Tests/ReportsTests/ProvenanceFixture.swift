import SweepKit

/// `Fixture.rows` with the provenance the engine records (details.dataset, versions, code
/// commit, CPU model) and the winning attempts' times, as a sweep run on synthetic data on a
/// CPU would store them. `dataset`/`device` change what every succeeded task says.
enum ProvenanceFixture {
    static let cpuName = "Intel(R) Xeon(R) Platinum 8480+"
    static let torch = "2.4.1+cpu"
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    /// 2026-05-01 12:00:00 UTC.
    static let start = 1_777_636_800.0

    static func rows(
        dataset: JSONValue = ["dataset": "synthetic", "verified": false, "fingerprint": "5eed5eed5eed5eed"],
        device: String = "cpu", deviceName: String = cpuName, cuda: JSONValue = .null,
        code: JSONValue? = ["commit": .string(commit), "dirty": false, "source": "git"],
        epochs: (dense: Int, finetune: Int)? = nil
    ) -> [ResultRow] {
        Fixture.rows.enumerated().map { i, row in
            var row = row
            guard row.state == .succeeded, var details = row.details.objectValue else { return row }
            details["device"] = .string(device)
            details["device_name"] = .string(deviceName)
            details["dataset"] = dataset
            details["engine"] = "sparsegrid-torch"
            details["engine_version"] = "0.4.0"
            details["python"] = "3.11.9"
            details["torch"] = .string(torch)
            details["torchvision"] = "0.19.1+cpu"
            details["cuda"] = cuda
            details["cpu_model"] = .string(cpuName)
            if let code { details["code"] = code }
            if let epochs {
                let e = row.stage == "train" ? epochs.dense : epochs.finetune
                details["stage_params"] = ["epochs": .number(Double(e))]
            }
            row.details = .object(details)
            row.startedAt = start + Double(i) * 60
            row.finishedAt = start + Double(i) * 60 + 45
            return row
        }
    }
}
