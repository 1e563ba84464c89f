import SweepKit
import Testing
import Wire
import ZeroMQ

@testable import Worker

/// The socket monitor's report that the coordinator refused this worker's CURVE key, as the
/// session turns it into words (the monitor itself: ZeroMQTests' MonitorTests; the whole path:
/// SystemTests' AllowListReloadTests).
@Suite("A refused CURVE key is explained")
struct KeyRefusalTests {
    private func curveSession(connectTimeout: Double?) throws -> (WorkerSession, String) {
        let pair = try ZMQ.curveKeypair()
        let server = try ZMQ.curveKeypair()
        let config = WorkerConfig(
            coordinator: coordinatorAddress, workerId: "w1", host: "node1",
            slots: [SlotInfo(index: 0, device: "cpu")], engines: [:],
            cacheDirectory: "/tmp/sparsegrid-worker-tests", describeEngines: false,
            connectTimeout: connectTimeout,
            curve: CurveClientConfig(
                serverPublicKey: server.publicKey, publicKey: pair.publicKey, secretKey: pair.secretKey))
        return (WorkerSession(config: config, pid: 1, engines: [:]), pair.publicKey)
    }

    @Test("logged once as an error with the key, its fingerprint and what to do; the connect timeout repeats it")
    func refusal() throws {
        var (s, key) = try curveSession(connectTimeout: 2)
        s.start(now: 0)
        _ = s.drainEffects()
        s.keyRefused(status: 400, endpoint: coordinatorAddress, now: 0.1)
        s.keyRefused(status: 400, endpoint: coordinatorAddress, now: 0.2)
        let logs = s.drain().compactMap { seen -> String? in if case .log(let m) = seen { m } else { nil } }
        #expect(logs.count == 1, "said once, not at every retry: \(logs)")
        let fingerprint = WorkerSession.keyFingerprint(key)
        #expect(fingerprint == "SHA256:" + ArtifactFiles.sha256(bytes: try ZMQ.z85Decode(key)).prefix(16))
        let line = try #require(logs.first)
        #expect(line.contains("refused this worker's CURVE key (ZAP status 400)"))
        #expect(line.contains(key) && line.contains(fingerprint))
        #expect(line.contains("--authorized-keys") && line.contains("SIGHUP"))
        #expect(line.hasSuffix("This worker keeps retrying."))

        var failure: String? = nil
        var t = 0.2
        while t < 10, failure == nil {
            t += 0.05
            s.tick(now: t)
            for seen in s.drain() { if case .fail(let sentence) = seen { failure = sentence } }
        }
        let sentence = try #require(failure)
        #expect(sentence.contains(key) && sentence.hasSuffix("Gave up after --connect-timeout 2 s."))
    }

    @Test("a welcome clears it: a later refusal is reported again")
    func welcomeClears() throws {
        var (s, _) = try curveSession(connectTimeout: nil)
        s.start(now: 0)
        s.keyRefused(status: 400, endpoint: "", now: 0.1)
        #expect(s.refusal?.contains("at \(coordinatorAddress) refused") == true, "no endpoint: the configured one")
        s.received(welcome(), now: 0.2)
        #expect(s.refusal == nil)
        _ = s.drainEffects()
        s.keyRefused(status: 400, endpoint: coordinatorAddress, now: 0.3)
        #expect(s.drain().contains { if case .log(let m) = $0 { m.contains("refused") } else { false } })
    }
}
