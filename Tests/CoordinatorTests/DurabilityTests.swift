import Foundation
import Store
import Testing

@testable import Coordinator

/// `CoordinatorConfig.durability` reaches the store the coordinator opens: `PRAGMA synchronous`
/// read back from the coordinator's own writer connection (2 = FULL, 1 = NORMAL).
@Suite("Coordinator durability")
struct CoordinatorDurabilityTests {
    static func coordinator(_ durability: Durability?) throws -> (Coordinator, String) {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("sg-durability-\(UUID().uuidString)")
            .path
        var config = CoordinatorConfig(
            stateDirectory: state, workerEndpoint: "tcp://127.0.0.1:*", controlEndpoint: "tcp://127.0.0.1:*")
        if let durability { config.durability = durability }
        return (try Coordinator(config: config, version: "9.9.9-test"), state)
    }

    @Test("full and normal each put their PRAGMA synchronous on the coordinator's store; the default is full")
    func pragmaInEffect() throws {
        for (durability, level) in [(Durability?.some(.full), 2), (.some(.normal), 1), (nil, 2)] {
            let (coordinator, state) = try Self.coordinator(durability)
            defer { try? FileManager.default.removeItem(atPath: state) }
            #expect(coordinator.synchronousInEffect == level, "\(String(describing: durability))")
            #expect(coordinator.config.durability == durability ?? .full)
        }
    }
}
