/// The ZAP protocol (ZeroMQ RFC 27) as plain values: parsing a request, deciding on it, and
/// building the reply. No sockets, so the decisions can be tested on their own.
struct ZAPRequest: Equatable {
    let requestId: [UInt8]
    let domain: String
    let address: String
    let mechanism: String
    /// For CURVE: one frame, the client's 32-byte public key.
    let credentials: [[UInt8]]

    /// Frames: version "1.0", request id, domain, address, identity, mechanism, credentials….
    /// Nil when the frames do not form a version 1.0 request.
    init?(frames: [[UInt8]]) {
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else { return nil }
        requestId = frames[1]
        domain = String(decoding: frames[2], as: UTF8.self)
        address = String(decoding: frames[3], as: UTF8.self)
        mechanism = String(decoding: frames[5], as: UTF8.self)
        credentials = Array(frames.dropFirst(6))
    }
}

enum ZAPDecision: Equatable {
    /// `userId` becomes the message property "User-Id" of everything this peer sends.
    case accept(userId: String)
    case reject(reason: String)
}

/// Accepts CURVE clients whose public key is on the allow-list of the socket's ZAP domain;
/// refuses everything else. A domain with a list of its own (`domainKeys`) admits only those
/// keys, so a key admitted to one socket (a worker's) does not open another (the control socket).
struct ZAPPolicy {
    /// Z85 public keys, normalised by `ZAPPolicy.normalise`, for domains without a list of their own.
    var allowedPublicKeys: Set<String>
    /// Domain → its own allow-list.
    var domainKeys: [String: Set<String>] = [:]

    func decide(_ request: ZAPRequest) -> ZAPDecision {
        let peer = request.address.isEmpty ? "an unknown address" : request.address
        guard request.mechanism == "CURVE" else {
            return .reject(
                reason:
                    "Refused a \(request.mechanism) client from \(peer) (ZAP domain '\(request.domain)'): only CURVE clients with an allowed public key may connect."
            )
        }
        guard request.credentials.count == 1, request.credentials[0].count == 32,
            let key = try? ZMQ.z85Encode(request.credentials[0])
        else {
            return .reject(reason: "Refused a CURVE client from \(peer): its credentials are not a 32-byte public key.")
        }
        guard (domainKeys[request.domain] ?? allowedPublicKeys).contains(key) else {
            return .reject(
                reason:
                    "Refused a CURVE client from \(peer) (ZAP domain '\(request.domain)'): its public key \(key) is not on the allow-list; add it to the allowed keys to let this client in."
            )
        }
        return .accept(userId: key)
    }

    /// The reply frames: version, request id, status code, status text, user id, metadata.
    static func reply(to requestId: [UInt8], _ decision: ZAPDecision) -> [[UInt8]] {
        switch decision {
        case .accept(let userId):
            return [Array("1.0".utf8), requestId, Array("200".utf8), Array("OK".utf8), Array(userId.utf8), []]
        case .reject:
            return [Array("1.0".utf8), requestId, Array("400".utf8), Array("Not allowed".utf8), [], []]
        }
    }

    /// The reply to frames that are not a request, so the REP socket stays in step.
    static func replyToMalformed(_ frames: [[UInt8]]) -> [[UInt8]] {
        let requestId = frames.count > 1 ? frames[1] : []
        return [Array("1.0".utf8), requestId, Array("500".utf8), Array("Malformed ZAP request".utf8), [], []]
    }

    /// The canonical Z85 spelling of a public key, or an error that says what is wrong.
    static func normalise(_ key: String) throws -> String {
        try ZMQ.requireZ85Key(key, function: "CurveAuthenticator", role: "allowed public key '\(key)'")
        return try ZMQ.z85Encode(ZMQ.z85Decode(key))
    }
}
