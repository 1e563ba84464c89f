import Foundation
import Yams

/// The checks `DeployChecksTests` runs over deploy/: each takes a file's path and text (so a test
/// can plant a mistake in a copy) and returns the problems it found, as sentences naming the file.
/// Nothing in deploy/ can run here (no systemd as PID 1, no Slurm, no container engine, no
/// cluster): these checks parse every file, run the linters that exist (systemd-analyze verify,
/// shellcheck), and cross-check every `sparsegrid` command line against the CLI's own option
/// list (`sparsegrid --experimental-dump-help`) and the ports, paths and secrets around it.
enum DeployChecks {
    static let deployDir = "\(Harness.repoRoot)/deploy"

    // MARK: The CLI's options

    /// Every subcommand's options, from the binary: name (`--bind`, `-h`) → takes a value.
    struct CLI {
        var options: [String: [String: Bool]]
        var subcommands: Set<String> { Set(options.keys) }
        var version: String
    }

    static func loadCLI() async throws -> CLI {
        let dump = try await Harness.run(["--experimental-dump-help"])
        guard dump.status == 0,
            let root = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any],
            let command = root["command"] as? [String: Any],
            let subs = command["subcommands"] as? [[String: Any]]
        else { throw HarnessError("`sparsegrid --experimental-dump-help` gave no command tree: \(dump.stderr)") }
        var options: [String: [String: Bool]] = [:]
        for sub in subs {
            guard let name = sub["commandName"] as? String else { continue }
            var names: [String: Bool] = [:]
            for argument in sub["arguments"] as? [[String: Any]] ?? [] {
                let kind = argument["kind"] as? String
                guard kind == "option" || kind == "flag" else { continue }
                for n in argument["names"] as? [[String: Any]] ?? [] {
                    guard let value = n["name"] as? String else { continue }
                    let prefix = (n["kind"] as? String) == "short" ? "-" : "--"
                    names[prefix + value] = kind == "option"
                }
            }
            options[name] = names
        }
        let version = try await Harness.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return CLI(options: options, version: version)
    }

    // MARK: Command lines

    /// One `sparsegrid SUBCOMMAND ARGS…` found in a deploy file.
    struct Invocation {
        var file: String
        var subcommand: String
        var args: [String]

        /// The value of `--name VALUE` or `--name=VALUE` (the last one given).
        func value(_ name: String) -> String? {
            var found: String?
            for (i, a) in args.enumerated() {
                if a == name, i + 1 < args.count { found = args[i + 1] }
                if a.hasPrefix(name + "=") { found = String(a.dropFirst(name.count + 1)) }
            }
            return found
        }
    }

    /// Words that end a command line in prose or shell.
    static let stops: Set<String> = ["|", "||", "&&", ";", "&", "#", ")", "2>&1"]

    /// `sparsegrid SUB …` command lines in free text: shell scripts, unit files, comments, Markdown.
    /// Continuation lines (a trailing backslash, also inside `#` comments) are joined first.
    static func textInvocations(file: String, text: String, cli: CLI) -> [Invocation] {
        var logical: [String] = []
        var pending = ""
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(raw)
            if !pending.isEmpty {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("#") { line = String(trimmed.dropFirst()) }
            }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            logical.append(pending + line)
            pending = ""
        }
        if !pending.isEmpty { logical.append(pending) }

        var out: [Invocation] = []
        for line in logical {
            let raw = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let words = raw.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"'`")) }
            for (i, word) in words.enumerated() where i > 0 && cli.subcommands.contains(word) {
                let before = words[i - 1]
                guard
                    before.hasSuffix("/sparsegrid") || before.hasSuffix("=sparsegrid") || before == "sparsegrid"
                        || before.hasSuffix("$SPARSEGRID") || before == "$0"
                else { continue }
                // Inline code in prose (`sparsegrid worker` (by hand) or …) ends at its closing backtick.
                let quoted = raw[i - 1].hasPrefix("`")
                var args: [String] = []
                if !(quoted && raw[i].hasSuffix("`")) {
                    for (w, r) in zip(words[(i + 1)...], raw[(i + 1)...]) {
                        if stops.contains(w) || w.hasPrefix("2>") || w.hasPrefix(">") { break }
                        args.append(w)
                        if quoted && r.contains("`") { break }
                    }
                }
                out.append(Invocation(file: file, subcommand: word, args: args))
            }
        }
        return out
    }

    /// Problems with an invocation's options: unknown to the subcommand, or a value missing.
    static func flagProblems(_ call: Invocation, cli: CLI) -> [String] {
        guard let known = cli.options[call.subcommand] else {
            return ["\(call.file): `sparsegrid \(call.subcommand)` is not a subcommand"]
        }
        var problems: [String] = []
        var i = 0
        while i < call.args.count {
            let arg = call.args[i]
            i += 1
            guard arg.hasPrefix("-"), arg.count > 1, arg != "--" else { continue }
            // A short option is a whole word (`-h`); "-s)-gpu…" is the rest of a shell expression.
            if !arg.hasPrefix("--"), arg.count != 2 || !arg.last!.isLetter { continue }
            // A long one ends where a flag name's characters do (prose: "--insecure`).", "--drain-grace,").
            let name = String(arg.prefix { $0 == "-" || $0.isLetter || $0.isNumber })
            guard name.count > 1, name.last != "-" else { continue }
            guard let takesValue = known[name] else {
                problems.append("\(call.file): `sparsegrid \(call.subcommand)` has no option \(name)")
                continue
            }
            if takesValue, !arg.contains("=") {
                if i >= call.args.count {
                    problems.append("\(call.file): `sparsegrid \(call.subcommand) \(name)` has no value")
                }
                i += 1
            }
        }
        return problems
    }

    // MARK: Addresses

    /// The port of `tcp://HOST:PORT` or `HOST:PORT`.
    static func port(_ address: String?) -> Int? {
        guard let address, let colon = address.lastIndex(of: ":") else { return nil }
        return Int(address[address.index(after: colon)...])
    }

    /// The host of `tcp://HOST:PORT`.
    static func host(_ address: String?) -> String? {
        guard var rest = address, let colon = rest.lastIndex(of: ":") else { return nil }
        rest = String(rest[..<colon])
        if rest.hasPrefix("tcp://") { rest = String(rest.dropFirst(6)) }
        return rest
    }

    /// The ports a coordinator invocation listens on: workers, artifacts, control, http.
    struct CoordinatorPorts {
        var bind: Int
        var artifacts: Int
        var control: Int
        var http: Int?
        var exposed: [Int] { [bind, artifacts] + (http.map { [$0] } ?? []) }
    }

    static func coordinatorPorts(_ call: Invocation) -> CoordinatorPorts? {
        let bind = port(call.value("--bind") ?? "tcp://127.0.0.1:5555")
        guard let bind else { return nil }
        let artifacts = port(call.value("--data")) ?? bind + 1
        let control = port(call.value("--control") ?? "tcp://127.0.0.1:5557") ?? 5557
        return CoordinatorPorts(bind: bind, artifacts: artifacts, control: control, http: port(call.value("--http")))
    }

    static func seconds(_ value: String?) -> Double? {
        guard var v = value?.trimmingCharacters(in: .whitespaces) else { return nil }
        var scale = 1.0
        if v.hasSuffix("min") {
            scale = 60
            v.removeLast(3)
        } else if v.hasSuffix("s") {
            v.removeLast()
        } else if v.hasSuffix("m") {
            scale = 60
            v.removeLast()
        }
        return Double(v).map { $0 * scale }
    }

    /// What a worker needs beyond its drain grace after SIGTERM: stopping its engines (SIGTERM,
    /// SIGKILL 5 s later), reporting them and saying bye.
    static let stopMargin = 10.0

    // MARK: systemd

    /// `Key=value` lines of a unit file, in order (comments and section headers left out).
    static func directives(_ text: String) -> [(String, String)] {
        text.split(separator: "\n").compactMap { line in
            let l = line.trimmingCharacters(in: .whitespaces)
            guard !l.hasPrefix("#"), !l.hasPrefix("["), let eq = l.firstIndex(of: "=") else { return nil }
            return (String(l[..<eq]), String(l[l.index(after: eq)...]))
        }
    }

    /// The unit's own consistency: binary, credentials, user, state directory, stop timeout.
    static func unitProblems(file: String, text: String, sysusers: String, cli: CLI) -> [String] {
        let d = directives(text)
        func all(_ key: String) -> [String] { d.filter { $0.0 == key }.map(\.1) }
        var problems: [String] = []
        guard let exec = all("ExecStart").first else { return ["\(file): no ExecStart="] }
        let words = exec.split(separator: " ").map(String.init)
        if words.first != "/usr/local/bin/sparsegrid" {
            problems.append("\(file): ExecStart= runs \(words.first ?? "nothing"), not /usr/local/bin/sparsegrid")
        }
        let calls = textInvocations(file: file, text: "ExecStart=" + exec, cli: cli)
        guard let call = calls.first else { return problems + ["\(file): ExecStart= starts no sparsegrid subcommand"] }
        problems += flagProblems(call, cli: cli)

        // Every credential the command reads is loaded, and every one loaded is read.
        let loaded = Set(all("LoadCredential").compactMap { $0.split(separator: ":").first.map(String.init) })
        let used = Set(
            call.args.compactMap { a -> String? in
                guard let r = a.range(of: "${CREDENTIALS_DIRECTORY}/") else { return nil }
                return String(a[r.upperBound...])
            })
        for name in used.subtracting(loaded) {
            problems.append("\(file): reads ${CREDENTIALS_DIRECTORY}/\(name) but has no LoadCredential=\(name):…")
        }
        for name in loaded.subtracting(used) {
            problems.append("\(file): LoadCredential=\(name) is never passed to sparsegrid")
        }

        // The user exists in the sysusers.d file shipped beside it.
        let users = sysusers.split(separator: "\n").compactMap { line -> String? in
            let w = line.split(separator: " ")
            return w.count > 1 && w[0] == "u" ? String(w[1]) : nil
        }
        if let user = all("User").first {
            if !users.contains(user) { problems.append("\(file): User=\(user) is not made by the sysusers.d file") }
        } else if all("DynamicUser").first != "yes" {
            problems.append("\(file): runs as root (no User= nor DynamicUser=yes)")
        }
        if all("NoNewPrivileges").first != "yes" { problems.append("\(file): NoNewPrivileges=yes is missing") }
        if all("ProtectSystem").first != "strict" { problems.append("\(file): ProtectSystem=strict is missing") }

        switch call.subcommand {
        case "coordinator":
            let state = call.value("--state")
            let dirs = all("StateDirectory").flatMap { $0.split(separator: " ").map { "/var/lib/\($0)" } }
            if let state, !dirs.contains(state) {
                problems.append("\(file): --state \(state) is not a StateDirectory= (\(dirs)); it would not persist")
            }
            // The firewall note in the header names every port the coordinator listens on.
            if let ports = coordinatorPorts(call) {
                let header = text.split(separator: "\n").filter { $0.hasPrefix("#") }.joined(separator: "\n")
                for p in ports.exposed where !header.contains(String(p)) {
                    problems.append("\(file): the header does not name port \(p) (workers, artifacts, http)")
                }
            }
        case "worker":
            let grace = Double(call.value("--drain-grace") ?? "60") ?? 60
            let stop = seconds(all("TimeoutStopSec").first) ?? 90
            if stop <= grace + stopMargin {
                problems.append(
                    "\(file): TimeoutStopSec=\(stop) s does not exceed --drain-grace \(grace) s + \(stopMargin) s: "
                        + "systemd would SIGKILL a draining worker")
            }
            // control-group (the default) would SIGTERM the engines with the worker and end the drain.
            if all("KillMode").first != "mixed" {
                problems.append("\(file): KillMode=mixed is missing: systemd would SIGTERM the engines too")
            }
            if call.value("--id") == nil { problems.append("\(file): no --id: a restarted worker would be a new one") }
        default: break
        }
        return problems
    }

    /// `systemd-analyze verify` on copies of the units, their ExecStart= binary rewritten to the
    /// built one (verify wants it to exist); a template is checked as its instance `@0`. Any
    /// output counts as a problem: verify exits 0 on unknown keys and bad values, only warning.
    static func systemdVerify(units: [(name: String, text: String)]) async throws -> [String] {
        let dir = Harness.tempDir("units")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var paths: [String] = []
        for unit in units {
            let name = unit.name.replacingOccurrences(of: "@.", with: "@0.")
            let text = unit.text.replacingOccurrences(of: "/usr/local/bin/sparsegrid", with: Harness.binary)
            try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
            paths.append("\(dir)/\(name)")
        }
        let out = try await Harness.exec(
            "/usr/bin/systemd-analyze", ["verify", "--man=no"] + paths, timeout: 60, mergeStderr: true)
        let text = out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return out.status == 0 && text.isEmpty ? [] : ["systemd-analyze verify (status \(out.status)): \(text)"]
    }

    // MARK: Shell

    static func shellcheck(_ path: String) async throws -> [String] {
        let out = try await Harness.exec("/usr/bin/shellcheck", ["--shell=bash", path], timeout: 60, mergeStderr: true)
        return out.status == 0 ? [] : ["shellcheck \(path): \(out.stdout)"]
    }

    /// Slurm scripts: workers drain within KillWait, and a `--signal=B:SIG@N` has a trap and leaves
    /// the drain time; the coordinator's port and the workers' are one expression.
    static func slurmProblems(file: String, text: String, cli: CLI) -> [String] {
        var problems: [String] = []
        let calls = textInvocations(file: file, text: text, cli: cli)
        let code = text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
            .joined(separator: "\n")
        let codeCalls = textInvocations(file: file, text: code, cli: cli)
        guard codeCalls.contains(where: { $0.subcommand == "worker" }) else {
            return ["\(file): starts no `sparsegrid worker`"]
        }
        for call in calls { problems += flagProblems(call, cli: cli) }
        let killWait = 30.0  // Slurm's default KillWait
        for call in codeCalls where call.subcommand == "worker" {
            let grace = Double(call.value("--drain-grace") ?? "60") ?? 60
            if grace >= killWait {
                problems.append(
                    "\(file): --drain-grace \(grace) is not below Slurm's KillWait (30 s): the drain would be SIGKILLed"
                )
            }
            if call.value("--id") == nil { problems.append("\(file): no --id: a requeued worker would be a new one") }
        }
        // #SBATCH --signal=B:USR1@300 → a trap for USR1, and time for the workers to drain.
        for line in text.split(separator: "\n") where line.hasPrefix("#SBATCH --signal=") {
            let spec = line.dropFirst("#SBATCH --signal=".count)
            let parts = spec.split(separator: "@")
            let signal = String(parts[0].split(separator: ":").last ?? "")
            if !code.contains("trap ")
                || !code.split(separator: "\n").contains(where: {
                    // `trap - SIG` resets a trap, it handles nothing.
                    $0.hasPrefix("trap ") && !$0.hasPrefix("trap - ")
                        && $0.split(separator: " ").contains(Substring(signal))
                })
            {
                problems.append("\(file): --signal sends \(signal) but no trap handles it")
            }
            if let lead = parts.count > 1 ? Double(parts[1]) : nil, lead <= killWait + stopMargin {
                problems.append("\(file): --signal comes \(lead) s before the limit: too late to drain")
            }
        }
        // tcp://HOST:PORT off loopback in the code (the coordinator's --bind, the workers'
        // --coordinator): one port expression for both. Loopback ones are the control socket's.
        let regex = try! NSRegularExpression(pattern: #"tcp://([^:"\s]+):([^"\s/)]+)"#)
        let ports = Set(
            regex.matches(in: code, range: NSRange(code.startIndex..., in: code)).compactMap { m -> String? in
                guard let h = Range(m.range(at: 1), in: code), let p = Range(m.range(at: 2), in: code),
                    code[h] != "127.0.0.1"
                else { return nil }
                return String(code[p])
            })
        if ports.count > 1 {
            problems.append("\(file): the coordinator and its workers use different ports: \(ports.sorted())")
        }
        return problems
    }

    // MARK: Containerfiles

    /// Instructions of a Containerfile, continuation lines joined, comments left out.
    static func instructions(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var pending = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            let full = pending + line
            pending = ""
            let parts = full.split(separator: " ", maxSplits: 1).map(String.init)
            out.append((parts[0].uppercased(), parts.count > 1 ? parts[1] : ""))
        }
        return out
    }

    /// The image's ENTRYPOINT + CMD as one invocation; the bundle install as layout.md has it.
    static func containerfileProblems(file: String, text: String, cli: CLI) -> (problems: [String], call: Invocation?) {
        let ins = instructions(text)
        var problems: [String] = []
        func json(_ key: String) -> [String]? {
            guard let v = ins.last(where: { $0.0 == key })?.1 else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(v.utf8))) as? [String]
        }
        let bundle = "sparsegrid-\(cli.version)-linux-x86_64.tar.gz"
        if !ins.contains(where: { $0.0 == "ARG" && $0.1 == "BUNDLE=\(bundle)" }) {
            problems.append("\(file): no `ARG BUNDLE=\(bundle)` (the dist bundle of this version)")
        }
        let run = ins.filter { $0.0 == "RUN" }.map(\.1).joined(separator: "\n")
        if !ins.contains(where: { $0.0 == "COPY" && $0.1.hasPrefix("${BUNDLE} ") }) {
            problems.append("\(file): does not COPY ${BUNDLE}")
        }
        if !run.contains("--strip-components=1 -C /usr/local") {
            problems.append("\(file): does not unpack the bundle into /usr/local with --strip-components=1")
        }
        if ins.last(where: { $0.0 == "STOPSIGNAL" })?.1 != "SIGTERM" {
            problems.append("\(file): STOPSIGNAL SIGTERM is missing")
        }
        guard let entry = json("ENTRYPOINT"), let cmd = json("CMD"), entry.first?.hasSuffix("/sparsegrid") == true,
            let sub = cmd.first
        else { return (problems + ["\(file): ENTRYPOINT/CMD are not exec-form `sparsegrid SUB …`"], nil) }
        let call = Invocation(file: file, subcommand: sub, args: Array(cmd.dropFirst()))
        problems += flagProblems(call, cli: cli)
        if sub == "worker", !run.contains("/usr/local/share/sparsegrid/wheels/sparsegrid_engine-") {
            problems.append("\(file): does not pip install the engine wheel from the bundle")
        }
        if sub == "coordinator", let ports = coordinatorPorts(call) {
            let exposed = Set(
                ins.filter { $0.0 == "EXPOSE" }.flatMap { $0.1.split(separator: " ").compactMap { Int($0) } })
            for p in ports.exposed where !exposed.contains(p) {
                problems.append("\(file): the coordinator listens on \(p) but the image does not EXPOSE it")
            }
            if let state = call.value("--state"), !ins.contains(where: { $0.0 == "VOLUME" && $0.1 == state }) {
                problems.append("\(file): --state \(state) is not a VOLUME")
            }
        }
        return (problems, call)
    }

    // MARK: YAML

    static func yamlDocuments(file: String, text: String) throws -> [[String: Any]] {
        var docs: [[String: Any]] = []
        var sequence = try Yams.load_all(yaml: text)
        while let doc = sequence.next() {
            guard let map = doc as? [String: Any] else {
                throw HarnessError("\(file): a YAML document that is not a mapping")
            }
            docs.append(map)
        }
        // The sequence ends at a parse error and keeps it.
        if let error = sequence.error { throw HarnessError("\(file): not valid YAML: \(error)") }
        return docs
    }

    static func strings(_ any: Any?) -> [String] {
        (any as? [Any])?.map { "\($0)" } ?? []
    }

    /// Port numbers from compose `ports`/`expose` entries ("127.0.0.1:8080:8080" → 8080, the container's).
    static func composePorts(_ any: Any?) -> Set<Int> {
        Set(strings(any).compactMap { entry in Int(entry.split(separator: ":").last.map(String.init) ?? "") })
    }

    static func compose(file: String, text: String, cli: CLI) throws -> [String] {
        guard let doc = try yamlDocuments(file: file, text: text).first,
            let services = doc["services"] as? [String: Any]
        else { return ["\(file): no services"] }
        var problems: [String] = []
        let topSecrets = Set((doc["secrets"] as? [String: Any])?.keys.map { $0 } ?? [])
        let topVolumes = Set((doc["volumes"] as? [String: Any])?.keys.map { $0 } ?? [])
        var coordinators: [String: CoordinatorPorts] = [:]
        var workers: [(String, Invocation, [String: Any])] = []
        let bundle = "sparsegrid-\(cli.version)-linux-x86_64.tar.gz"
        for (name, value) in services {
            guard let service = value as? [String: Any] else { continue }
            if let build = service["build"] as? [String: Any],
                let args = build["args"] as? [String: Any], "\(args["BUNDLE"] ?? "")" != bundle
            {
                problems.append(
                    "\(file): service \(name) builds from BUNDLE \(args["BUNDLE"] ?? "none"), not \(bundle)")
            }
            let command = strings(service["command"])
            guard let sub = command.first else {
                problems.append("\(file): service \(name) has no command")
                continue
            }
            let call = Invocation(file: "\(file) (\(name))", subcommand: sub, args: Array(command.dropFirst()))
            problems += flagProblems(call, cli: cli)
            let secrets = Set(strings(service["secrets"]))
            for s in secrets where !topSecrets.contains(s) {
                problems.append("\(file): service \(name) uses secret \(s), which is not defined")
            }
            for a in call.args {
                guard let r = a.range(of: "/run/secrets/") else { continue }
                let s = String(a[r.upperBound...])
                if !secrets.contains(s) {
                    problems.append("\(file): service \(name) reads /run/secrets/\(s) unmounted")
                }
            }
            let mounts = strings(service["volumes"]).map { $0.split(separator: ":").map(String.init) }
            for m in mounts where m.count >= 2 && !m[0].hasPrefix(".") && !m[0].hasPrefix("/") {
                if !topVolumes.contains(m[0]) { problems.append("\(file): volume \(m[0]) is not defined") }
            }
            let targets = mounts.compactMap { $0.count >= 2 ? $0[1] : nil }
            switch sub {
            case "coordinator":
                guard let ports = coordinatorPorts(call) else { continue }
                coordinators[name] = ports
                let open = composePorts(service["ports"]).union(composePorts(service["expose"]))
                for p in ports.exposed where !open.contains(p) {
                    problems.append("\(file): coordinator \(name) listens on \(p), which is not in ports/expose")
                }
                if let state = call.value("--state"), !targets.contains(state) {
                    problems.append(
                        "\(file): --state \(state) of \(name) is not a volume: a new container starts empty")
                }
            case "worker":
                workers.append((name, call, service))
            default: break
            }
        }
        for (name, call, service) in workers {
            let address = call.value("--coordinator")
            if let host = host(address), let ports = coordinators[host] {
                if port(address) != ports.bind {
                    problems.append(
                        "\(file): \(name) connects to port \(port(address) ?? 0), \(host) binds \(ports.bind)")
                }
            } else {
                problems.append("\(file): \(name) connects to \(address ?? "nothing"), which is no coordinator service")
            }
            let grace = Double(call.value("--drain-grace") ?? "60") ?? 60
            let stop = seconds(service["stop_grace_period"].map { "\($0)" }) ?? 10
            if stop <= grace + stopMargin {
                problems.append(
                    "\(file): \(name)'s stop_grace_period \(stop) s does not exceed --drain-grace \(grace) s")
            }
            if call.value("--id") == nil { problems.append("\(file): \(name) has no --id") }
        }
        let ids = workers.compactMap { $0.1.value("--id") }
        if Set(ids).count != ids.count { problems.append("\(file): two workers share an --id: \(ids)") }
        if coordinators.isEmpty { problems.append("\(file): no coordinator service") }
        return problems
    }

    /// Kubernetes manifests, all files together (Secrets in one, their users in another).
    static func kubernetes(files: [(name: String, text: String)], cli: CLI) throws -> [String] {
        var problems: [String] = []
        var docs: [(String, [String: Any])] = []
        for f in files { docs += try yamlDocuments(file: f.name, text: f.text).map { (f.name, $0) } }
        func kind(_ d: [String: Any]) -> String { "\(d["kind"] ?? "")" }
        func name(_ d: [String: Any]) -> String { "\((d["metadata"] as? [String: Any])?["name"] ?? "")" }
        for (file, d) in docs where d["apiVersion"] == nil || d["kind"] == nil || name(d).isEmpty {
            problems.append("\(file): a document without apiVersion, kind or metadata.name")
        }
        var secrets: [String: Set<String>] = [:]
        for (file, d) in docs where kind(d) == "Secret" {
            let data = (d["stringData"] as? [String: Any] ?? [:]).merging(d["data"] as? [String: Any] ?? [:]) { a, _ in
                a
            }
            secrets[name(d)] = Set(data.keys)
            for (key, value) in data where !"\(value)".contains("REPLACE") {
                problems.append(
                    "\(file): Secret \(name(d)) key \(key) is not a REPLACE placeholder (never commit keys)")
            }
        }
        let services = docs.filter { kind($0.1) == "Service" }
        var coordinatorService: [String: CoordinatorPorts] = [:]

        for (file, d) in docs where kind(d) == "StatefulSet" || kind(d) == "Deployment" || kind(d) == "Job" {
            let spec = d["spec"] as? [String: Any] ?? [:]
            let template = spec["template"] as? [String: Any] ?? [:]
            let meta = template["metadata"] as? [String: Any] ?? [:]
            let labels = meta["labels"] as? [String: Any] ?? [:]
            let pod = template["spec"] as? [String: Any] ?? [:]
            let volumes = pod["volumes"] as? [[String: Any]] ?? []
            let claims = (spec["volumeClaimTemplates"] as? [[String: Any]] ?? []).map {
                "\(($0["metadata"] as? [String: Any])?["name"] ?? "")"
            }
            for c in pod["containers"] as? [[String: Any]] ?? [] {
                let command = strings(c["command"])
                let args = strings(c["args"])
                let words = command.isEmpty ? args : Array(command.dropFirst()) + args
                guard let sub = words.first else { continue }
                let call = Invocation(file: "\(file) (\(name(d)))", subcommand: sub, args: Array(words.dropFirst()))
                problems += flagProblems(call, cli: cli)
                let mounts = c["volumeMounts"] as? [[String: Any]] ?? []
                let ports = c["ports"] as? [[String: Any]] ?? []
                var portByName: [String: Int] = [:]
                for p in ports {
                    if let n = p["name"] as? String, let v = p["containerPort"] as? Int { portByName[n] = v }
                }
                let env = Set((c["env"] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "")" })
                for a in call.args {
                    // $(VAR) in args is expanded from the container's env only.
                    var rest = Substring(a)
                    while let r = rest.range(of: "$(") {
                        let tail = rest[r.upperBound...]
                        guard let close = tail.firstIndex(of: ")") else { break }
                        let v = String(tail[..<close])
                        if !env.contains(v) { problems.append("\(file): args use $(\(v)) but no env \(v)") }
                        rest = tail[close...]
                    }
                }
                // Files the command reads: under a mount of a Secret that has that key.
                for flag in ["--curve-key", "--authorized-keys", "--http-token-file", "--server-key"] {
                    guard let path = call.value(flag) else { continue }
                    let dir = (path as NSString).deletingLastPathComponent
                    let key = (path as NSString).lastPathComponent
                    guard let m = mounts.first(where: { "\($0["mountPath"] ?? "")" == dir }),
                        let v = volumes.first(where: { "\($0["name"] ?? "")" == "\(m["name"] ?? "")" }),
                        let secretName = (v["secret"] as? [String: Any])?["secretName"] as? String
                    else {
                        problems.append("\(file): \(flag) \(path) is not in a mounted Secret")
                        continue
                    }
                    if let keys = secrets[secretName] {
                        if !keys.contains(key) { problems.append("\(file): Secret \(secretName) has no key \(key)") }
                    } else {
                        problems.append("\(file): Secret \(secretName) is not defined in deploy/k8s")
                    }
                }
                for m in mounts {
                    let n = "\(m["name"] ?? "")"
                    if !volumes.contains(where: { "\($0["name"] ?? "")" == n }) && !claims.contains(n) {
                        problems.append("\(file): volumeMount \(n) has no volume")
                    }
                }
                let grace = Double(call.value("--drain-grace") ?? "60") ?? 60
                let termination = Double("\(pod["terminationGracePeriodSeconds"] ?? 30)") ?? 30
                switch sub {
                case "coordinator":
                    guard let cp = coordinatorPorts(call) else { continue }
                    for p in cp.exposed where !portByName.values.contains(p) {
                        problems.append("\(file): the coordinator listens on \(p), not a containerPort")
                    }
                    if let state = call.value("--state"),
                        !mounts.contains(where: {
                            "\($0["mountPath"] ?? "")" == state && claims.contains("\($0["name"] ?? "")")
                        })
                    {
                        problems.append("\(file): --state \(state) is not a persistent volume claim's mount")
                    }
                    let ann = meta["annotations"] as? [String: Any] ?? [:]
                    if "\(ann["prometheus.io/scrape"] ?? "")" != "true"
                        || Int("\(ann["prometheus.io/port"] ?? "")") != cp.http
                        || "\(ann["prometheus.io/path"] ?? "")" != "/metrics"
                    {
                        problems.append("\(file): prometheus.io annotations do not point at --http's /metrics")
                    }
                    for probe in ["readinessProbe", "livenessProbe"] {
                        guard let p = c[probe] as? [String: Any] else {
                            problems.append("\(file): no \(probe)")
                            continue
                        }
                        let target = ((p["tcpSocket"] ?? p["httpGet"]) as? [String: Any])?["port"]
                        let number = target.flatMap { $0 as? Int ?? portByName["\($0)"] }
                        if number == nil || !portByName.values.contains(number!) {
                            problems.append("\(file): \(probe) targets \(target ?? "nothing"), not a container port")
                        }
                    }
                    // Services selecting these pods route each port to a container port of the same number.
                    for (sfile, s) in services {
                        let sspec = s["spec"] as? [String: Any] ?? [:]
                        let selector = sspec["selector"] as? [String: Any] ?? [:]
                        guard !selector.isEmpty, selector.allSatisfy({ "\(labels[$0.key] ?? "")" == "\($0.value)" })
                        else { continue }
                        for sp in sspec["ports"] as? [[String: Any]] ?? [] {
                            let target = sp["targetPort"] ?? sp["port"]
                            let number = target.flatMap { $0 as? Int ?? portByName["\($0)"] }
                            if number == nil || number != sp["port"] as? Int {
                                problems.append(
                                    "\(sfile): Service \(name(s)) port \(sp["port"] ?? "?") → \(target ?? "?"), "
                                        + "not the container port of that number")
                            }
                        }
                        let servicePorts = Set(
                            (sspec["ports"] as? [[String: Any]] ?? []).compactMap { $0["port"] as? Int })
                        if sspec["clusterIP"] as? String != "None" {
                            for p in cp.exposed where !servicePorts.contains(p) {
                                problems.append(
                                    "\(sfile): Service \(name(s)) does not expose the coordinator's port \(p)")
                            }
                            coordinatorService[name(s)] = cp
                        }
                    }
                    if let serviceName = spec["serviceName"] as? String,
                        !services.contains(where: { name($0.1) == serviceName })
                    {
                        problems.append("\(file): serviceName \(serviceName) is no Service")
                    }
                    if termination <= 10 {
                        problems.append("\(file): the coordinator has no time to commit on SIGTERM")
                    }
                case "worker":
                    let limits = (c["resources"] as? [String: Any])?["limits"] as? [String: Any] ?? [:]
                    if limits["nvidia.com/gpu"] == nil {
                        problems.append("\(file): the worker requests no nvidia.com/gpu")
                    }
                    if termination <= grace + stopMargin {
                        problems.append(
                            "\(file): terminationGracePeriodSeconds \(termination) does not exceed --drain-grace \(grace) s"
                        )
                    }
                    if call.value("--id") == nil { problems.append("\(file): the worker has no --id") }
                default: break
                }
            }
        }
        // Workers connect to a coordinator Service on its worker port.
        for (file, d) in docs where kind(d) == "Deployment" || kind(d) == "Job" || kind(d) == "StatefulSet" {
            let pod = ((d["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any] ?? [:]
            for c in pod["containers"] as? [[String: Any]] ?? [] {
                let args = strings(c["args"])
                guard args.first == "worker" else { continue }
                let call = Invocation(file: file, subcommand: "worker", args: Array(args.dropFirst()))
                let address = call.value("--coordinator")
                guard let h = host(address), let cp = coordinatorService[h] else {
                    problems.append(
                        "\(file): the worker connects to \(address ?? "nothing"), which is no coordinator Service")
                    continue
                }
                if port(address) != cp.bind {
                    problems.append(
                        "\(file): the worker connects to port \(port(address) ?? 0); the coordinator binds \(cp.bind)")
                }
            }
        }
        if coordinatorService.isEmpty { problems.append("deploy/k8s: no Service in front of a coordinator") }
        return problems
    }

    // MARK: Coverage

    /// Every file under deploy/, relative to the repository root.
    static func deployFiles() -> [String] {
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: deployDir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: "\(deployDir)/\(rel)", isDirectory: &isDir), !isDir.boolValue {
                out.append("deploy/\(rel)")
            }
        }
        return out.sorted()
    }

    /// Which check covers a file; nil: none does (a new kind of file needs a check first).
    static func checkFor(_ path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        switch true {
        case path.hasPrefix("deploy/systemd/") && name.hasSuffix(".service"): return "systemd unit"
        case path == "deploy/systemd/sparsegrid.sysusers.conf": return "sysusers"
        case path == "deploy/systemd/sparsegrid.env.example": return "env file"
        case path.hasPrefix("deploy/slurm/") && name.hasSuffix(".sbatch"): return "slurm"
        case name.hasSuffix(".sh"): return "shell"
        case path.hasPrefix("deploy/container/") && name.hasPrefix("Containerfile."): return "containerfile"
        case path == "deploy/container/compose.yaml": return "compose"
        case path.hasPrefix("deploy/k8s/") && name.hasSuffix(".yaml"): return "kubernetes"
        case path == "deploy/README.md": return "readme"
        default: return nil
        }
    }

    static func files(_ check: String) -> [String] { deployFiles().filter { checkFor($0) == check } }

    static func read(_ path: String) throws -> String {
        try String(contentsOfFile: "\(Harness.repoRoot)/\(path)", encoding: .utf8)
    }
}

// MARK: Running the files' own command lines

extension DeployChecks {
    /// A deploy file's coordinator and worker command lines, made runnable here: the same options,
    /// the same bind host, CURVE keys and token, with paths moved into `dir` (keys made by
    /// `sparsegrid keygen`, named as the files expect), the worker port moved to `port` (its
    /// artifacts on `port` + 1 as the files assume), HTTP on a free port, the control socket on a
    /// free loopback port, GPUs replaced by one CPU slot and the test engine offered.
    static func localize(_ call: Invocation, dir: String, port: Int) -> [String] {
        var pairs: [(String, String?)] = []
        var i = 0
        let known = call.subcommand == "coordinator" ? coordinatorValued : workerValued
        while i < call.args.count {
            let a = call.args[i]
            i += 1
            if a.hasPrefix("$") { continue }  // e.g. systemd's $SPARSEGRID_WORKER_OPTS, empty by default
            if let eq = a.firstIndex(of: "="), a.hasPrefix("--") {
                pairs.append((String(a[..<eq]), String(a[a.index(after: eq)...])))
            } else if known.contains(a), i < call.args.count {
                pairs.append((a, call.args[i]))
                i += 1
            } else {
                pairs.append((a, nil))
            }
        }
        var out = [call.subcommand]
        var sawControl = false
        for (name, value) in pairs {
            var v = value
            switch (call.subcommand, name) {
            case ("coordinator", "--state"): v = "\(dir)/state"
            case ("coordinator", "--bind"): v = "tcp://\(host(value) ?? "127.0.0.1"):\(port)"
            case ("coordinator", "--curve-key"): v = "\(dir)/coord.key"
            case ("coordinator", "--authorized-keys"): v = "\(dir)/workers.txt"
            case ("coordinator", "--http-token-file"): v = "\(dir)/http.token"
            case ("coordinator", "--http"): v = "\(host(value) ?? "127.0.0.1"):0"
            case ("coordinator", "--control"):
                v = "tcp://127.0.0.1:*"
                sawControl = true
            case ("worker", "--coordinator"): v = "tcp://127.0.0.1:\(port)"
            case ("worker", "--gpus"): continue
            case ("worker", "--curve-key"): v = "\(dir)/worker.key"
            case ("worker", "--server-key"): v = "\(dir)/coord.pub"
            case ("worker", "--cache"): v = "\(dir)/cache"
            case ("worker", "--id"):
                v = value?.replacingOccurrences(of: "%H", with: "host").replacingOccurrences(of: "%i", with: "0")
                    .replacingOccurrences(of: "$(POD_NAME)", with: "pod-0")
            default: break
            }
            out.append(name)
            if let v { out.append(v) }
        }
        if call.subcommand == "coordinator", !sawControl { out += ["--control", "tcp://127.0.0.1:*"] }
        if call.subcommand == "worker" {
            if !out.contains("--slots") { out += ["--slots", "1"] }
            out += ["--engine", Harness.testEngine, "--only", "test"]
        }
        return out
    }

    static let coordinatorValued: Set<String> = [
        "--state", "--bind", "--data", "--control", "--heartbeat", "--dead-after", "--retry-backoff", "--curve-key",
        "--authorized-keys", "--authorized-clients", "--log-format", "--http", "--http-token-file",
    ]
    static let workerValued: Set<String> = [
        "--coordinator", "--slots", "--gpus", "--id", "--cache", "--engine", "--only", "--threads", "--task-timeout",
        "--idle-timeout", "--drain-grace", "--log-format", "--connect-timeout", "--curve-key", "--server-key",
    ]

}
