import Foundation

/// Where the HTTP server listens and the token it requires, checked before anything binds.
public struct HTTPServerConfig: Sendable, Equatable {
    public var host: String
    /// 0: a free port, chosen when the server binds.
    public var port: Int
    /// Every request must carry it (`Authorization: Bearer TOKEN` or `?token=TOKEN`); nil: none.
    public var token: String?

    public init(host: String, port: Int, token: String?) {
        self.host = host
        self.port = port
        self.token = token
    }

    /// The shortest token accepted, in characters.
    public static let minTokenLength = 16
    /// The longest token file read, in bytes.
    public static let maxTokenBytes = 4096

    /// `address` is HOST:PORT (`[::1]:8080` for IPv6). Off loopback a token file is required.
    /// Errors are sentences naming the flag.
    public static func make(address: String, tokenFile: String?) throws -> HTTPServerConfig {
        let (host, port) = try parse(address)
        var token: String? = nil
        if let tokenFile { token = try readToken(tokenFile) }
        if token == nil, !isLoopback(host) {
            throw HTTPConfigError(
                "--http \(address) is not a loopback address, and the HTTP server refuses to serve off loopback "
                    + "without an access token: pass --http-token-file FILE (a file holding a secret of at least "
                    + "\(minTokenLength) characters, e.g. `od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > FILE`), or bind "
                    + "127.0.0.1 and reach it through an SSH tunnel. Put TLS in front (a reverse proxy) when it "
                    + "crosses a network.")
        }
        return HTTPServerConfig(host: host, port: port, token: token)
    }

    static func parse(_ address: String) throws -> (String, Int) {
        let bad = HTTPConfigError(
            "--http takes HOST:PORT, e.g. 127.0.0.1:8080 (port 0 picks a free one; [::1]:8080 for IPv6), not '\(address.prefix(100))'."
        )
        guard address.count <= 300, let colon = address.lastIndex(of: ":") else { throw bad }
        var host = String(address[..<colon])
        let portText = address[address.index(after: colon)...]
        guard let port = Int(portText), (0...65535).contains(port), !portText.hasPrefix("+") else { throw bad }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { throw bad }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw bad
        }
        guard !host.isEmpty,
            host.unicodeScalars.allSatisfy({
                CharacterSet.alphanumerics.contains($0) || ".-:%_".unicodeScalars.contains($0)
            })
        else { throw bad }
        return (host, port)
    }

    /// 127.0.0.0/8, ::1 and localhost.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    static func readToken(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw HTTPConfigError("cannot read --http-token-file \(path): no such readable file.")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxTokenBytes + 1)) ?? Data()
        guard data.count <= maxTokenBytes else {
            throw HTTPConfigError(
                "--http-token-file \(path) is longer than \(maxTokenBytes) bytes: it should hold one token.")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HTTPConfigError("--http-token-file \(path) is not UTF-8 text.")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= minTokenLength, token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else {
            throw HTTPConfigError(
                "--http-token-file \(path) must hold one token of at least \(minTokenLength) printable ASCII characters "
                    + "without spaces (e.g. `od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > \(path)`).")
        }
        return token
    }
}

public struct HTTPConfigError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
