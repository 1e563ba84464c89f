import Foundation
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

@Suite("JSON parser")
struct JSONParserTests {
    @Test("parses what Foundation writes, escapes and surrogate pairs included")
    func agreesWithFoundation() throws {
        let object: [String: Any] = [
            "s": "tab\tquote\"slash\\ newline\n é 😀", "n": -12.5e-3, "i": 42, "b": false, "z": NSNull(),
            "a": [1, [2, ["x": "y"]]], "u": "\u{1}",
        ]
        let data = try JSONSerialization.data(withJSONObject: object)
        let v = try JSONValue.parse(data)
        #expect(v["s"]?.stringValue == "tab\tquote\"slash\\ newline\n é 😀")
        #expect(v["n"]?.doubleValue == -12.5e-3)
        #expect(v["i"] == .number(42))
        #expect(v["b"] == .bool(false))
        #expect(v["z"] == .null)
        #expect(v["a"] == [1, [2, ["x": "y"]]])
        #expect(v["u"]?.stringValue == "\u{1}")
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == .string("😀"))
        // The canonical text parses back to the same value.
        #expect(try JSONValue.parse(v.canonicalText) == v)
    }

    @Test("rejects malformed input with the byte offset")
    func rejects() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"open", "1 2", "{\"a\":1,}", "-", "\"\u{1}\""] {
            #expect(throws: JSONParseError.self, "should reject \(bad)") { try JSONValue.parse(bad) }
        }
    }
}

/// Found by the wire fuzzer (`make fuzz`): a high-surrogate escape followed by an escape that is
/// not a low surrogate overflowed the pairing arithmetic and trapped the coordinator.
@Suite("JSON parser: surrogate escapes")
struct JSONSurrogateTests {
    @Test("a high surrogate followed by a non-surrogate escape is U+FFFD and the second escape is kept")
    func unpaired() throws {
        #expect(try JSONValue.parse(#""\ud800\u0000""#) == .string("\u{FFFD}\u{0}"))
        #expect(try JSONValue.parse(#""\ud800\ue000""#) == .string("\u{FFFD}\u{E000}"))
        #expect(try JSONValue.parse(#""\ud800\ud800\udc00""#) == .string("\u{FFFD}\u{10000}"))
        #expect(try JSONValue.parse(#""\udc00""#) == .string("\u{FFFD}"))
    }

    @Test("a proper pair decodes to its scalar")
    func paired() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == .string("😀"))
    }
}
