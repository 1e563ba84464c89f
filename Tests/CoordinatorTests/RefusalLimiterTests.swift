import Foundation
import Testing

@testable import Coordinator

@Suite("Refusal lines are rate-limited per reason")
struct RefusalLimiterTests {
    @Test("the first refusal is logged, repeats within the interval are counted and reported with the next line")
    func limited() {
        let limiter = RefusalLimiter(interval: 60, capacity: 8)
        let t0 = Date(timeIntervalSince1970: 1_000)
        #expect(limiter.line(for: "key A refused", now: t0) == "key A refused")
        for s in 1...5 { #expect(limiter.line(for: "key A refused", now: t0 + Double(s)) == nil) }
        #expect(limiter.line(for: "key B refused", now: t0 + 2) == "key B refused")
        #expect(
            limiter.line(for: "key A refused", now: t0 + 61)
                == "key A refused (refused 5 more time(s) for the same reason in the last minute)")
        #expect(limiter.line(for: "key A refused", now: t0 + 62) == nil)
    }

    @Test("many distinct reasons stay bounded and each new one is still logged")
    func bounded() {
        let limiter = RefusalLimiter(interval: 60, capacity: 4)
        let t0 = Date(timeIntervalSince1970: 1_000)
        for i in 0..<100 { #expect(limiter.line(for: "key \(i)", now: t0) == "key \(i)") }
    }
}
