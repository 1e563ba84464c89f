import Foundation
import Store
import Testing

/// Workers on other hosts, for real: the coordinator and two workers in three network
/// namespaces (`Testbed`), each with its own address, talking real TCP over veth links and a
/// bridge with CURVE on. A link is cut mid-task past the dead interval and restored; packets are
/// dropped at random on the workers' links. The store must say that every task succeeded exactly
/// once. What this cannot show: the hosts share one kernel and one clock, the links have no
/// latency or bandwidth limit of their own, and loss is uniform (docs/guarantees.md).
@Suite(
    "Workers on other hosts: network namespaces, real TCP with CURVE, a cut link, packet loss", .serialized,
    .enabled(if: Testbed.unavailable == nil, Comment(rawValue: Testbed.unavailable ?? "")))
struct MultiHostTests {
    /// The coordinator runs in `coord`, bound to its 10.x address with CURVE, heartbeats every
    /// 0.5 s and a dead interval of 3 s; the CLI reaches its (loopback) control socket from
    /// inside `coord`.
    final class Cluster {
        let bed: Testbed
        let dir: String
        var state: String { "\(dir)/state" }
        var workerEndpoint: String { "tcp://\(bed.address(.coord)):5555" }
        private var processes: [Process] = []
        static let deadAfter = 3.0

        init(bed: Testbed, dir: String) async throws {
            self.bed = bed
            self.dir = dir
            for name in ["coord", "a", "b"] {
                let made = try await Harness.run(["keygen", "\(dir)/\(name)"])
                if made.status != 0 { throw HarnessError("keygen \(name): \(made.stderr)") }
            }
            try (Harness.read("\(dir)/a.pub") + Harness.read("\(dir)/b.pub"))
                .write(toFile: "\(dir)/workers.txt", atomically: true, encoding: .utf8)
            let coordinator = try bed.start(
                on: .coord,
                [
                    "coordinator", "--state", state, "--bind", workerEndpoint, "--heartbeat", "0.5",
                    "--dead-after", String(Self.deadAfter), "--retry-backoff", "0.2",
                    "--curve-key", "\(dir)/coord.key", "--authorized-keys", "\(dir)/workers.txt",
                ],
                log: "\(dir)/coordinator.log", environment: CoordinatorUnderTest.environment)
            processes.append(coordinator)
            let endpoints = try await Harness.coordinatorEndpoints(state, timeout: 30)
            if endpoints.workers != workerEndpoint {
                throw HarnessError("the coordinator bound \(endpoints.workers), not \(workerEndpoint)")
            }
        }

        /// A worker on `host` (`A` on `a`, `B` on `b`) with its own key, one slot and the test engine.
        func startWorker(_ host: Testbed.Host, environment: [String: String] = [:]) throws -> Process {
            let id = host.rawValue.uppercased()
            let worker = try bed.start(
                on: host,
                [
                    "worker", "--coordinator", workerEndpoint, "--id", id, "--slots", "1",
                    "--cache", "\(dir)/\(id)", "--engine", Harness.testEngine, "--only", "test",
                    "--curve-key", "\(dir)/\(host.rawValue).key", "--server-key", "\(dir)/coord.pub",
                ],
                log: "\(dir)/\(id).log",
                environment: environment.merging(CoordinatorUnderTest.environment) { a, _ in a })
            processes.append(worker)
            return worker
        }

        func launch(_ spec: String) async throws {
            let out = try await bed.run(on: .coord, ["launch", spec, "--state", state])
            if out.status != 0 { throw HarnessError("launch failed: \(out.stdout) \(out.stderr)") }
        }

        func workerState(_ id: String) throws -> String? {
            try SQL.strings(state, "SELECT state FROM workers WHERE id = ?", [id]).first
        }

        /// The logs, for failure messages.
        func logs() -> String {
            ["coordinator", "A", "B"].map { "--- \($0).log:\n\(Harness.read("\(dir)/\($0).log").suffix(1500))" }
                .joined(separator: "\n")
        }

        func stopAll() { processes.forEach(Harness.kill9) }
    }

    /// Every task of `sweep` succeeded exactly once: one succeeded attempt per task, one result
    /// per task (from that attempt), no attempt left running.
    static func expectExactlyOnce(_ state: String, sweep: String, tasks: Int) throws {
        let succeeded = try SQL.int(
            state, "SELECT COUNT(*) FROM tasks WHERE sweep = ? AND state = 'succeeded'", [sweep])
        #expect(succeeded == tasks, "\(succeeded) of \(tasks) task(s) of \(sweep) succeeded")
        let results = try SQL.int(
            state, "SELECT COUNT(*) FROM results r JOIN tasks t ON t.id = r.task_id WHERE t.sweep = ?", [sweep])
        #expect(results == tasks, "\(results) result rows for \(tasks) tasks of \(sweep)")
        let notOnce = try SQL.int(
            state,
            """
            SELECT COUNT(*) FROM tasks t WHERE t.sweep = ? AND
              (SELECT COUNT(*) FROM attempts a WHERE a.task_id = t.id AND a.outcome = 'succeeded') != 1
            """, [sweep])
        #expect(notOnce == 0, "\(notOnce) task(s) of \(sweep) do not have exactly one succeeded attempt")
        let mismatched = try SQL.int(
            state,
            """
            SELECT COUNT(*) FROM results r JOIN attempts a ON a.id = r.attempt_id
            JOIN tasks t ON t.id = r.task_id WHERE t.sweep = ? AND a.outcome != 'succeeded'
            """, [sweep])
        #expect(mismatched == 0, "\(mismatched) stored result(s) of \(sweep) belong to an attempt not marked succeeded")
        let running = try SQL.int(
            state,
            "SELECT COUNT(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.sweep = ? AND a.outcome = 'running'",
            [sweep])
        #expect(running == 0, "\(running) attempt(s) of \(sweep) still running")
    }

    /// Fault injected: worker A's link goes down while A runs the finetune (whose input, the
    /// checkpoint, A itself trained and uploaded), for longer than the dead interval, then comes
    /// back. Proves: over real TCP with CURVE between three hosts, the coordinator declares A
    /// dead, B fetches the checkpoint across its own link and finishes the task exactly once, A
    /// reconnects when the link returns, its stray attempt is cancelled, and it takes work again.
    @Test(
        "a checkpoint trained on host a is fine-tuned on host b after a's link is cut mid-task past the dead interval; the task succeeds once, on b; a rejoins when its link returns and runs tasks of the next sweep"
    )
    func cutLink() async throws {
        try await Testbed.with { bed in
            let dir = Harness.tempDir("multihost-cut")
            let cluster = try await Cluster(bed: bed, dir: dir)
            defer { cluster.stopAll() }
            let state = cluster.state
            print("multihost: namespaces \(bed.tag)-{coord,a,b} on \(bed.subnet).0/24, logs in \(dir)")
            // A trains, then hangs in finetune: the cut catches it mid-task.
            _ = try cluster.startWorker(.a, environment: ["TEST_ENGINE_STALL_STAGE": "finetune"])
            let bytes = 2_000_000
            let spec = try Harness.writeSpec(
                Harness.testSpec(name: "cut", xs: [1], trainParams: "artifact_bytes: \(bytes)", finetune: "value: 7"),
                in: dir)
            try await cluster.launch(spec)
            let store = try Harness.store(state)
            var finetuneId = ""
            try await Harness.waitFor("finetune to run on A", timeout: 60) {
                guard let ft = try store.resultRows(sweep: "cut", stage: "finetune").first else { return false }
                finetuneId = ft.taskId
                return try store.attempts(task: ft.taskId).contains { $0.workerId == "A" && $0.outcome == .running }
            }
            _ = try cluster.startWorker(.b)
            try await Harness.waitFor("B to join", timeout: 30) { try cluster.workerState("B") == "alive" }

            let cutAt = Date()
            try await bed.setLink(.a, up: false)
            try await Harness.waitFor("A's finetune attempt to be lost", timeout: 30) {
                try store.attempts(task: finetuneId).contains { $0.workerId == "A" && $0.outcome == .lost }
            }
            let lostAfter = Date().timeIntervalSince(cutAt)
            print("multihost: A's attempt lost \(String(format: "%.1f", lostAfter)) s after the cut")
            // Last heard at most one heartbeat (0.5 s) before the cut; the tick adds a little.
            #expect(
                lostAfter >= Cluster.deadAfter - 0.6,
                "A's attempt was lost \(lostAfter) s after the cut, before the dead interval of \(Cluster.deadAfter) s")
            #expect(try cluster.workerState("A") == "dead")
            try await Harness.waitFor("finetune to run on B", timeout: 30) {
                try store.attempts(task: finetuneId).contains { $0.workerId == "B" }
            }
            try await bed.setLink(.a, up: true)
            let restoredAt = Date()
            try await Harness.waitFor("finetune to succeed", timeout: 60) {
                try store.resultRows(sweep: "cut", stage: "finetune").first?.state == .succeeded
            }
            do {
                try await Harness.waitFor("A to rejoin after its link came back", timeout: 30) {
                    try cluster.workerState("A") == "alive"
                }
            } catch {
                Issue.record("\(error)\n\(cluster.logs())")
                throw error
            }
            print(
                "multihost: A alive again \(String(format: "%.1f", Date().timeIntervalSince(restoredAt))) s after the link came back"
            )

            let train = try #require(try store.resultRows(sweep: "cut", stage: "train").first)
            let finetune = try #require(try store.resultRows(sweep: "cut", stage: "finetune").first)
            let checkpoint = try #require(train.artifacts.first)
            #expect(checkpoint.bytes == Int64(bytes))
            #expect(try store.attempts(task: train.taskId).map(\.workerId) == ["A"])
            let ftAttempts = try store.attempts(task: finetune.taskId).sorted { $0.startedAt < $1.startedAt }
            #expect(ftAttempts.map(\.workerId) == ["A", "B"], "\(ftAttempts)")
            #expect(ftAttempts.map(\.outcome) == [.lost, .succeeded], "\(ftAttempts)")
            #expect(finetune.details["inputs_verified"]?["train"]?.stringValue == checkpoint.sha256)
            #expect(FileManager.default.fileExists(atPath: "\(dir)/B/artifacts/\(checkpoint.sha256)"))
            try Self.expectExactlyOnce(state, sweep: "cut", tasks: 2)
            // The checkpoint crossed both links: up from a, down to b.
            let linkA = try await bed.linkBytes(.a), linkB = try await bed.linkBytes(.b)
            print("multihost: link a carried \(linkA.fromHost) B up, link b \(linkB.toHost) B down")
            #expect(linkA.fromHost > bytes, "only \(linkA.fromHost) bytes came up a's link")
            #expect(linkB.toHost > bytes, "only \(linkB.toHost) bytes went down b's link")

            // A takes work again: its stalled attempt was cancelled when it rejoined, or its only
            // slot would still be held.
            let next = try Harness.writeSpec(
                Harness.testSpec(name: "after", xs: Array(1...6), trainParams: "sleep: 0.5"), in: dir,
                name: "after.yaml")
            try await cluster.launch(next)
            try await Harness.waitFor("the second sweep to finish", timeout: 60) {
                try SQL.int(state, "SELECT COUNT(*) FROM tasks WHERE sweep = 'after' AND state = 'succeeded'") == 6
            }
            let byWorker = try SQL.rows(
                state,
                """
                SELECT a.worker_id, COUNT(*) FROM attempts a JOIN tasks t ON t.id = a.task_id
                WHERE t.sweep = 'after' AND a.outcome = 'succeeded' GROUP BY a.worker_id ORDER BY a.worker_id
                """
            ).map { "\($0[0] as String): \($0[1] as Int)" }
            print("multihost: second sweep ran \(byWorker)")
            #expect(byWorker.contains { $0.hasPrefix("A: ") }, "A ran none of the second sweep: \(byWorker)")
            try Self.expectExactlyOnce(state, sweep: "after", tasks: 6)
        }
    }

    /// Fault injected: 15 % of the packets in each direction on both workers' links dropped at
    /// random, from before the workers connect (CURVE handshakes, hellos, heartbeats, checkpoint
    /// uploads and downloads all see it). Proves: TCP and the protocol above it still finish
    /// every task exactly once, checkpoints intact.
    @Test(
        "15 % packet loss on both workers' links: a train → finetune sweep with checkpoints handed between hosts finishes with every task succeeded exactly once",
        .enabled(if: Testbed.noPacketLoss == nil, Comment(rawValue: Testbed.noPacketLoss ?? "")))
    func packetLoss() async throws {
        try await Testbed.with { bed in
            let dir = Harness.tempDir("multihost-loss")
            let percent = 15
            for host in [Testbed.Host.a, .b] { try await bed.dropPackets(host, percent: percent) }
            let cluster = try await Cluster(bed: bed, dir: dir)
            defer { cluster.stopAll() }
            let state = cluster.state
            print("multihost: namespaces \(bed.tag)-{coord,a,b}, \(percent) % loss, logs in \(dir)")
            _ = try cluster.startWorker(.a)
            _ = try cluster.startWorker(.b)
            let xs = Array(1...6)
            let spec = try Harness.writeSpec(
                Harness.testSpec(
                    name: "lossy", xs: xs, trainParams: "sleep: 0.3, artifact_bytes: 300000",
                    finetune: "sleep: 0.2", retries: 5),
                in: dir)
            let started = Date()
            try await cluster.launch(spec)
            do {
                try await Harness.waitFor("the lossy sweep to finish", timeout: 90) {
                    try SQL.int(state, "SELECT COUNT(*) FROM tasks WHERE sweep = 'lossy' AND state != 'succeeded'") == 0
                        && SQL.int(state, "SELECT COUNT(*) FROM tasks WHERE sweep = 'lossy'") == 2 * xs.count
                }
            } catch {
                Issue.record("\(error)\n\(cluster.logs())")
                throw error
            }
            let seconds = Date().timeIntervalSince(started)
            try Self.expectExactlyOnce(state, sweep: "lossy", tasks: 2 * xs.count)
            let store = try Harness.store(state)
            for train in try store.resultRows(sweep: "lossy", stage: "train") {
                let consumer = try store.resultRows(sweep: "lossy", stage: "finetune").first {
                    $0.params["x"] == train.params["x"]
                }
                #expect(
                    consumer?.details["inputs_verified"]?["train"]?.stringValue == train.artifacts.first?.sha256,
                    "the finetune of \(train.params) did not verify its checkpoint")
            }
            let droppedA = try await bed.droppedPackets(.a), droppedB = try await bed.droppedPackets(.b)
            let outcomes = try SQL.rows(state, "SELECT outcome, COUNT(*) FROM attempts GROUP BY outcome")
                .map { "\($0[0] as String) \($0[1] as Int)" }
            print(
                "multihost: lossy sweep in \(String(format: "%.1f", seconds)) s; dropped \(droppedA) packets on a, \(droppedB) on b; attempts: \(outcomes)"
            )
            #expect(droppedA > 0 && droppedB > 0, "the loss rules dropped nothing (a: \(droppedA), b: \(droppedB))")
        }
    }
}
