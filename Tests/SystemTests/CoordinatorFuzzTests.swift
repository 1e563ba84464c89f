import Foundation
import SweepKit
import Testing
import Wire
import ZeroMQ

/// Hostile frames on the coordinator's worker, artifact and control sockets, sent from raw
/// DEALER sockets (what any process that can reach the ports can do). After every message a
/// probe (a frame with a bad protocol version, which every socket answers with an error)
/// must come back: if it does not, the coordinator has crashed or hung on exactly that
/// message, which is recorded, and the coordinator is restarted on the same state directory so
/// the run goes on and reports every such message, not only the first.
@Suite("The coordinator survives hostile frames on its three sockets", .serialized)
struct CoordinatorFuzzTests {
    @Test(
        "every field of every message type set to boundary numbers (1e20, 2^63, 1e10, -1, 0.5…), 100 KB or invalid-UTF-8 strings, wrong types, 1000-deep arrays or removed, and every frame layout cut, emptied or padded, with and without a prior hello: the coordinator neither crashes nor hangs, and runs a sweep afterwards"
    )
    func boundaryValues() async throws {
        let session = try await FuzzSession(name: "fuzz-edges")
        defer { session.tearDown() }
        var rng = SeededRNG(seed: 1)
        let started = Date()
        // Bounded: the enumeration stops after this long and says how far it got.
        let budget = 60.0
        var sent = 0, planned = 0
        var stoppedEarly = false
        outer: for template in session.templates().all() {
            let home = FuzzTemplates.socket(of: template.typeName)
            let helloVariants = home == .workers ? [false, true] : [false]
            var cases: [(site: String?, label: String, frames: [[UInt8]])] = []
            for path in template.header.sites() {
                let where_ = FuzzJSON.pathText(path)
                for (label, value) in FuzzValues.all {
                    cases.append(
                        (
                            where_, "\(where_) := \(label)",
                            session.frames(template, template.header.replacing(path[...], with: value))
                        ))
                }
                cases.append(
                    (
                        where_, "\(where_) removed",
                        session.frames(template, template.header.replacing(path[...], with: nil))
                    ))
            }
            for key in FuzzValues.interestingKeys {
                cases.append(
                    (
                        nil, "extra member \(key) := 1e20",
                        session.frames(template, template.header.adding(key, .number("1e20")))
                    ))
            }
            for (label, frames) in FrameMutations.all(
                type: template.typeName, header: template.header.bytes,
                payload: template.payload, rng: &rng)
            {
                cases.append((nil, label, frames))
            }
            planned += cases.count * helloVariants.count
            for hello in helloVariants {
                var crashedSites: Set<String> = []
                for (site, label, frames) in cases {
                    if Date().timeIntervalSince(started) > budget || session.gaveUp {
                        stoppedEarly = true
                        break outer
                    }
                    // One crash per field is enough to prove it; the other values there would
                    // only crash it again.
                    if let site, crashedSites.contains(site) { continue }
                    let crashes = session.coordinator.starts
                    await session.deliver(
                        frames, to: home, afterHello: hello,
                        label: "\(home) `\(template.typeName)`\(hello ? " after hello" : ""): \(label)")
                    if let site, session.coordinator.starts != crashes { crashedSites.insert(site) }
                    sent += 1
                }
            }
            // The same valid message on the two sockets it does not belong to.
            for other in CoordinatorSocket.allCases where other != home {
                await session.deliver(
                    session.frames(template, template.header), to: other, afterHello: false,
                    label: "\(other) `\(template.typeName)` (valid, wrong socket)")
                sent += 1
            }
        }
        let elapsed = Int(Date().timeIntervalSince(started))
        print(
            "fuzz-edges: \(sent) messages in \(elapsed) s (\(planned) planned\(stoppedEarly ? ", stopped early: time budget or too many crashes" : "")), "
                + "\(session.coordinator.starts - 1) coordinator restart(s) taking \(Int(session.restartSeconds)) s")
        #expect(
            session.findings.isEmpty,
            "\(session.findings.count) kind(s) of message crashed or hung the coordinator:\n\(session.findings.joined(separator: "\n"))"
        )
        #expect(
            session.coordinator.starts == 1,
            "the coordinator had to be restarted \(session.coordinator.starts - 1) time(s)")
        try await session.servesSweepAfterwards()
    }

    @Test(
        "12 s of seeded random frames (mutated, truncated, padded, wrong socket, with and without hello, real and guessed attempt ids): the coordinator stays up and then runs a sweep with a real worker to completion"
    )
    func randomFrames() async throws {
        let seed = SeededRNG.seed(env: "SG_FUZZ_SEED")
        print("fuzz-random: seed \(seed) (replay with SG_FUZZ_SEED=\(seed))")
        let session = try await FuzzSession(name: "fuzz-random")
        defer { session.tearDown() }
        var rng = SeededRNG(seed: seed)
        let started = Date()
        var sent = 0
        while Date().timeIntervalSince(started) < 12, !session.gaveUp {
            let templates = session.templates(rng: &rng).all()
            let template = templates.randomElement(using: &rng)!
            let home = FuzzTemplates.socket(of: template.typeName)
            let socket =
                Double.random(in: 0..<1, using: &rng) < 0.8
                ? home : CoordinatorSocket.allCases.randomElement(using: &rng)!
            let hello = socket == .workers && Bool.random(using: &rng)
            let roll = Double.random(in: 0..<1, using: &rng)
            var label: String
            var frames: [[UInt8]]
            if roll < 0.6 {
                var header = template.header
                var changes: [String] = []
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let sites = header.sites()
                    let pick = Double.random(in: 0..<1, using: &rng)
                    if pick < 0.15 || sites.isEmpty {
                        let key = FuzzValues.interestingKeys.randomElement(using: &rng)!
                        let (vl, value) = FuzzValues.all.randomElement(using: &rng)!
                        header = header.adding(key, value)
                        changes.append("extra \(key) := \(vl)")
                    } else {
                        let path = sites.randomElement(using: &rng)!
                        if pick < 0.25 {
                            header = header.replacing(path[...], with: nil)
                            changes.append("\(FuzzJSON.pathText(path)) removed")
                        } else {
                            let (vl, value) = FuzzValues.all.randomElement(using: &rng)!
                            header = header.replacing(path[...], with: value)
                            changes.append("\(FuzzJSON.pathText(path)) := \(vl)")
                        }
                    }
                }
                label = changes.joined(separator: ", ")
                frames = session.frames(template, header)
            } else if roll < 0.85 {
                let options = FrameMutations.all(
                    type: template.typeName, header: template.header.bytes,
                    payload: template.payload, rng: &rng)
                (label, frames) = options.randomElement(using: &rng)!
            } else {
                label = "valid"
                frames = session.frames(template, template.header)
            }
            await session.deliver(
                frames, to: socket, afterHello: hello,
                label: "\(socket) `\(template.typeName)`\(hello ? " after hello" : ""): \(label)")
            sent += 1
        }
        print("fuzz-random: seed \(seed): \(sent) messages, \(session.coordinator.starts - 1) coordinator restart(s)")
        let report = session.findings.joined(separator: "\n")
        #expect(
            session.findings.isEmpty,
            "seed \(seed): \(session.findings.count) kind(s) of message crashed or hung the coordinator:\n\(report)")
        #expect(
            session.coordinator.starts == 1,
            "the coordinator had to be restarted \(session.coordinator.starts - 1) time(s)")
        try await session.servesSweepAfterwards()
    }
}

/// One coordinator under fuzz, the raw sockets aimed at it, and what went wrong so far.
final class FuzzSession {
    let coordinator: CoordinatorUnderTest
    let dir: String
    private let context: Context
    private var stranger: RawDealer!
    private var helloed: RawDealer!
    private var data: RawDealer!
    private var control: RawDealer!
    private var harvester: RawDealer!
    /// Real attempt ids the coordinator handed to the fuzzer's fake worker.
    private(set) var attempts: [(attempt: String, task: String)] = []
    private var probe = 0
    /// Time spent bringing a crashed coordinator back (not fuzzing).
    private(set) var restartSeconds = 0.0
    let plan: SweepPlan
    /// An artifact the coordinator really holds, so results naming it get past the file check.
    let artifactBytes = Array("fuzz-artifact".utf8)
    var artifactSha: String { ArtifactFiles.sha256(bytes: artifactBytes) }
    /// Set after too many crashes: the run stops and reports what it has.
    var gaveUp: Bool { coordinator.starts > 40 }

    init(name: String) async throws {
        dir = Harness.tempDir(name)
        coordinator = try await CoordinatorUnderTest(dir: dir, heartbeat: 0.5, deadAfter: 3)
        context = try Context()
        plan = try SpecLoader.plan(yaml: ProofSpecs.null(name: "fuzz-plan", a: 2, b: 1), file: "fuzz-plan.yaml")
        // Work for the fuzzer's fake worker to be handed, so it can use real attempt ids.
        let spec = try Harness.writeSpec(
            ProofSpecs.null(name: "fuzz-harvest", a: 20, b: 20, retries: 1000), in: dir,
            name: "harvest.yaml")
        try await coordinator.launch(spec)
        try await connect()
    }

    func tearDown() { coordinator.stop() }

    private func connect() async throws {
        stranger = try RawDealer(context, coordinator.workers)
        helloed = try RawDealer(context, coordinator.workers)
        data = try RawDealer(context, coordinator.data)
        control = try RawDealer(context, coordinator.control)
        harvester = try RawDealer(context, coordinator.workers)
        // Upload the artifact results will name.
        data.send(.put, Put(sha256: artifactSha, offset: 0, total: Int64(artifactBytes.count)), payload: artifactBytes)
        _ = await data.receive(.putAck, timeout: 5)
        // Take some real assignments.
        harvester.send(
            .hello,
            Hello(
                workerId: "fuzz-harvester", host: "fuzz-host", pid: 1,
                slots: (0..<32).map { SlotInfo(index: $0, device: "cpu") },
                engines: ["null": ["builtin": true]], running: []))
        harvester.send(.ready, Ready(credits: 32))
        let deadline = Date().addingTimeInterval(3)
        while attempts.count < 32, Date() < deadline {
            guard let envelope = await harvester.receive(.assign, timeout: deadline.timeIntervalSinceNow),
                let assign = try? envelope.decode(Assign.self)
            else { break }
            attempts.append((assign.attemptId, assign.taskId))
        }
    }

    func templates() -> FuzzTemplates {
        let real = attempts.first ?? ("attempt-that-never-was", "task-that-never-was")
        return FuzzTemplates(attemptId: real.attempt, taskId: real.task, sha256: artifactSha, plan: plan)
    }

    /// Templates naming a real attempt (the fuzzer was assigned it) half the time, else a guess.
    func templates(rng: inout SeededRNG) -> FuzzTemplates {
        var ids: (attempt: String, task: String) = (
            "guess-\(UInt32.random(in: 0...UInt32.max, using: &rng))",
            String(repeating: "0", count: 64)
        )
        if Bool.random(using: &rng), let real = attempts.randomElement(using: &rng) { ids = real }
        return FuzzTemplates(attemptId: ids.attempt, taskId: ids.task, sha256: artifactSha, plan: plan)
    }

    func frames(_ template: FuzzTemplates.Template, _ header: FuzzJSON) -> [[UInt8]] {
        var frames = [FrameMutations.version, Array(template.typeName.utf8), header.bytes]
        if let payload = template.payload { frames.append(payload) }
        return frames
    }

    /// Sends one message and waits for the probe behind it to be answered.
    func deliver(_ frames: [[UInt8]], to socket: CoordinatorSocket, afterHello: Bool, label: String) async {
        // A stranger stays a stranger: one that sends a hello is replaced after it.
        let strangerSaysHello =
            socket == .workers && !afterHello && frames.count > 1 && frames[1] == Array("hello".utf8)
        defer {
            if strangerSaysHello, let fresh = try? RawDealer(context, coordinator.workers) { stranger = fresh }
        }
        let dealer: RawDealer
        let role: String
        switch socket {
        case .workers:
            dealer = afterHello ? helloed : stranger
            role = afterHello ? "worker (after hello)" : "worker (stranger)"
            if afterHello {
                dealer.send(
                    .hello,
                    Hello(
                        workerId: "fuzz-helloed", host: "fuzz-host", pid: 2,
                        slots: [SlotInfo(index: 0, device: "cpu")],
                        engines: ["null": ["builtin": true]], running: []))
            }
        case .artifacts: (dealer, role) = (data, "artifact")
        case .control: (dealer, role) = (control, "control")
        }
        dealer.send(frames)
        var answered = false
        if silent.contains(role) {
            // This coordinator does not answer the probe here (it may drop what it will not
            // take without a word): a crash still shows as the process ending.
            try? await Task.sleep(nanoseconds: 5_000_000)
            answered = coordinator.isRunning
            unprobed += 1
            if answered, unprobed % 200 == 0 { answered = await respondsToHello() }
        } else {
            probe += 1
            let tag = Array("'PROBE-\(probe)'".utf8)
            dealer.send([Array("PROBE-\(probe)".utf8), Array("hello".utf8), Array("{}".utf8)])
            let deadline = Date().addingTimeInterval(2)
            while Date() < deadline, !answered {
                if let reply = await dealer.receive(timeout: 0.05) {
                    answered = reply.contains(where: { contains($0, tag) })
                    continue
                }
                if !coordinator.isRunning { break }
            }
            if !answered, coordinator.isRunning, await respondsToHello() {
                print(
                    "fuzz note: no answer to a bad-version frame on the \(role) socket; from now on only the process is watched there"
                )
                silent.insert(role)
                answered = true
            }
        }
        if answered { return }
        // No answer: crashed or hung on `frames`.
        let what = describeFrames(frames, limit: 160)
        let type = frames.count > 1 ? String(decoding: frames[1].prefix(20), as: UTF8.self) : "?"
        if coordinator.isRunning {
            record(
                signature: "\(socket) \(type) hang",
                "HANG (not even a new worker's hello answered within 5 s) — \(label)\n    frames: \(what)")
            return
        }
        let crash = coordinator.crashText
        record(
            signature: "\(socket) \(type) \(Self.crashKey(crash))",
            "CRASH (\(coordinator.exitDescription)) — \(label)\n    frames: \(what)\n    log: \(crash)")
        let restartStarted = Date()
        defer { restartSeconds += Date().timeIntervalSince(restartStarted) }
        do {
            try await coordinator.restart()
            attempts = []
            try await connect()
        } catch {
            record(signature: "restart", "the coordinator could not be restarted: \(error)")
        }
    }

    /// Sockets whose coordinator does not answer a bad-version probe (see `deliver`).
    private var silent: Set<String> = []
    private var unprobed = 0

    /// Whether the coordinator welcomes a new worker within 5 s: it is up and its loop turns.
    func respondsToHello() async -> Bool {
        guard let fresh = try? RawDealer(context, coordinator.workers) else { return false }
        fresh.send(
            .hello,
            Hello(
                workerId: "fuzz-liveness", host: "fuzz-host", pid: 3, slots: [],
                engines: ["null": ["builtin": true]], running: []))
        return await fresh.receive(.welcome, timeout: 5) != nil
    }

    /// One finding per message type and kind of failure (the first example of it), with how
    /// often it happened.
    private func record(signature: String, _ finding: String) {
        print("fuzz finding: \(finding)")
        if let i = signatures.firstIndex(of: signature) {
            counts[i] += 1
            return
        }
        signatures.append(signature)
        counts.append(1)
        examples.append(finding)
    }

    private var signatures: [String] = []
    private var counts: [Int] = []
    private var examples: [String] = []

    /// Distinct failures, each with its first example and how many messages caused it.
    var findings: [String] {
        examples.indices.map { "\(examples[$0])\n    (\(counts[$0]) message(s) failed this way)" }
    }

    /// What kind of crash a log line shows, without the ids and values that vary.
    static func crashKey(_ text: String) -> String {
        if let r = text.range(of: ". The batch") {
            return String(text[..<r.lowerBound].components(separatedBy: ": ").last ?? "")
        }
        if let r = text.range(of: "Fatal error") { return String(text[r.lowerBound...].prefix(80)) }
        return String(text.suffix(80))
    }

    /// The coordinator, as the fuzz left it, runs a small sweep with a real worker process.
    func servesSweepAfterwards() async throws {
        #expect(coordinator.isRunning, "the coordinator is not running after the fuzz: \(coordinator.exitDescription)")
        if !coordinator.isRunning { try await coordinator.restart() }
        for sweep in ["fuzz-harvest", "fuzz-plan"] {
            _ = try? await Harness.run(["cancel", sweep, "--state", coordinator.state], timeout: 30)
        }
        let worker = try coordinator.startWorker(id: "real-after-fuzz")
        defer { Harness.kill9(worker) }
        let spec = try Harness.writeSpec(ProofSpecs.null(name: "after-fuzz", a: 3, b: 2), in: dir, name: "after.yaml")
        try await coordinator.launch(spec)
        let store = try Harness.store(coordinator.state)
        try await Harness.waitFor("the sweep after the fuzz to finish", timeout: 60) {
            let rows = try store.resultRows(sweep: "after-fuzz")
            return rows.count == 6 && rows.allSatisfy { $0.state == .succeeded }
        }
        #expect(try store.countResults(sweep: "after-fuzz") == 6)
        #expect(coordinator.isRunning, "the coordinator died while serving the sweep: \(coordinator.crashText)")
    }
}

private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count, let first = needle.first else { return needle.isEmpty }
    var i = 0
    while i + needle.count <= haystack.count {
        if haystack[i] == first, Array(haystack[i..<(i + needle.count)]) == needle { return true }
        i += 1
    }
    return false
}
