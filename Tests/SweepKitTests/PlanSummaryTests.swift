import Foundation
import Testing

@testable import SweepKit

@Suite("The summary `sparsegrid validate` prints")
struct PlanSummaryTests {
    @Test("smoke.yaml: data, methods, measurement, then tasks per stage with their grid keys")
    func smoke() throws {
        let path = ShippedSweepsTests.sweeps.appendingPathComponent("smoke.yaml").path
        let summary = try SpecLoader.validate(path: path).summary
        #expect(
            summary == """
                sweep     smoke
                          Two models, dense training then 2:4 and 4x4-block fine-tuning, a few steps each.
                engine    sparsity
                data      synthetic, 256 train / 128 test images (seed 0)
                methods   nm_2_4     2:4 (n_m); left dense: first, last
                          block_4x4  4×4 blocks, random, p 0.5; left dense: first, last
                measure   latency at batch sizes 1 (2 warm-up, 5 timed runs); FLOPs; memory
                resources device any; 1 retry per task

                train      2 tasks  (model × seed)
                finetune   4 tasks  (model × seed × method)  after train
                total      6 tasks
                """)
    }

    @Test("stage names wider than the column widen it; a stage without a grid says so")
    func wideNames() throws {
        let summary = try SpecLoader.validate(
            yaml: """
                name: wide
                engine: bench
                stages:
                  a_rather_long_stage: {}
                  next: {after: a_rather_long_stage, grid: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}
                """, file: "wide.yaml"
        ).summary
        #expect(
            summary == """
                sweep     wide
                engine    bench
                resources device any; 2 retries per task

                a_rather_long_stage   1 task   (no grid)
                next                 10 tasks  (n)  after a_rather_long_stage
                total                11 tasks
                """)
    }
}
