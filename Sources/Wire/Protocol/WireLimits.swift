/// Bounds on everything that arrives over a socket. A message outside them is refused with a
/// `Reject.Code`; nothing from a peer reaches a numeric conversion, an allocation or a file
/// path unchecked. docs/protocol.md lists them.
public enum WireLimits {
    /// One JSON header frame (a result's metrics and details included).
    public static let maxHeaderBytes = 4 << 20
    /// A whole message on the worker and data sockets (libzmq drops bigger ones and the
    /// connection with them: ZMQ_MAXMSGSIZE).
    public static let maxMessageBytes = 16 << 20
    /// A control request (a launch carries the whole plan: ~300 bytes a task, so 100,000
    /// tasks are ~30 MB). libzmq accepts a message of this size before the token is checked:
    /// a local peer can make the coordinator read (and drop) one such message at a time.
    public static let maxControlBytes = 512 << 20
    /// Ids (workers, attempts, tasks, sweeps): 1…128 characters of [A-Za-z0-9._:@-].
    public static let maxIdLength = 128
    public static let maxHostLength = 255
    /// Free text (errors, reasons).
    public static let maxTextBytes = 64 << 10
    /// A stderr tail as a worker reports it.
    public static let maxStderrTailBytes = 64 << 10
    public static let maxSlots = 1024
    /// Tasks one GPU may run at once (`--per-gpu`).
    public static let maxPerGPU = 64
    /// Co-tenants (task ids) a result may list: an attempt's neighbours on its device.
    public static let maxCoTenants = 64
    public static let maxEngines = 64
    /// Attempts a worker may list as running (hello, heartbeat).
    public static let maxRunning = 4096
    public static let maxMetrics = 4096
    public static let maxMetricNameLength = 256
    /// A metric's unit as the engine labels it ("ms, median of 50 calls after 10 warm-up, batch 1").
    public static let maxUnitLength = 4096
    public static let maxArtifactsPerResult = 64
    /// One artifact (a checkpoint): 1 TiB is far beyond any CIFAR model and far below overflow.
    public static let maxArtifactBytes: Int64 = 1 << 40
    /// Credits one message may grant (the scheduler also caps them at the worker's slots).
    public static let maxCredits = 1 << 16
    /// Seconds: heartbeat and dead intervals a coordinator may announce.
    public static let intervalRange: ClosedRange<Double> = 0.01...86_400
    /// Seconds: the longest time limit an `assign` may carry (a stage's `timeout`: 30 days).
    public static let maxTaskTimeout = 30 * 86_400.0
}

/// The shape of ids on the wire.
public enum WireId {
    public static func isValid(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= WireLimits.maxIdLength else { return false }
        return s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == 0x2E || c == 0x5F || c == 0x3A || c == 0x40 || c == 0x2D
        }
    }

    public static func isSHA256(_ s: String) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
