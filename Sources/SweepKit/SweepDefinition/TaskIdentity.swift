import Crypto
import Foundation

/// How a task's id is derived.
///
/// The id is the hex SHA-256 of the canonical JSON (`JSONValue.canonicalText`: sorted keys,
/// integers without a fraction, no whitespace) of
///
///     {"sweep": name, "stage": stage, "params": {…}, "inputs": {stage: id},
///      "engine": engine, "data": {…} | null, "method": {…} | null, "measure": {…} | null}
///
/// where `method` is the definition of the task's `method` parameter (null for tasks without
/// one) and `data` / `measure` are the spec's sections with their defaults filled in. So:
/// relaunching an unchanged spec gives the same ids (finished cells are reused); editing a
/// cell's params, its method's definition, the data or what is measured gives a new cell, and
/// through `inputs` so does every task downstream of it; edits that change no task (the
/// description, report tables, retries, resources, comments, key order) keep every id.
public enum TaskIdentity {
    public static func id(
        sweep: String, stage: String, params: [String: JSONValue], inputs: [String: String],
        engine: String, data: JSONValue, method: JSONValue, measure: JSONValue
    ) -> String {
        let identity: JSONValue = .object([
            "sweep": .string(sweep),
            "stage": .string(stage),
            "params": .object(params),
            "inputs": .object(inputs.mapValues { .string($0) }),
            "engine": .string(engine),
            "data": data,
            "method": method,
            "measure": measure,
        ])
        return id(canonical: Array(identity.canonicalText.utf8))
    }

    /// The id of the identity whose canonical text is `canonical` (UTF-8): what `Planner`
    /// calls with the text it assembles from pieces.
    static func id(canonical: [UInt8]) -> String {
        let digest = SHA256.hash(data: canonical)
        // Lower-case hex, spelled out by hand: `String(format:)` per byte dominated planning time.
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in digest {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0f)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
