import ArgumentParser
import Foundation
import ZeroMQ

struct KeygenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE keypair for a coordinator or a worker that talk over a network.",
        discussion: """
            Writes PATH.key (the secret key, readable only by you) and PATH.pub (the public key). \
            Then:

              coordinator:  sparsegrid coordinator --bind tcp://0.0.0.0:5555 --curve-key coord.key \\
                                --authorized-keys workers.txt     (one worker .pub key per line)
              each worker:  sparsegrid worker --coordinator tcp://HOST:5555 --curve-key worker.key \\
                                --server-key coord.pub
            """)

    @Argument(help: "Where to write: PATH.key and PATH.pub.")
    var path: String

    func run() async throws {
        try await userFacing {
            let pair = try ZMQ.curveKeypair()
            let secret = path + ".key", pub = path + ".pub"
            for file in [secret, pub] where FileManager.default.fileExists(atPath: file) {
                throw UserError("\(file) exists; choose another PATH or remove it first (keys are never overwritten).")
            }
            guard
                FileManager.default.createFile(
                    atPath: secret, contents: Data((pair.secretKey + "\n").utf8),
                    attributes: [.posixPermissions: 0o600])
            else { throw UserError("cannot write \(secret)") }
            try (pair.publicKey + "\n").write(toFile: pub, atomically: true, encoding: .utf8)
            print("secret key: \(secret) (keep it on this machine)")
            print("public key: \(pub): \(pair.publicKey)")
        }
    }
}

/// A Z85 key given inline (40 characters) or as a file holding it (first non-comment line).
func readKey(_ value: String, what: String) throws -> String {
    if value.count == 40, !FileManager.default.fileExists(atPath: value) { return value }
    guard let text = try? String(contentsOfFile: value, encoding: .utf8) else {
        throw UserError(
            "cannot read the \(what) from '\(value)': give a key file made by `sparsegrid keygen` "
                + "or the 40-character key itself.")
    }
    let keys = keyLines(text)
    guard let key = keys.first, key.count == 40 else {
        throw UserError("'\(value)' holds no 40-character CURVE key (\(what)); make one with `sparsegrid keygen`.")
    }
    return key
}

/// Keys in a file: one per line, blank lines and `#` comments ignored.
func keyLines(_ text: String) -> [String] {
    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") }
}
