import CZeroMQ

/// Library-wide facts and CURVE key helpers.
public enum ZMQ {
    /// The version of the libzmq this process linked against.
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    /// Whether libzmq was built with a capability: "curve", "ipc", "gssapi", "draft", ...
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }

    /// A new CURVE keypair, both keys in Z85 text (40 characters each).
    public static func curveKeypair() throws -> (publicKey: String, secretKey: String) {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        try zmqCall("zmq_curve_keypair") { zmq_curve_keypair(&publicKey, &secretKey) }
        return (decodeCString(publicKey), decodeCString(secretKey))
    }

    /// The Z85 public key that belongs to a Z85 secret key.
    public static func curvePublic(fromSecret secretKey: String) throws -> String {
        try requireZ85Key(secretKey, function: "zmq_curve_public", role: "secret key")
        var publicKey = [CChar](repeating: 0, count: 41)
        try zmqCall("zmq_curve_public", detail: "a secret key") {
            zmq_curve_public(&publicKey, secretKey)
        }
        return decodeCString(publicKey)
    }

    /// Z85 text for bytes whose count is a multiple of 4 (a CURVE key: 32 bytes → 40 chars).
    public static func z85Encode(_ bytes: [UInt8]) throws -> String {
        guard bytes.count % 4 == 0 else {
            throw ZMQError(
                errno: EINVAL, function: "zmq_z85_encode",
                detail: "\(bytes.count) bytes (Z85 needs a multiple of 4)")
        }
        var text = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
        let encoded = bytes.withUnsafeBufferPointer { zmq_z85_encode(&text, $0.baseAddress, $0.count) }
        guard encoded != nil else {
            throw ZMQError(errno: EINVAL, function: "zmq_z85_encode", detail: "\(bytes.count) bytes")
        }
        return decodeCString(text)
    }

    /// The bytes behind Z85 text whose length is a multiple of 5.
    public static func z85Decode(_ text: String) throws -> [UInt8] {
        let length = text.utf8.count
        guard length % 5 == 0 else {
            throw ZMQError(
                errno: EINVAL, function: "zmq_z85_decode",
                detail: "text of \(length) characters (Z85 needs a multiple of 5)")
        }
        var bytes = [UInt8](repeating: 0, count: length * 4 / 5)
        guard zmq_z85_decode(&bytes, text) != nil else {
            throw ZMQError(
                errno: EINVAL, function: "zmq_z85_decode",
                detail: "text that contains characters outside the Z85 alphabet")
        }
        return bytes
    }

    /// CURVE keys travel as 40-character Z85 text; catching a wrong length here gives a
    /// clearer message than libzmq's bare EINVAL.
    static func requireZ85Key(_ key: String, function: String, role: String) throws(ZMQError) {
        guard key.utf8.count == 40 else {
            throw ZMQError(
                errno: EINVAL, function: function,
                detail:
                    "a CURVE \(role) of \(key.utf8.count) characters (expected 40 Z85 characters from ZMQ.curveKeypair())"
            )
        }
    }

    private static func decodeCString(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
