import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import SweepKit
import Synchronization
import Wire

extension APIServer {
    /// `GET /api/events`: server-sent events. `event: status` with the coordinator's live
    /// status JSON at once, then whenever it changes (looked at every `eventInterval`
    /// seconds, at most one event a second), a comment every 15 s to keep proxies from closing
    /// it, and the end after `eventStreamSeconds` (EventSource reconnects by itself).
    func events() throws -> Response {
        guard streams.enter(limit: maxEventStreams) else {
            throw APIError(.serviceUnavailable, "too many event streams open (\(maxEventStreams)); try again later")
        }
        let interval = max(eventInterval, 0.05), lifetime = eventStreamSeconds
        let cache = statusCache, streams = streams
        let body = ResponseBody { writer in
            defer { streams.leave() }
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            var last: String? = nil
            var quietSince = Date()
            let end = Date().addingTimeInterval(lifetime)
            while Date() < end, !Task.isCancelled {
                let data: String
                if let status = await cache.get() {
                    data = (try? String(decoding: Codec.encodeJSON(status), as: UTF8.self)) ?? "null"
                } else {
                    data = #"{"error":"the coordinator does not answer"}"#
                }
                // The clock moves every time; compare without it.
                let key = Self.changeKey(data)
                if key != last {
                    try await writer.write(ByteBuffer(string: "event: status\ndata: \(data)\n\n"))
                    last = key
                    quietSince = Date()
                } else if Date().timeIntervalSince(quietSince) >= 15 {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    quietSince = Date()
                }
                try await Task.sleep(for: .seconds(interval))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
            body: body)
    }

    /// The status JSON without its `now` field (which changes every time).
    static func changeKey(_ data: String) -> String {
        guard var object = try? JSONValue.parse(data).objectValue else { return data }
        object["now"] = nil
        if case .array(let workers)? = object["workers"] {
            object["workers"] = .array(
                workers.map { w in
                    guard var o = w.objectValue else { return w }
                    o["secondsSinceSeen"] = nil
                    return .object(o)
                })
        }
        return JSONValue.object(object).canonicalText
    }
}

/// The live status, fetched at most twice a second and one fetch at a time however many
/// requests and event streams ask (each fetch is a round trip on the control socket). A
/// failed fetch (the coordinator does not answer) is remembered for longer, `failureMaxAge`
/// seconds, so a dead coordinator costs one timeout every few seconds, not one per request.
final class StatusCache: Sendable {
    let source: any LiveStatusSource
    /// Seconds a fetched status is reused.
    let maxAge: Double
    /// Seconds a failed fetch is remembered before the coordinator is asked again.
    let failureMaxAge: Double
    static let defaultMaxAge = 0.5
    static let defaultFailureMaxAge = 3.0
    /// Seconds on some monotonic-enough clock (tests pass their own).
    let clock: @Sendable () -> Double
    private let state = Mutex<(at: Double, status: LiveStatus?)?>(nil)
    private let fetching = AsyncLock()

    init(
        source: any LiveStatusSource, maxAge: Double = defaultMaxAge, failureMaxAge: Double = defaultFailureMaxAge,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSinceReferenceDate }
    ) {
        self.source = source
        self.maxAge = maxAge
        self.failureMaxAge = failureMaxAge
        self.clock = clock
    }

    func get() async -> LiveStatus? {
        if let fresh = cached() { return fresh.status }
        await fetching.lock()
        defer { fetching.unlock() }
        if let fresh = cached() { return fresh.status }
        let source = self.source
        let status = try? await NIOThreadPool.singleton.runIfActive { try source.liveStatus() }
        let now = clock()
        state.withLock { $0 = (now, status) }
        return status
    }

    private func cached() -> (at: Double, status: LiveStatus?)? {
        let now = clock()
        return state.withLock { entry in
            guard let entry, now - entry.at < (entry.status == nil ? failureMaxAge : maxAge)
            else { return nil }
            return entry
        }
    }
}

/// A lock that suspends rather than blocks.
final class AsyncLock: Sendable {
    private let state = Mutex<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func lock() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resume = state.withLock { s -> Bool in
                if !s.locked {
                    s.locked = true
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if resume { c.resume() }
        }
    }

    func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.locked = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// How many event streams are open.
final class StreamCounter: Sendable {
    private let count = Mutex(0)
    var open: Int { count.withLock { $0 } }

    func enter(limit: Int) -> Bool {
        count.withLock {
            guard $0 < limit else { return false }
            $0 += 1
            return true
        }
    }

    func leave() { count.withLock { $0 -= 1 } }
}
