import CZeroMQ

// Socket options. Each setter names its ZMQ_ option in errors so a failure is traceable to
// the libzmq documentation.
extension Socket {
    /// How long `close()` keeps unsent messages before dropping them (-1: forever, which makes
    /// terminating the context hang on an unreachable peer; 0: drop at once).
    public func setLinger(milliseconds: Int32) throws {
        try setInt32(ZMQ_LINGER, "ZMQ_LINGER", milliseconds)
    }

    public var linger: Int32 { get throws { try getInt32(ZMQ_LINGER, "ZMQ_LINGER") } }

    /// How many outgoing messages may queue per peer before sends block or fail (0: no limit).
    public func setSendHighWaterMark(_ n: Int32) throws {
        try setInt32(ZMQ_SNDHWM, "ZMQ_SNDHWM", n)
    }

    /// How many incoming messages may queue per peer before the peer is throttled.
    public func setReceiveHighWaterMark(_ n: Int32) throws {
        try setInt32(ZMQ_RCVHWM, "ZMQ_RCVHWM", n)
    }

    /// The routing id this socket presents to a ROUTER peer (1–255 bytes, not starting with
    /// a zero byte). Set it before `connect`.
    public func setRoutingId(_ id: [UInt8]) throws {
        try setBytes(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", id)
    }

    /// The routing id of this socket (empty unless set).
    public var routingId: [UInt8] {
        get throws {
            let socket = try liveHandle(for: "zmq_getsockopt")
            var buffer = [UInt8](repeating: 0, count: 256)
            var size = buffer.count
            try zmqCall("zmq_getsockopt", detail: "ZMQ_ROUTING_ID") {
                zmq_getsockopt(socket, ZMQ_ROUTING_ID, &buffer, &size)
            }
            return Array(buffer.prefix(size))
        }
    }

    /// ROUTER only: sending to an unknown routing id throws `isHostUnreachable` instead of
    /// silently dropping the message.
    public func setRouterMandatory(_ on: Bool) throws {
        try setInt32(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", on ? 1 : 0)
    }

    /// Blocking receives give up after this long with `isAgain` (-1: wait forever).
    public func setReceiveTimeout(milliseconds: Int32) throws {
        try setInt32(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO", milliseconds)
    }

    /// Blocking sends give up after this long with `isAgain` (-1: wait forever).
    public func setSendTimeout(milliseconds: Int32) throws {
        try setInt32(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO", milliseconds)
    }

    /// Queue messages only to completed connections, so nothing waits for a peer that is
    /// not there yet.
    public func setImmediate(_ on: Bool) throws {
        try setInt32(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE", on ? 1 : 0)
    }

    /// The first reconnect waits `milliseconds`; later ones back off, doubling up to `max`
    /// (0: no back-off).
    public func setReconnectInterval(milliseconds: Int32, max: Int32) throws {
        try setInt32(ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL", milliseconds)
        try setInt32(ZMQ_RECONNECT_IVL_MAX, "ZMQ_RECONNECT_IVL_MAX", max)
    }

    /// Makes this socket a CURVE server with the given Z85 secret key. Set before `bind`.
    /// Clients are then checked by the context's ZAP handler (`CurveAuthenticator`); without
    /// one, libzmq accepts every client that knows the server's public key.
    public func setCurveServer(secretKey: String) throws {
        try ZMQ.requireZ85Key(secretKey, function: "zmq_setsockopt", role: "server secret key")
        try setInt32(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", 1)
        try setString(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", secretKey)
    }

    /// Makes this socket a CURVE client of the server with `serverPublicKey`, identifying
    /// itself with its own keypair. All keys are Z85. Set before `connect`.
    public func setCurveClient(serverPublicKey: String, publicKey: String, secretKey: String) throws {
        try ZMQ.requireZ85Key(serverPublicKey, function: "zmq_setsockopt", role: "server public key")
        try ZMQ.requireZ85Key(publicKey, function: "zmq_setsockopt", role: "client public key")
        try ZMQ.requireZ85Key(secretKey, function: "zmq_setsockopt", role: "client secret key")
        try setString(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", serverPublicKey)
        try setString(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", publicKey)
        try setString(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", secretKey)
    }

    /// The ZAP domain sent to the authenticator with each handshake on this socket.
    public func setZapDomain(_ domain: String) throws {
        try setString(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", domain)
    }

    /// SUB only: receive messages whose first frame starts with `prefix` (empty: all).
    public func subscribe(_ prefix: [UInt8]) throws {
        try setBytes(ZMQ_SUBSCRIBE, "ZMQ_SUBSCRIBE", prefix)
    }

    /// A peer that sends a message larger than this (bytes, all frames) is disconnected by
    /// libzmq before the message is delivered: a bound on what one peer can make us allocate.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        let socket = try liveHandle(for: "zmq_setsockopt")
        var value = bytes
        try zmqCall("zmq_setsockopt", detail: "ZMQ_MAXMSGSIZE = \(bytes)") {
            zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size)
        }
    }

    /// ROUTER only: a new connection with a routing id already in use takes it over (a
    /// worker that reconnects after a network cut keeps its identity, and so its attempts).
    public func setRouterHandover(_ on: Bool) throws {
        try setInt32(ZMQ_ROUTER_HANDOVER, "ZMQ_ROUTER_HANDOVER", on ? 1 : 0)
    }

    /// SUB only: undo one earlier `subscribe` with the same prefix.
    public func unsubscribe(_ prefix: [UInt8]) throws {
        try setBytes(ZMQ_UNSUBSCRIBE, "ZMQ_UNSUBSCRIBE", prefix)
    }

    // MARK: - Raw option access

    private func setInt32(_ option: Int32, _ name: String, _ value: Int32) throws(ZMQError) {
        let socket = try liveHandle(for: "zmq_setsockopt")
        var value = value
        try zmqCall("zmq_setsockopt", detail: "\(name) = \(value)") {
            zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size)
        }
    }

    private func getInt32(_ option: Int32, _ name: String) throws(ZMQError) -> Int32 {
        let socket = try liveHandle(for: "zmq_getsockopt")
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try zmqCall("zmq_getsockopt", detail: name) { zmq_getsockopt(socket, option, &value, &size) }
        return value
    }

    private func setBytes(_ option: Int32, _ name: String, _ bytes: [UInt8]) throws(ZMQError) {
        let socket = try liveHandle(for: "zmq_setsockopt")
        try zmqCall("zmq_setsockopt", detail: "\(name) (\(bytes.count) bytes)") {
            bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        }
    }

    /// Strings go in without their terminating NUL (libzmq takes the length it is given).
    /// The value is kept out of error text because it may be a secret key.
    private func setString(_ option: Int32, _ name: String, _ text: String) throws(ZMQError) {
        try setBytes(option, name, Array(text.utf8))
    }
}
