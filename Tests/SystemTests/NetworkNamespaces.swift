import Foundation

/// Three hosts on one machine: network namespaces `coord`, `a` and `b`, each with its own
/// address on a random 10.x.y.0/24 and only its loopback and one veth link. The coordinator's
/// namespace holds a bridge (`br0`, 10.x.y.1) with one veth end per worker host (`va`, `vb`);
/// the other end is `eth0` in `a` (10.x.y.2) and in `b` (10.x.y.3). Nothing else is reachable
/// from them, so every byte between the hosts crosses those links, where a test can cut it
/// (`ip link set eth0 down`) or drop a share of packets (nftables).
///
/// Names are `sgmh-<pid of the test process>-<random>-<host>`: a run deletes its own at
/// teardown, and any other `sgmh-` namespace whose test process no longer exists (a crashed run)
/// before it starts. All of it needs root (CAP_SYS_ADMIN) and iproute2; `unavailable` says what
/// is missing.
final class Testbed {
    enum Host: String, CaseIterable {
        case coord, a, b
    }

    static let prefix = "sgmh-"

    let tag: String
    let subnet: String  // "10.x.y"

    private init(tag: String, subnet: String) {
        self.tag = tag
        self.subnet = subnet
    }

    func namespace(_ host: Host) -> String { "\(tag)-\(host.rawValue)" }

    func address(_ host: Host) -> String {
        switch host {
        case .coord: return "\(subnet).1"
        case .a: return "\(subnet).2"
        case .b: return "\(subnet).3"
        }
    }

    /// The worker host's end of its link (in its own namespace).
    static let link = "eth0"

    // MARK: - What this machine allows

    static func findTool(_ name: String) -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static let ip = findTool("ip")
    static let nft = findTool("nft")

    /// Whether this process's effective capabilities include CAP_SYS_ADMIN (bit 21), which
    /// `ip netns add` needs (a container's root often lacks it).
    static func hasSysAdmin() -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
            let caps = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return caps & (1 << 21) != 0
    }

    /// Why namespaces cannot be made here (nil: they can).
    static let unavailable: String? = {
        if geteuid() != 0 { return "network namespaces need root (run `make test` as root)" }
        if ip == nil { return "no `ip` (iproute2) on this machine: `make deps` installs it" }
        if !hasSysAdmin() {
            return "this root lacks CAP_SYS_ADMIN (an unprivileged container?), so `ip netns add` fails"
        }
        if !FileManager.default.fileExists(atPath: "/proc/self/ns/net") {
            return "this kernel has no network namespaces (/proc/self/ns/net)"
        }
        return nil
    }()

    /// Why packet loss cannot be injected here (nil: it can).
    static let noPacketLoss: String? = {
        if let why = unavailable { return why }
        if nft == nil { return "no `nft` (nftables) on this machine: `make deps` installs it" }
        return nil
    }()

    // MARK: - Set-up and teardown

    /// Runs `body` on a fresh testbed and deletes the namespaces afterwards, whether `body`
    /// returned or threw. Processes `body` started in them must be stopped by `body` (a `defer`).
    static func with<T>(_ body: (Testbed) async throws -> T) async throws -> T {
        await removeLeftovers()
        let bed = try await create()
        do {
            let result = try await body(bed)
            await bed.teardown()
            return result
        } catch {
            await bed.teardown()
            throw error
        }
    }

    static func create() async throws -> Testbed {
        let suffix = String(format: "%06x", UInt32.random(in: 0..<0x100_0000))
        let subnet = "10.\(Int.random(in: 1...254)).\(Int.random(in: 0...255))"
        let bed = Testbed(tag: "\(prefix)\(getpid())-\(suffix)", subnet: subnet)
        do {
            try await bed.build()
        } catch {
            await bed.teardown()
            throw error
        }
        return bed
    }

    private func build() async throws {
        let c = namespace(.coord)
        for host in Host.allCases {
            try await ip(["netns", "add", namespace(host)])
            try await ip(["-n", namespace(host), "link", "set", "lo", "up"])
        }
        try await ip(["-n", c, "link", "add", "br0", "type", "bridge"])
        try await ip(["-n", c, "addr", "add", "\(address(.coord))/24", "dev", "br0"])
        try await ip(["-n", c, "link", "set", "br0", "up"])
        for host in [Host.a, .b] {
            let end = "v\(host.rawValue)"
            try await ip([
                "-n", c, "link", "add", end, "type", "veth", "peer", "name", Self.link, "netns", namespace(host),
            ])
            try await ip(["-n", c, "link", "set", end, "master", "br0"])
            try await ip(["-n", c, "link", "set", end, "up"])
            try await ip(["-n", namespace(host), "addr", "add", "\(address(host))/24", "dev", Self.link])
            try await ip(["-n", namespace(host), "link", "set", Self.link, "up"])
        }
        // One MTU-sized packet per skb: without this, TCP hands veth segments of up to 64 KB
        // (GSO) and a dropped "packet" would be dozens of wire frames at once.
        for (host, link) in [(Host.coord, "br0"), (.coord, "va"), (.coord, "vb"), (.a, Self.link), (.b, Self.link)] {
            try await ip(["-n", namespace(host), "link", "set", link, "gso_max_segs", "1"])
        }
    }

    /// Deletes this testbed's namespaces (their links go with them once no process is left in them).
    func teardown() async {
        for host in Host.allCases {
            let name = namespace(host)
            guard FileManager.default.fileExists(atPath: "/var/run/netns/\(name)") else { continue }
            if let out = try? await Harness.exec(Self.ip!, ["netns", "del", name], timeout: 30), out.status != 0 {
                print("testbed: could not delete namespace \(name): \(out.stderr)")
            }
        }
    }

    /// Deletes `sgmh-` namespaces left by test processes that no longer run.
    static func removeLeftovers() async {
        guard let ip, let names = try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns") else { return }
        for name in names where name.hasPrefix(prefix) {
            let fields = name.dropFirst(prefix.count).split(separator: "-")
            guard let first = fields.first, let pid = pid_t(first) else { continue }
            if pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH { continue }
            print("testbed: deleting namespace \(name), left by test process \(pid) which is gone")
            _ = try? await Harness.exec(ip, ["netns", "del", name], timeout: 30)
        }
    }

    // MARK: - Acting on the hosts

    /// Runs `ip ARGS`; a non-zero status throws with its stderr.
    @discardableResult
    func ip(_ arguments: [String]) async throws -> String {
        let out = try await Harness.exec(Self.ip!, arguments, timeout: 30)
        if out.status != 0 {
            throw HarnessError("`ip \(arguments.joined(separator: " "))` failed (\(out.status)): \(out.stderr)")
        }
        return out.stdout
    }

    /// Starts the `sparsegrid` binary inside a host's namespace (`ip netns exec` execs it: the
    /// returned process is the binary itself, so signals reach it).
    func start(on host: Host, _ arguments: [String], log: String, environment: [String: String] = [:]) throws
        -> Process
    {
        try Harness.start(
            ["netns", "exec", namespace(host), Harness.binary] + arguments, log: log, environment: environment,
            executable: Self.ip!)
    }

    /// Runs the `sparsegrid` binary to completion inside a host's namespace.
    func run(on host: Host, _ arguments: [String], timeout: Double = 60) async throws -> Harness.Output {
        try await Harness.exec(
            Self.ip!, ["netns", "exec", namespace(host), Harness.binary] + arguments, timeout: timeout)
    }

    /// Takes a worker host's link down (every packet to and from it is lost; its routes to the
    /// subnet go) or brings it back.
    func setLink(_ host: Host, up: Bool) async throws {
        try await ip(["-n", namespace(host), "link", "set", Self.link, up ? "up" : "down"])
    }

    /// Drops `percent` % of the packets in each direction on a host's link, at random
    /// (nftables `numgen random`; this kernel has no netem), with counters.
    func dropPackets(_ host: Host, percent: Int) async throws {
        let rules = """
            table inet sgloss {
              chain in {
                type filter hook input priority 0; policy accept;
                iifname "\(Self.link)" numgen random mod 100 < \(percent) counter drop
              }
              chain out {
                type filter hook output priority 0; policy accept;
                oifname "\(Self.link)" numgen random mod 100 < \(percent) counter drop
              }
            }

            """
        let file = Harness.tempDir("nft") + "/loss.nft"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
        let out = try await Harness.exec(
            Self.ip!, ["netns", "exec", namespace(host), Self.nft!, "-f", file], timeout: 30)
        if out.status != 0 { throw HarnessError("nft -f (loss rules for \(host.rawValue)) failed: \(out.stderr)") }
    }

    /// Packets the loss rules on a host dropped so far (both directions).
    func droppedPackets(_ host: Host) async throws -> Int {
        let out = try await Harness.exec(
            Self.ip!, ["netns", "exec", namespace(host), Self.nft!, "list", "table", "inet", "sgloss"], timeout: 30)
        if out.status != 0 { throw HarnessError("nft list (\(host.rawValue)) failed: \(out.stderr)") }
        var total = 0
        for line in out.stdout.split(separator: "\n") {
            let words = line.split(separator: " ")
            if let i = words.firstIndex(of: "packets"), i + 1 < words.count, let n = Int(words[i + 1]) { total += n }
        }
        return total
    }

    /// Bytes the coordinator's end of a worker host's link received from it and sent to it.
    func linkBytes(_ host: Host) async throws -> (fromHost: Int, toHost: Int) {
        let end = "v\(host.rawValue)"
        let base = "/sys/class/net/\(end)/statistics"
        let out = try await Harness.exec(
            Self.ip!, ["netns", "exec", namespace(.coord), "cat", "\(base)/rx_bytes", "\(base)/tx_bytes"], timeout: 30)
        let numbers = out.stdout.split(separator: "\n").compactMap { Int($0) }
        guard out.status == 0, numbers.count == 2 else {
            throw HarnessError("could not read the byte counters of \(end): \(out.stderr)")
        }
        return (numbers[0], numbers[1])
    }
}
