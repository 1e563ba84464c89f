import Crypto
import Foundation

/// Content-addressed artifact files: hashing, and the layout both sides use
/// (`<root>/<sha256>` for verified files, `<root>/partial/<sha256>` while one arrives).
public enum ArtifactFiles {
    /// Hex SHA-256 of a file, read in 1 MiB pieces.
    public static func sha256(path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw WireError("cannot read artifact file \(path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            if data.isEmpty { break }
            hasher.update(data: data)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    public static func sha256(bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    public static func finalPath(root: String, sha256: String) -> String { "\(root)/\(sha256)" }
    public static func partialPath(root: String, sha256: String) -> String { "\(root)/partial/\(sha256)" }

    /// 64 lowercase ASCII hex digits: the only names the layout above may be given.
    /// (`Character.isHexDigit` also admits fullwidth digits, so bytes are checked instead.)
    public static func isValidHash(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    public static func fileSize(_ path: String) -> Int64? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attrs[.size] as? NSNumber
        else { return nil }
        return size.int64Value
    }
}

/// Seconds since 1970 as a Double: what the store and the protocol use for times.
public func wallClock() -> Double { Date().timeIntervalSince1970 }
