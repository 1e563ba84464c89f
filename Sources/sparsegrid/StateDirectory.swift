import Foundation
import Store

/// Where a running coordinator can be found; written by `coordinator` and `run` into the
/// state directory so `status`, `cancel` and `retry` find it without flags.
struct CoordinatorInfo: Codable {
    var pid: Int32
    var workerEndpoint: String
    var dataEndpoint: String
    var controlEndpoint: String
    var startedAt: Double

    static func path(state: String) -> String { "\(state)/coordinator.json" }

    func write(state: String) throws {
        let data = try JSONEncoder().encode(self)
        try data.write(to: URL(fileURLWithPath: CoordinatorInfo.path(state: state)), options: .atomic)
    }

    /// The running coordinator of a state directory, if its process is alive.
    static func read(state: String) -> CoordinatorInfo? {
        guard let data = FileManager.default.contents(atPath: path(state: state)),
            let info = try? JSONDecoder().decode(CoordinatorInfo.self, from: data), kill(info.pid, 0) == 0
        else { return nil }
        return info
    }

    static func remove(state: String) { try? FileManager.default.removeItem(atPath: path(state: state)) }
}

func databasePath(state: String) -> String { "\(state)/sparsegrid.db" }

/// The state directory's database for reading; a clear error when there is none.
func openReadOnlyStore(state: String) throws -> SweepStore {
    guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
        throw UserError(
            "no sparsegrid state at \(state): run `sparsegrid run SPEC` (or a coordinator) first, "
                + "or pass --state DIR with the directory it used.")
    }
    return try SweepStore.openReadOnly(path: databasePath(state: state))
}

/// The state directory's database for writing, when no coordinator is running on it.
func openStore(state: String) throws -> SweepStore {
    guard FileManager.default.fileExists(atPath: databasePath(state: state)) else {
        throw UserError("no sparsegrid state at \(state): pass --state DIR with the directory your sweep used.")
    }
    return try SweepStore(path: databasePath(state: state))
}
