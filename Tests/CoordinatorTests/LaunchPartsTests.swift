import Foundation
import SweepKit
import Testing
import Wire
import ZeroMQ

@testable import Coordinator

/// A launch in parts (`launch_begin`, `launch_tasks`…, `launch_end`) against a real coordinator
/// in this process, over tcp loopback, with the state directory's token: the coordinator keeps
/// answering between parts, the sweep exists only once `launch_end` merged it, and every way a
/// client can get the parts wrong is refused with a sentence and launches nothing.
@Suite("A launch in parts", .serialized)
struct LaunchPartsTests {
    /// 300 tasks (a × b), one stage, null engine.
    static func plan(_ name: String) throws -> SweepPlan {
        try SpecLoader.plan(
            yaml: """
                name: \(name)
                engine: null
                data: {dataset: synthetic, train: 8, test: 8}
                grid:
                  a: [\((0..<30).map(String.init).joined(separator: ", "))]
                  b: [\((0..<10).map(String.init).joined(separator: ", "))]
                stages:
                  work:
                    params: {}
                retries: 0
                """, file: "\(name).yaml")
    }

    /// A coordinator in this process (no worker: tasks wait), and its control address.
    final class Scene: @unchecked Sendable {
        let state: String
        let coordinator: Coordinator
        let running: Task<Void, any Error>

        init(idle: Double = 600) throws {
            state = FileManager.default.temporaryDirectory.appendingPathComponent("sg-parts-\(UUID().uuidString)").path
            var config = CoordinatorConfig(
                stateDirectory: state, workerEndpoint: "tcp://127.0.0.1:*", controlEndpoint: "tcp://127.0.0.1:*")
            config.launchSessionIdle = idle
            coordinator = try Coordinator(config: config, version: "9.9.9-test")
            let coordinator = self.coordinator
            running = Task { try await coordinator.run() }
        }

        func stop() {
            coordinator.stop()
            try? FileManager.default.removeItem(atPath: state)
        }

        /// A new control connection (a DEALER with the token), like one CLI process.
        func client() throws -> Client { try Client(endpoint: coordinator.controlEndpoint, state: state) }

        func sweeps() throws -> [String] {
            try Self.query(state, "SELECT name FROM sweeps ORDER BY name")
        }

        func taskIds(_ sweep: String) throws -> [String] {
            try Self.query(state, "SELECT id FROM tasks WHERE sweep = '\(sweep)' AND active = 1 ORDER BY ordinal")
        }

        static func query(_ state: String, _ sql: String) throws -> [String] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [
                "python3", "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                    + "[print(r[0]) for r in c.execute(sys.argv[2])]", "\(state)/sparsegrid.db", sql,
            ]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
    }

    final class Client: @unchecked Sendable {
        let context: Context
        let socket: Socket
        let token: [UInt8]

        init(endpoint: String, state: String) throws {
            context = try Context()
            socket = try context.socket(.dealer)
            try socket.setLinger(milliseconds: 0)
            try socket.connect(endpoint)
            token = try ControlToken.read(path: ControlToken.path(state: state))
        }

        deinit { socket.close() }

        /// One request and its reply, off the cooperative pool (the coordinator's loop thread
        /// starts from it).
        func request<T: Encodable & Sendable>(_ type: MessageType, _ header: T) async throws -> ControlReply {
            try await Thread.offPool { [self] in
                try socket.send(Codec.frames(type, header, payload: token))
                let fired = try Poller.poll([PollItem(socket: socket, events: .readable)], timeoutMilliseconds: 120_000)
                guard fired[0].contains(.readable), let frames = try socket.receive(dontWait: true) else {
                    throw CoordinatorError("no reply from the control socket")
                }
                return try Codec.parse(frames, maxHeaderBytes: WireLimits.maxControlBytes).decode(ControlReply.self)
            }
        }

        func begin(_ plan: SweepPlan) async throws -> String {
            let reply = try await request(.launchBegin, LaunchBegin(plan: plan, tasks: plan.tasks.count))
            return try #require(reply.body["session"]?.stringValue, "launch_begin: \(reply.error ?? "")")
        }

        func part(_ session: String, _ plan: SweepPlan, _ range: Range<Int>) async throws -> ControlReply {
            try await request(
                .launchTasks, LaunchTasks(session: session, first: range.lowerBound, tasks: Array(plan.tasks[range])))
        }
    }

    @Test("three parts: status answers between them, the sweep exists only after launch_end, tasks in plan order")
    func inParts() async throws {
        let scene = try Scene()
        defer { scene.stop() }
        let plan = try Self.plan("parts")
        let client = try scene.client()
        let session = try await client.begin(plan)
        for (k, range) in [0..<100, 100..<200, 200..<300].enumerated() {
            let reply = try await client.part(session, plan, range)
            #expect(reply.ok && reply.body["received"]?.intValue == range.upperBound, "\(reply.error ?? "")")
            // Another client is served between parts, and sees no sweep yet.
            let status = try await scene.client().request(.status, StatusRequest())
            #expect(status.ok, "status between parts \(k): \(status.error ?? "")")
            #expect(status.body["sweeps"]?.arrayValue?.isEmpty == true)
            #expect(try scene.sweeps().isEmpty)
        }
        let end = try await client.request(.launchEnd, LaunchEnd(session: session))
        #expect(end.ok, "\(end.error ?? "")")
        #expect(end.body["new"]?.intValue == 300 && end.body["total"]?.intValue == 300)
        #expect(try scene.sweeps() == ["parts"])
        #expect(try scene.taskIds("parts") == plan.tasks.map(\.id))
        let status = try await client.request(.status, StatusRequest())
        #expect(status.body["sweeps"]?.arrayValue?.first?["total"]?.intValue == 300)

        // The same plan again, in parts: every task reused.
        let again = try await client.begin(plan)
        _ = try await client.part(again, plan, 0..<300)
        let second = try await client.request(.launchEnd, LaunchEnd(session: again))
        #expect(second.body["reused"]?.intValue == 300 && second.body["new"]?.intValue == 0, "\(second.error ?? "")")
    }

    @Test(
        "parts out of order, from another connection, past the announced count, or an early end: refused, nothing launched"
    )
    func refused() async throws {
        let scene = try Scene()
        defer { scene.stop() }
        let plan = try Self.plan("wrong")
        let client = try scene.client()
        let session = try await client.begin(plan)
        _ = try await client.part(session, plan, 0..<100)

        let skipped = try await client.part(session, plan, 200..<300)
        #expect(!skipped.ok && skipped.error?.contains("starts at task 200") == true, "\(skipped.error ?? "")")
        let stranger = try await scene.client().part(session, plan, 100..<200)
        #expect(!stranger.ok && stranger.error?.contains("no launch in progress") == true, "\(stranger.error ?? "")")
        let early = try await client.request(.launchEnd, LaunchEnd(session: session))
        #expect(
            !early.ok && early.error?.contains("announced 300 task(s) and 100 came") == true, "\(early.error ?? "")")
        #expect(try scene.sweeps().isEmpty)

        // The session survived those refusals: the rest, then the end, launch the sweep.
        _ = try await client.part(session, plan, 100..<300)
        let end = try await client.request(.launchEnd, LaunchEnd(session: session))
        #expect(end.ok && end.body["total"]?.intValue == 300, "\(end.error ?? "")")

        // More tasks than announced: refused, and the session is gone.
        var small = plan
        small.tasks = Array(plan.tasks.prefix(10))
        let over = try await client.begin(small)
        let tooMany = try await client.part(over, plan, 0..<20)
        #expect(!tooMany.ok && tooMany.error?.contains("announced 10 task(s)") == true, "\(tooMany.error ?? "")")
        let after = try await client.request(.launchEnd, LaunchEnd(session: over))
        #expect(!after.ok && after.error?.contains("no launch in progress") == true)
    }

    @Test("a task id in two parts is refused, naming it; the session ends and nothing of it is stored")
    func duplicateAcrossParts() async throws {
        let scene = try Scene()
        defer { scene.stop() }
        var plan = try Self.plan("dup")
        plan.tasks[150] = plan.tasks[20]
        let client = try scene.client()
        let session = try await client.begin(plan)
        #expect(try await client.part(session, plan, 0..<100).ok)
        let dup = try await client.part(session, plan, 100..<200)
        #expect(!dup.ok && dup.error?.contains("lists task \(plan.tasks[20].id) twice") == true, "\(dup.error ?? "")")
        let end = try await client.request(.launchEnd, LaunchEnd(session: session))
        #expect(!end.ok && end.error?.contains("no launch in progress") == true)
        #expect(try scene.sweeps().isEmpty)
        #expect(try Scene.query(scene.state, "SELECT count(*) FROM tasks") == ["0"])
    }

    @Test("a session idle past launchSessionIdle is dropped with what it staged: its next part is refused")
    func expires() async throws {
        let scene = try Scene(idle: 0.5)
        defer { scene.stop() }
        let plan = try Self.plan("idle")
        let client = try scene.client()
        let session = try await client.begin(plan)
        #expect(try await client.part(session, plan, 0..<100).ok)
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let late = try await client.part(session, plan, 100..<200)
        #expect(!late.ok && late.error?.contains("no launch in progress") == true, "\(late.error ?? "")")
        // A fresh launch of the same plan still works from the start.
        let fresh = try await client.begin(plan)
        _ = try await client.part(fresh, plan, 0..<300)
        let end = try await client.request(.launchEnd, LaunchEnd(session: fresh))
        #expect(end.ok && end.body["new"]?.intValue == 300, "\(end.error ?? "")")
    }
}
