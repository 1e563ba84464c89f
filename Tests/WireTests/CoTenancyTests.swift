import SweepKit
import Testing

@testable import Wire

/// `--per-gpu`: a slot's `share` in hello and a result's `cotenancy`, from a hostile peer.
@Suite("Shared slots and co-tenants on the wire")
struct CoTenancyTests {
    func decode<T: WireMessage>(_: T.Type, _ text: String, as type: MessageType) throws -> T {
        try Envelope(type: type, header: Array(text.utf8)).decode(T.self)
    }

    func hello(slot: String) -> String {
        #"{"workerId":"w1","host":"h","pid":1,"engines":{},"running":[],"slots":["# + slot + "]}"
    }

    func result(_ cotenancy: String) -> String {
        #"{"attemptId":"a1","taskId":"t1","cotenancy":"# + cotenancy + "}"
    }

    func ids(_ n: Int) -> String { "[" + (0..<n).map { "\"t\($0 + 2)\"" }.joined(separator: ",") + "]" }

    @Test("a slot's share: 1 when absent (an older worker), 1...64 on a GPU, up to the slot limit on the CPU")
    func share() throws {
        let old = try decode(Hello.self, hello(slot: #"{"index":0,"device":"cuda:0"}"#), as: .hello)
        #expect(old.slots[0].share == 1 && !old.slots[0].isShared)
        let shared = try decode(Hello.self, hello(slot: #"{"index":0,"device":"cuda:0","share":64}"#), as: .hello)
        #expect(shared.slots[0].share == 64 && shared.slots[0].isShared)
        let cpu = try decode(Hello.self, hello(slot: #"{"index":0,"device":"cpu","share":1024}"#), as: .hello)
        #expect(cpu.slots[0].share == 1024)
        for bad in [
            #"{"index":0,"device":"cuda:0","share":65}"#, #"{"index":0,"device":"cuda:0","share":0}"#,
            #"{"index":0,"device":"cpu","share":1025}"#, #"{"index":0,"device":"cpu","share":-1}"#,
            #"{"index":0,"device":"cpu","share":1.5}"#, #"{"index":0,"device":"cpu","share":"2"}"#,
            #"{"index":0,"device":"cpu","share":1e20}"#,
        ] {
            #expect(throws: WireError.self, "\(bad)") { try decode(Hello.self, hello(slot: bad), as: .hello) }
        }
        // Round trip.
        let slot = SlotInfo(index: 3, device: "cuda:1", share: 4)
        let text = Hello(workerId: "w", host: "h", pid: 1, slots: [slot], engines: [:], running: []).json.canonicalText
        #expect(try decode(Hello.self, text, as: .hello).slots == [slot])
    }

    @Test("a result's co-tenants: optional, at most 64 ids, each once, never its own task, counts in range")
    func cotenancy() throws {
        let none = try decode(TaskResult.self, #"{"attemptId":"a1","taskId":"t1"}"#, as: .result)
        #expect(none.cotenancy == nil)
        let full = try decode(
            TaskResult.self, result(#"{"device":"cuda:0","taskIds":"# + ids(64) + #","atOnce":65}"#), as: .result)
        #expect(full.cotenancy?.taskIds.count == 64 && full.cotenancy?.atOnce == 65)
        #expect(full.cotenancy?.isShared == true)
        let alone = try decode(
            TaskResult.self, result(#"{"device":"cpu","taskIds":[],"atOnce":1}"#), as: .result)
        #expect(alone.cotenancy == CoTenancy(device: "cpu", taskIds: [], atOnce: 1))
        #expect(alone.cotenancy?.isShared == false)
        for bad in [
            #"{"device":"cuda:0","taskIds":"# + ids(65) + #","atOnce":2}"#,  // over the cap
            #"{"device":"cuda:0","taskIds":["t2"],"atOnce":0}"#,
            #"{"device":"cuda:0","taskIds":["t2"],"atOnce":1025}"#,
            #"{"device":"cuda:0","taskIds":["t2"],"atOnce":1e20}"#,
            #"{"device":"cuda:0","taskIds":["t2"],"atOnce":1}"#,  // a co-tenant means two at once
            #"{"device":"cuda:0","taskIds":["t2","t2"],"atOnce":2}"#,
            #"{"device":"cuda:0","taskIds":["t1"],"atOnce":2}"#,  // its own task
            #"{"device":"cuda:0","taskIds":["not an id"],"atOnce":2}"#,
            #"{"device":"cuda:0","taskIds":[7],"atOnce":2}"#,
            #"{"device":"","taskIds":[],"atOnce":1}"#,
            #"{"taskIds":[],"atOnce":1}"#,
            #"{"device":"cpu","taskIds":[]}"#,
            #""shared""#,
        ] {
            #expect(throws: WireError.self, "\(bad)") { try decode(TaskResult.self, result(bad), as: .result) }
        }
        let sent = TaskResult(
            attemptId: "a1", taskId: "t1", metrics: [:], units: [:], details: .null, artifacts: [],
            cotenancy: CoTenancy(device: "cuda:0", taskIds: ["t2", "t3"], atOnce: 3))
        #expect(try decode(TaskResult.self, sent.json.canonicalText, as: .result).cotenancy == sent.cotenancy)
    }
}
