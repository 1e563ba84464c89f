import Foundation
import Testing

@testable import Store

/// `SweepStore(path:durability:)` puts its `PRAGMA synchronous` on the writer connection: the
/// value SQLite reads back, not the setting's name, is what is checked.
@Suite("Store durability setting")
struct StoreDurabilityTests {
    @Test("full reads back as synchronous = 2, normal as 1, the default as full")
    func pragmaInEffect() throws {
        for (durability, level) in [(Durability.full, 2), (.normal, 1)] {
            let dir = try TempDir()
            let store = try SweepStore(path: dir.dbPath, durability: durability)
            #expect(store.durability == durability)
            #expect(try store.synchronousInEffect() == level, "\(durability)")
            #expect(durability.synchronousLevel == level)
            // Straight from a write transaction too, the connection every commit goes through.
            let raw = try store.write("read the pragma") { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
            #expect(raw == level, "\(durability)")
        }
        let dir = try TempDir()
        let store = try SweepStore(path: dir.dbPath)
        #expect(try store.synchronousInEffect() == 2, "the default survives an OS crash: FULL")
        #expect(Durability.default == .full)
    }

    @Test("reopening a database with another setting takes the new one (it is per connection, not stored)")
    func perOpen() throws {
        let dir = try TempDir()
        do {
            let store = try SweepStore(path: dir.dbPath, durability: .normal)
            #expect(try store.synchronousInEffect() == 1)
        }
        let again = try SweepStore(path: dir.dbPath, durability: .full)
        #expect(try again.synchronousInEffect() == 2)
    }
}
