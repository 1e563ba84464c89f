// swift-tools-version: 6.2
// sparsegrid: model × sparsity-method sweeps over ZeroMQ workers, results in SQLite.
// Module map, who owns what, and a task's way from spec to result: docs/architecture.md.
import PackageDescription

let package = Package(
    name: "sparsegrid",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sparsegrid", targets: ["sparsegrid"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // libzmq (Debian: libzmq3-dev). Nothing outside ZeroMQ imports it.
        .systemLibrary(name: "CZeroMQ"),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        // The domain: spec, validation, plan, task identity, scheduler state machine. No I/O.
        .target(
            name: "SweepKit",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(
            name: "Wire",
            dependencies: [
                "SweepKit",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(
            name: "Store",
            dependencies: [
                "SweepKit",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .target(name: "Reports", dependencies: ["SweepKit"]),
        .target(
            name: "Coordinator",
            dependencies: [
                "ZeroMQ", "Wire", "SweepKit", "Store",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // /metrics: the Prometheus registry and its text exposition (Sources/Coordinator/Metrics).
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .target(
            name: "Worker",
            dependencies: [
                "ZeroMQ", "Wire", "SweepKit",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The coordinator's optional HTTP server: the JSON API under /api/ and /metrics.
        // Reads the Store and the live status through injected protocols; no ZeroMQ.
        .target(
            name: "HTTPAPI",
            dependencies: [
                "Store", "SweepKit", "Wire", "Reports",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .executableTarget(
            name: "sparsegrid",
            dependencies: [
                "SweepKit", "Store", "Reports", "Coordinator", "Worker", "Wire", "ZeroMQ", "HTTPAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]),
        // Decoders under libFuzzer: `make fuzz` builds it with -sanitize=fuzzer (see Makefile);
        // a plain build replays a corpus, so it always compiles.
        .executableTarget(name: "WireFuzz", dependencies: ["Wire", "SweepKit"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        // Yams: to compare the alias budget's count with what Yams' composer really builds.
        .testTarget(name: "SweepKitTests", dependencies: ["SweepKit", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "SweepKit"]),
        // The worker's protocol state machine, without sockets.
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "Wire", "SweepKit", "ZeroMQ"]),
        // In-process tests of the coordinator's services over real loopback sockets (Worker: a
        // real null-engine worker for the metrics of a whole sweep).
        .testTarget(
            name: "CoordinatorTests", dependencies: ["Coordinator", "Wire", "SweepKit", "Store", "ZeroMQ", "Worker"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "SweepKit"]),
        // The HTTP API's routes, 401 and 404 through Hummingbird's in-process test client.
        .testTarget(
            name: "HTTPAPITests",
            dependencies: [
                "HTTPAPI", "Store", "SweepKit", "Wire", "Reports",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "SweepKit"], resources: [.copy("Golden")]),
        // Starts the real `sparsegrid` binary as coordinator and worker processes.
        // Yams: DeployChecksTests parses deploy/'s compose file and Kubernetes manifests.
        .testTarget(
            name: "SystemTests",
            dependencies: [
                "sparsegrid", "Wire", "SweepKit", "Store", "ZeroMQ", .product(name: "Yams", package: "Yams"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
