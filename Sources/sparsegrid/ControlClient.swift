import ArgumentParser
import Foundation
import Wire
import ZeroMQ

/// A request/reply client for the coordinator's control socket.
final class ControlClient {
    private let context: Context
    private let socket: Socket
    private let token: [UInt8]
    let endpoint: String

    /// Authenticates with CURVE keys when `credentials` has them (a remote control socket),
    /// else with the control token (`<state>/control.token` unless --token-file says).
    init(endpoint: String, state: String, credentials: ControlAuth = ControlAuth()) throws {
        self.endpoint = endpoint
        let tokenPath = credentials.tokenFile ?? ControlToken.path(state: state)
        context = try Context()
        socket = try context.socket(.dealer)
        try socket.setLinger(milliseconds: 0)
        if let keyFile = credentials.curveKey, let serverKey = credentials.serverKey {
            let secret = try readKey(keyFile, what: "your secret key")
            try socket.setCurveClient(
                serverPublicKey: try readKey(serverKey, what: "coordinator's public key"),
                publicKey: try ZMQ.curvePublic(fromSecret: secret), secretKey: secret)
            token = (try? ControlToken.read(path: tokenPath)) ?? []
        } else {
            do {
                token = try ControlToken.read(path: tokenPath)
            } catch {
                throw UserError("\(error)")
            }
        }
        do {
            try socket.connect(endpoint)
        } catch {
            throw UserError(
                "'\(endpoint)' is not a coordinator address: \(error). Pass the control address "
                    + "`sparsegrid coordinator` printed, e.g. --coordinator \(defaultControlEndpoint).")
        }
    }

    deinit { socket.close() }

    func request<T: Encodable>(_ type: MessageType, _ header: T, timeout: Double = 5) throws -> ControlReply {
        try socket.send(Codec.frames(type, header, payload: token))
        let fired = try Poller.poll(
            [PollItem(socket: socket, events: .readable)],
            timeoutMilliseconds: Int(timeout * 1000))
        guard fired[0].contains(.readable), let frames = try socket.receive(dontWait: true) else {
            throw UserError(
                "no coordinator answered at \(endpoint) within \(Int(timeout)) s. Start one with "
                    + "`sparsegrid coordinator --state DIR` (it prints its control address), or pass the right "
                    + "address with --coordinator; for a finished sweep, `sparsegrid results --state DIR` reads the "
                    + "database without a coordinator.")
        }
        let reply = try Codec.parse(frames, maxHeaderBytes: WireLimits.maxControlBytes).decode(ControlReply.self)
        if !reply.ok { throw UserError(reply.error ?? "the coordinator refused the request") }
        return reply
    }
}

/// How a CLI command proves it may use a coordinator's control socket.
struct ControlCredentials: ParsableArguments {
    @Option(name: .customLong("token-file"), help: "The control token file (default: <state>/control.token).")
    var tokenFile: String?

    @Option(
        name: .customLong("curve-key"),
        help:
            "Your CURVE secret key file, for a coordinator whose control socket takes CURVE clients (--authorized-clients)."
    )
    var curveKey: String?

    @Option(
        name: .customLong("server-key"),
        help: "The coordinator's public key (its .pub file or the 40-character key), with --curve-key.")
    var serverKey: String?

    func validate() throws {
        if (curveKey == nil) != (serverKey == nil) {
            throw ValidationError(
                "--curve-key and --server-key go together: your secret key and the coordinator's public key.")
        }
    }

    var auth: ControlAuth { ControlAuth(tokenFile: tokenFile, curveKey: curveKey, serverKey: serverKey) }
}

/// The credentials themselves (the option group is only for parsing).
struct ControlAuth {
    var tokenFile: String? = nil
    var curveKey: String? = nil
    var serverKey: String? = nil
}

/// How a command finds and reaches a coordinator, the same for every command that talks to
/// one: `--state` (the running coordinator's address is read from its coordinator.json, the
/// control token from control.token), `--coordinator` (its address, instead of looking), and
/// the credentials.
struct CoordinatorAccess: ParsableArguments {
    @Option(
        name: .long,
        help:
            "State directory: the running coordinator's address and control token are read from here (and its database, where a command can work without a coordinator)."
    )
    var state: String = defaultStateDirectory

    @Option(name: .long, help: "The coordinator's control address (default: the coordinator running on --state).")
    var coordinator: String?

    @OptionGroup var credentials: ControlCredentials

    /// --coordinator, else the control address of the coordinator running on --state; nil when
    /// neither (no --coordinator, and no live coordinator recorded in the state directory).
    var endpoint: String? { coordinator ?? CoordinatorInfo.read(state: state)?.controlEndpoint }

    /// The coordinator's address for a command that cannot work without one.
    func requiredEndpoint() throws -> String {
        guard let endpoint else {
            throw UserError(
                "no coordinator is running on \(state) (no \(CoordinatorInfo.path(state: state)) of a live process). "
                    + "Start one with `sparsegrid coordinator --state \(state)`, pass the state directory it uses "
                    + "with --state DIR, or its control address with --coordinator ADDR.")
        }
        return endpoint
    }

    func client(_ endpoint: String) throws -> ControlClient {
        try ControlClient(endpoint: endpoint, state: state, credentials: credentials.auth)
    }
}
