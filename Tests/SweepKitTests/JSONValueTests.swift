import Testing
@testable import SweepKit

@Suite("JSONValue canonical text")
struct JSONValueTests {
    @Test("keys are sorted and integral numbers print without a fraction")
    func canonical() throws {
        let v: JSONValue = ["b": 1, "a": [1.5, "x", true, nil]]
        #expect(v.canonicalText == #"{"a":[1.5,"x",true,null],"b":1}"#)
    }

    @Test("parsing keeps booleans and numbers apart")
    func parse() throws {
        let v = try JSONValue.parse(#"{"t": true, "one": 1, "half": 0.5}"#)
        #expect(v["t"] == .bool(true))
        #expect(v["one"] == .number(1))
        #expect(v["half"]?.doubleValue == 0.5)
    }
}
