import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Socket {
    /// Sends all frames as one multipart message (delivered whole or not at all).
    ///
    /// Returns false only when `dontWait` is set and the message cannot be queued now
    /// (high-water mark reached, or no peer yet). A send timeout that runs out on a blocking
    /// send throws a `ZMQError` whose `isAgain` is true. A ROUTER with `ROUTER_MANDATORY`
    /// throws `isHostUnreachable` when the first frame names no connected peer.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        let socket = try liveHandle(for: "zmq_send")
        guard !frames.isEmpty else {
            throw ZMQError(
                errno: EINVAL, function: "zmq_send",
                detail: "a message with no frames (send at least one, possibly empty, frame)")
        }
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            do {
                try zmqCall("zmq_send", detail: "frame \(index + 1) of \(frames.count)") {
                    frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
                }
            } catch {
                // libzmq checks the high-water mark only at a message's first frame, so an
                // EAGAIN there means nothing of the message was queued.
                // (Written as an `if`, not a `catch … where`: Swift 6.3 crashes on the latter
                // with typed throws.)
                if error.isAgain && dontWait && index == 0 { return false }
                throw error
            }
        }
        return true
    }

    /// Receives one whole multipart message.
    ///
    /// Returns nil only when `dontWait` is set and no message is queued. A receive timeout
    /// that runs out on a blocking receive throws a `ZMQError` whose `isAgain` is true.
    /// A ROUTER's message starts with the sender's routing id.
    public func receive(dontWait: Bool = false) throws -> [[UInt8]]? {
        try receiveMessage(dontWait: dontWait)?.frames
    }

    /// Like `receive`, plus what libzmq knows about the sender: on a CURVE server, `userId`
    /// is the client's Z85 public key as accepted by `CurveAuthenticator`, so a message can
    /// be tied to the key that sent it.
    public func receiveMessage(dontWait: Bool = false) throws -> ReceivedMessage? {
        let socket = try liveHandle(for: "zmq_msg_recv")
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(message)
        defer {
            zmq_msg_close(message)
            message.deallocate()
        }
        var frames: [[UInt8]] = []
        var userId: String?
        var peerAddress: String?
        repeat {
            // libzmq delivers multipart messages atomically: once the first frame is here,
            // the rest are too, so only the first receive may honour `dontWait`.
            let flags: Int32 = dontWait && frames.isEmpty ? ZMQ_DONTWAIT : 0
            do {
                try zmqCall("zmq_msg_recv", detail: "frame \(frames.count + 1)") {
                    zmq_msg_recv(message, socket, flags)
                }
            } catch {
                if error.isAgain && dontWait && frames.isEmpty { return nil }
                throw error
            }
            // A ROUTER makes up the routing-id frame itself; metadata rides on the frames the
            // peer sent, so read it from the first two frames (the look-ups are per message, on
            // the hot path: not on every frame).
            if frames.count < 2 {
                if userId == nil { userId = property("User-Id", of: message) }
                if peerAddress == nil { peerAddress = property("Peer-Address", of: message) }
            }
            let count = zmq_msg_size(message)
            if count == 0 {
                frames.append([])
            } else {
                let bytes = UnsafeRawBufferPointer(start: zmq_msg_data(message), count: count)
                frames.append(Array(bytes))
            }
        } while zmq_msg_more(message) != 0
        return ReceivedMessage(frames: frames, userId: userId, peerAddress: peerAddress)
    }

    /// A metadata property of a received frame; nil when the transport does not set it.
    private func property(_ name: String, of message: UnsafeMutablePointer<zmq_msg_t>) -> String? {
        guard let value = zmq_msg_gets(message, name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}

/// A multipart message and what libzmq reports about its sender.
public struct ReceivedMessage: Sendable, Equatable {
    public let frames: [[UInt8]]
    /// The user id the ZAP handler gave the sender: for CURVE, its Z85 public key.
    public let userId: String?
    /// The sender's IP address on tcp connections.
    public let peerAddress: String?
}
