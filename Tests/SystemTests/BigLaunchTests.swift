import Foundation
import Testing

/// `sparsegrid launch` of a plan bigger than one part (`LaunchTasks.partSize`, 5,000 tasks)
/// sends it in parts to a real coordinator process, says so on stderr, and every task arrives
/// once, in plan order.
@Suite("sparsegrid launch sends a big plan in parts", .serialized)
struct BigLaunchTests {
    @Test("12,000 tasks: three parts, the 'storing' line on stderr, 12,000 tasks stored once, launched twice")
    func twelveThousand() async throws {
        let dir = Harness.tempDir("big-launch")
        let coordinator = try await CoordinatorUnderTest(dir: dir)
        defer { coordinator.stop() }
        let spec = try Harness.writeSpec(ProofSpecs.null(name: "big", a: 120, b: 100), in: dir)
        let first = try await Harness.run(
            ["launch", spec, "--coordinator", coordinator.control, "--state", coordinator.state], timeout: 300)
        #expect(first.status == 0, "\(first.stdout) \(first.stderr)")
        #expect(first.stderr.contains("12,000 tasks planned"), "\(first.stderr)")
        #expect(first.stderr.contains("all 12,000 tasks sent; the coordinator is storing them"), "\(first.stderr)")
        #expect(first.stdout.contains("sweep big: 12000 new, 0 reused, 0 to run again, 12000 total"), "\(first.stdout)")
        #expect(
            try SQL.int(coordinator.state, "SELECT count(*) FROM tasks WHERE sweep = 'big' AND active = 1") == 12_000)
        #expect(
            try SQL.int(
                coordinator.state,
                "SELECT count(*) FROM (SELECT ordinal FROM tasks WHERE sweep = 'big' GROUP BY ordinal)") == 12_000)
        let again = try await Harness.run(
            ["launch", spec, "--coordinator", coordinator.control, "--state", coordinator.state], timeout: 300)
        #expect(again.stdout.contains("sweep big: 0 new, 12000 reused, 0 to run again, 12000 total"), "\(again.stdout)")
    }
}
