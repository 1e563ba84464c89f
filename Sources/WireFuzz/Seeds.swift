import Foundation
import SweepKit
import Wire

/// The seed corpus (`Tests/Fixtures/wire-corpus/`, written by `WireFuzz --write-seeds DIR`):
/// a valid message of every type as the encoders write it, the inputs that crashed the
/// coordinator before `Fields` checked ranges, and boundary values of the framing and of the
/// data-socket checks, and what this fuzzer found. Hand-written headers are the ones no encoder
/// can produce. Inputs libFuzzer found are copied into the directory as they are
/// (`finding-libfuzzer-<hash>`); `--write-seeds` leaves them alone.
enum Seeds {
    typealias Seed = (name: String, frames: [[UInt8]])

    static let sha = String(repeating: "ab", count: 32)
    static let token = Array(String(repeating: "0f", count: 32).utf8)

    static func all() throws -> [Seed] {
        try valid() + formerCrashers() + boundaries() + findings()
    }

    /// Frames of a message whose header is given as text.
    static func raw(_ type: String, _ header: String, payload: [UInt8]? = nil) -> [[UInt8]] {
        [Array(wireVersion.utf8), Array(type.utf8), Array(header.utf8)] + (payload.map { [$0] } ?? [])
    }

    // MARK: - Valid messages, from the encoders

    static func valid() throws -> [Seed] {
        let slots = [SlotInfo(index: 0, device: "cuda:0", memoryMiB: 81_559), SlotInfo(index: 1, device: "cpu")]
        let engines: [String: JSONValue] = ["null": ["version": "1"], "sparsity": ["models": ["resnet18"]]]
        let metrics: [String: Double?] = ["top1": 0.9312, "latency_sparse_ms": nil]
        let artifact = ProducedArtifact(name: "checkpoint", sha256: sha, bytes: 44_700_000)
        let input = InputArtifact(taskId: "t-train", name: "checkpoint", sha256: sha, bytes: 44_700_000)
        let plan = SweepPlan(
            name: "quick", engine: "null", context: ["data": ["name": "cifar10", "images": 512]],
            tasks: [
                PlannedTask(
                    id: "t-train", stage: "train", params: ["model": "resnet18", "seed": 0], inputs: [:],
                    priority: 1),
                PlannedTask(
                    id: "t-prune", stage: "prune", params: ["method": "magnitude", "sparsity": 0.5],
                    inputs: ["train": "t-train"], priority: 0),
            ],
            retries: 1, device: "any",
            reports: [ReportSpec(title: "Accuracy", rows: "model", columns: "method", values: ["top1"])],
            specText: "name: quick\n")
        let status = LiveStatus(
            now: 1_790_000_100, startedAt: 1_790_000_000,
            sweeps: [
                .init(
                    name: "quick", counts: ["running": 1, "ready": 3], total: 4, cancelled: false,
                    waitingReason: nil)
            ],
            workers: [
                .init(
                    id: "w1", host: "gpu-1", slots: 2, alive: true, secondsSinceSeen: 0.4,
                    running: [
                        .init(
                            attemptId: "a1", taskId: "t-train", label: "resnet18 seed 0",
                            startedAt: 1_790_000_050, progress: ["epoch": 3])
                    ])
            ])

        return [
            // worker → coordinator
            (
                "hello",
                Codec.frames(
                    .hello,
                    Hello(
                        workerId: "gpu-1.w0", host: "gpu-1", pid: 4242, slots: slots,
                        engines: engines, running: []))
            ),
            (
                "hello-reconnect",
                Codec.frames(
                    .hello,
                    Hello(
                        workerId: "w1", host: "h", pid: 1, slots: [],
                        engines: [:], running: ["a1", "a2"]))
            ),
            ("ready", Codec.frames(.ready, Ready(credits: 64))),
            ("ready-zero", Codec.frames(.ready, Ready(credits: 0))),
            ("heartbeat", Codec.frames(.heartbeat, Heartbeat(running: ["a1", "a2"]))),
            ("heartbeat-coordinator", Codec.frames(.heartbeat, Empty())),
            (
                "progress",
                Codec.frames(
                    .progress,
                    TaskProgress(
                        attemptId: "a1", event: ["event": "progress", "epoch": 3, "loss": 0.731]))
            ),
            (
                "result",
                Codec.frames(
                    .result,
                    TaskResult(
                        attemptId: "a1", taskId: "t-train", metrics: metrics,
                        units: ["top1": "fraction", "latency_sparse_ms": "ms, median of 50"],
                        details: ["device": "cuda:0", "layers": [0.5, 0.5]], artifacts: [artifact], credit: 1))
            ),
            (
                "result-cotenancy",
                Codec.frames(
                    .result,
                    TaskResult(
                        attemptId: "a3", taskId: "t3", metrics: ["latency_sparse_ms": 1.25], units: [:],
                        details: .null, artifacts: [], credit: 1,
                        cotenancy: CoTenancy(device: "cuda:0", taskIds: ["t4", "t5"], atOnce: 3)))
            ),
            (
                "hello-per-gpu",
                Codec.frames(
                    .hello,
                    Hello(
                        workerId: "gpu-1", host: "gpu-1", pid: 7,
                        slots: [
                            SlotInfo(index: 0, device: "cuda:0", share: 2),
                            SlotInfo(index: 1, device: "cuda:0", share: 2),
                        ],
                        engines: ["null": ["version": "1"]], running: []))
            ),
            (
                "result-minimal",
                Codec.frames(
                    .result,
                    TaskResult(
                        attemptId: "a2", taskId: "t2", metrics: [:], units: [:], details: .null, artifacts: []))
            ),
            (
                "failed",
                Codec.frames(
                    .failed,
                    TaskFailed(
                        attemptId: "a1", taskId: "t-train", error: "engine exited with status 1", exitCode: 1,
                        stderrTail: "Traceback (most recent call last):\n  RuntimeError: CUDA out of memory\n",
                        retryable: true, credit: 1))
            ),
            (
                "failed-invalid",
                Codec.frames(
                    .failed,
                    TaskFailed(
                        attemptId: "a3", taskId: "t3", error: "unknown model", exitCode: 2, stderrTail: nil,
                        retryable: false))
            ),
            ("bye", Codec.frames(.bye, Empty())),
            // coordinator → worker
            (
                "welcome",
                Codec.frames(
                    .welcome,
                    Welcome(
                        heartbeatInterval: 1, deadAfter: 10.5,
                        dataEndpoint: "tcp://10.0.0.1:5556"))
            ),
            (
                "assign",
                Codec.frames(
                    .assign,
                    Assign(
                        attemptId: "a4", taskId: "t-prune", sweep: "quick", stage: "prune", engine: "sparsity",
                        params: ["method": "magnitude", "sparsity": 0.5], method: ["kind": "unstructured"],
                        data: ["name": "cifar10"], measure: ["batches": 10], inputs: ["train": input], device: "gpu"))
            ),
            ("cancel", Codec.frames(.cancel, Cancel(attemptId: "a4", reason: "sweep cancelled"))),
            ("reject", Codec.frames(.reject, Reject(.notAllowed, "a worker may not send `assign`"))),
            ("reject-unknown-worker", Codec.frames(.reject, Reject(.unknownWorker, "say hello first"))),
            ("ack", Codec.frames(.ack, Ack(attemptId: "a1", outcome: .stored))),
            ("ack-refused", Codec.frames(.ack, Ack(attemptId: "a9", outcome: .refused))),
            // data socket
            ("stat", try Codec.frames(.stat, Stat(sha256: sha, bytes: 44_700_000))),
            ("have", try Codec.frames(.have, Have(sha256: sha, offset: 1 << 20, complete: false))),
            ("put", try Codec.frames(.put, Put(sha256: sha, offset: 0, total: 5), payload: Array("bytes".utf8))),
            ("put-empty-file", try Codec.frames(.put, Put(sha256: sha, offset: 0, total: 0))),
            ("put-ack", try Codec.frames(.putAck, PutAck(sha256: sha, offset: 5, complete: true))),
            (
                "put-ack-error",
                try Codec.frames(
                    .putAck,
                    PutAck(
                        sha256: sha, offset: 0, complete: false,
                        error: "hash mismatch"))
            ),
            ("get", try Codec.frames(.get, Get(sha256: sha, offset: 0, length: artifactChunkBytes))),
            ("chunk", try Codec.frames(.chunk, Chunk(sha256: sha, offset: 3, total: 5), payload: Array("es".utf8))),
            ("missing", try Codec.frames(.missing, Missing(sha256: sha, reason: "no such artifact"))),
            // control socket (the token rides in the payload frame)
            ("launch", try Codec.frames(.launch, LaunchRequest(plan: plan), payload: token)),
            (
                "launch-begin",
                try Codec.frames(.launchBegin, LaunchBegin(plan: plan, tasks: plan.tasks.count), payload: token)
            ),
            (
                "launch-tasks",
                try Codec.frames(
                    .launchTasks, LaunchTasks(session: "0123456789abcdef0123456789abcdef", first: 0, tasks: plan.tasks),
                    payload: token)
            ),
            (
                "launch-end",
                try Codec.frames(.launchEnd, LaunchEnd(session: "0123456789abcdef0123456789abcdef"), payload: token)
            ),
            ("status", try Codec.frames(.status, StatusRequest(), payload: token)),
            ("cancel-sweep", try Codec.frames(.cancelSweep, SweepRequest(sweep: "quick"), payload: token)),
            ("retry-sweep", try Codec.frames(.retrySweep, SweepRequest(sweep: "quick"), payload: token)),
            ("reply", try Codec.frames(.reply, ControlReply(ok: true, body: ["sweep": "quick", "new": 2]))),
            ("reply-error", try Codec.frames(.reply, ControlReply(ok: false, error: "there is no sweep named 'x'"))),
            (
                "reply-status",
                try Codec.frames(
                    .reply,
                    ControlReply(
                        ok: true, body: try JSONValue.parse(Data(Codec.encodeJSON(status)))))
            ),
        ]
    }

    // MARK: - Inputs that crashed the coordinator before every field was range-checked

    static func formerCrashers() -> [Seed] {
        [
            // Int32(1e10) trapped.
            (
                "crasher-failed-exitcode-1e10",
                raw(
                    "failed",
                    #"{"attemptId":"a1","taskId":"t1","error":"boom","#
                        + #""exitCode":10000000000,"retryable":true}"#)
            ),
            // Int64(1e20) trapped.
            (
                "crasher-result-artifact-bytes-1e20",
                raw(
                    "result",
                    #"{"attemptId":"a1","taskId":"t1","metrics":{},"#
                        + #""artifacts":[{"name":"checkpoint","sha256":"\#(sha)","#
                        + #""bytes":1e20}]}"#)
            ),
            // Int(1e20) trapped.
            ("crasher-ready-credits-1e20", raw("ready", #"{"credits":1e20}"#)),
            // Progress for an attempt the coordinator never assigned.
            (
                "crasher-progress-unknown-attempt",
                Codec.frames(
                    .progress,
                    TaskProgress(
                        attemptId: "a-unknown-424242", event: ["event": "progress", "epoch": 1]))
            ),
        ]
    }

    // MARK: - Found by this fuzzer (libFuzzer's own input is kept beside them: finding-libfuzzer-*)

    static func findings() -> [Seed] {
        [
            // JSONParser.string(): a \uD800–\uDBFF escape followed by a \u escape below \uDC00
            // overflows UInt32 in the surrogate-pair arithmetic and traps (found 2026-11-30, unfixed
            // when added). Any header reaches it; `hello` is the first message on the worker socket.
            (
                "finding-hello-host-high-surrogate-then-escape",
                raw("hello", #"{"workerId":"w1","host":"\ud800\u0041","pid":1,"slots":[],"engines":{}}"#)
            ),
            ("finding-json-high-surrogate-then-nul", [Array(#""\ud800\u0000""#.utf8)]),
        ]
    }

    // MARK: - Boundaries

    static func boundaries() -> [Seed] {
        [
            ("ready-credits-negative", raw("ready", #"{"credits":-1}"#)),
            ("ready-credits-over-limit", raw("ready", #"{"credits":65537}"#)),
            ("ready-credits-fraction", raw("ready", #"{"credits":1.5}"#)),
            (
                "failed-exitcode-below-int32",
                raw(
                    "failed",
                    #"{"attemptId":"a1","taskId":"t1","error":"e","#
                        + #""exitCode":-2147483649}"#)
            ),
            (
                "hello-pid-2pow31",
                raw(
                    "hello",
                    #"{"workerId":"w","host":"h","pid":2147483648,"slots":[],"#
                        + #""engines":{}}"#)
            ),
            (
                "hello-host-control-char",
                raw(
                    "hello",
                    #"{"workerId":"w","host":"h\u0007","pid":1,"slots":[],"#
                        + #""engines":{}}"#)
            ),
            (
                "result-artifact-bytes-2pow63",
                raw(
                    "result",
                    #"{"attemptId":"a1","taskId":"t1","artifacts":"#
                        + #"[{"name":"c","sha256":"\#(sha)","bytes":9223372036854775808}]}"#)
            ),
            (
                "hello-share-over-gpu-limit",
                raw(
                    "hello",
                    #"{"workerId":"w","host":"h","pid":1,"engines":{},"#
                        + #""slots":[{"index":0,"device":"cuda:0","share":65}]}"#)
            ),
            (
                "result-cotenants-over-cap",
                raw(
                    "result",
                    #"{"attemptId":"a1","taskId":"t1","cotenancy":{"device":"cuda:0","atOnce":2,"taskIds":["#
                        + (2...66).map { "\"t\($0)\"" }.joined(separator: ",") + "]}}")
            ),
            ("result-metric-overflow", raw("result", #"{"attemptId":"a1","taskId":"t1","metrics":{"x":1e999}}"#)),
            ("json-escapes", raw("cancel", #"{"attemptId":"a1","reason":"\ud83d\ude00 \ud800 \udc00x \u0000\t\/"}"#)),
            (
                "json-invalid-utf8",
                [
                    Array(wireVersion.utf8), Array("cancel".utf8),
                    Array(#"{"attemptId":"a1","reason":""#.utf8) + [0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80]
                        + Array(#""}"#.utf8),
                ]
            ),
            ("json-deep", raw("progress", String(repeating: "[", count: 600) + String(repeating: "]", count: 600))),
            (
                "json-numbers",
                raw(
                    "progress",
                    #"{"attemptId":"a1","event":{"a":-0,"b":1E+2,"c":5e-324,"#
                        + #""d":1.7976931348623157e308,"e":9007199254740993,"f":-0.0}}"#)
            ),
            ("version-unknown", raw("ready", #"{"credits":1}"#).enumerated().map { $0 == 0 ? Array("SG2".utf8) : $1 }),
            ("type-unknown", raw("launch_missiles", "{}")),
            ("frames-too-many", raw("ready", #"{"credits":1}"#, payload: []) + [[]]),
            ("frames-header-missing", [Array(wireVersion.utf8), Array("ready".utf8)]),
            ("stat-over-cap", raw("stat", #"{"sha256":"\#(sha)","bytes":1099511627777}"#)),
            ("stat-bytes-1e20", raw("stat", #"{"sha256":"\#(sha)","bytes":1e20}"#)),
            ("stat-hash-path", raw("stat", #"{"sha256":"../../../../etc/passwd","bytes":1}"#)),
            (
                "put-past-end",
                raw(
                    "put",
                    #"{"sha256":"\#(sha)","offset":9223372036854775807,"#
                        + #""total":9223372036854775807}"#, payload: [1, 2])
            ),
            ("put-empty-file-with-bytes", raw("put", #"{"sha256":"\#(sha)","offset":0,"total":0}"#, payload: [1])),
            ("get-length-zero", raw("get", #"{"sha256":"\#(sha)","offset":0,"length":0}"#)),
            ("get-offset-negative", raw("get", #"{"sha256":"\#(sha)","offset":-1,"length":1}"#)),
            ("chunk-past-end", raw("chunk", #"{"sha256":"\#(sha)","offset":4,"total":5}"#, payload: [1, 2])),
            ("launch-no-token", raw("launch", #"{"plan":{}}"#)),
        ]
    }
}
