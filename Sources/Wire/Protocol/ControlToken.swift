import Foundation

/// The control socket's secret: 32 random bytes (hex) in `<state>/control.token`, readable by
/// the state directory's owner alone (mode 0600). Every control request carries it, so on a
/// shared machine another user cannot launch, cancel or retry sweeps, nor read live status.
/// docs/guarantees.md says what it protects and what it does not.
public enum ControlToken {
    public static func path(state: String) -> String { "\(state)/control.token" }

    /// Reads the token, or writes a new one (0600, created exclusively) if there is none.
    public static func loadOrCreate(state: String) throws -> [UInt8] {
        let path = path(state: state)
        if let existing = try? read(path: path) { return existing }
        var rng = SystemRandomNumberGenerator()
        let text = (0..<4).map { _ -> String in
            let hex = String(rng.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw WireError(
                "cannot create the control token \(path): \(String(cString: strerror(errno))). "
                    + "Check that the state directory is writable.")
        }
        defer { close(fd) }
        let bytes = Array((text + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw WireError("cannot write the control token \(path): \(String(cString: strerror(errno)))")
        }
        return Array(text.utf8)
    }

    /// Reads a token file; refuses one that others may read (the secret would not be one).
    public static func read(path: String) throws -> [UInt8] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let data = FileManager.default.contents(atPath: path)
        else {
            throw WireError(
                "cannot read the control token \(path): run this command as the user that runs the "
                    + "coordinator, with --state set to its state directory (or pass --token-file)",
                code: .unauthorized)
        }
        if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
            throw WireError(
                "the control token \(path) is readable by other users (mode \(String(mode, radix: 8))); "
                    + "run `chmod 600 \(path)`", code: .unauthorized)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.utf8.count == 64, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { throw WireError("the control token \(path) is not 64 hex characters", code: .unauthorized) }
        return Array(text.utf8)
    }

    /// Constant-time comparison (no early exit that would leak how much of a guess was right).
    public static func matches(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        guard presented.count == expected.count, !expected.isEmpty else { return false }
        var difference: UInt8 = 0
        for i in 0..<expected.count { difference |= presented[i] ^ expected[i] }
        return difference == 0
    }
}
