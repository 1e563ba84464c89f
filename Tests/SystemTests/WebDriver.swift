import Foundation
import SweepKit

/// A W3C WebDriver client for the dashboard's browser test: Debian's `chromedriver` drives
/// Debian's `chromium`, headless. Requests go through `curl` (run by `Harness.exec`, so no
/// test thread blocks while the browser works); every reply is JSON `{"value": …}`.
struct WebDriver {
    static let chromium = "/usr/bin/chromium"
    static let chromedriver = "/usr/bin/chromedriver"
    static let curl = "/usr/bin/curl"

    /// Why the browser test cannot run here, or nil when it can.
    static var missing: String? {
        for path in [chromium, chromedriver, curl] where !FileManager.default.isExecutableFile(atPath: path) {
            return "needs \(path): `make deps` installs chromium, chromium-driver and curl"
        }
        return nil
    }

    let port: Int
    let process: Process
    let session: String

    /// Starts chromedriver on a free loopback port and opens a headless Chromium session.
    static func start(log: String, windowSize: (Int, Int) = (1400, 1000)) async throws -> WebDriver {
        var lastError: Error? = nil
        for _ in 0..<3 {
            let port = Int.random(in: 20_000..<60_000)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: chromedriver)
            process.arguments = ["--port=\(port)", "--allowed-ips=127.0.0.1", "--log-path=\(log)"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            do {
                try await Harness.waitFor("chromedriver to answer on port \(port)", timeout: 30) {
                    guard process.isRunning else { throw HarnessError("chromedriver exited") }
                    let status = try await call(port: port, "GET", "/status")
                    return status["ready"] == true
                }
                let options: JSONValue = [
                    "binary": .string(chromium),
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        .string("--window-size=\(windowSize.0),\(windowSize.1)"),
                        .string("--user-data-dir=\(log).profile"),
                    ],
                ]
                let capabilities: JSONValue = [
                    "capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options]]
                ]
                let created = try await call(port: port, "POST", "/session", capabilities, timeout: 120)
                guard let session = created["sessionId"]?.stringValue else {
                    throw HarnessError("no session: \(created)")
                }
                return WebDriver(port: port, process: process, session: session)
            } catch {
                lastError = error
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        throw lastError ?? HarnessError("chromedriver did not start")
    }

    /// One WebDriver command; throws with the driver's message for an error reply.
    static func call(
        port: Int, _ method: String, _ path: String, _ body: JSONValue? = nil, timeout: Double = 60
    ) async throws -> JSONValue {
        var arguments = ["-sS", "--max-time", String(Int(timeout)), "-X", method]
        if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body.canonicalText] }
        arguments.append("http://127.0.0.1:\(port)\(path)")
        let out = try await Harness.exec(curl, arguments, timeout: timeout + 10)
        guard out.status == 0 else { throw HarnessError("curl \(method) \(path): \(out.status) \(out.stderr)") }
        let reply = try JSONValue.parse(out.stdout)
        let value = reply["value"] ?? .null
        if let error = value["error"]?.stringValue {
            throw HarnessError("WebDriver \(method) \(path): \(error): \(value["message"]?.stringValue ?? "")")
        }
        return value
    }

    func call(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        try await Self.call(port: port, method, "/session/\(session)\(path)", body)
    }

    func open(_ url: String) async throws {
        _ = try await call("POST", "/url", ["url": .string(url)])
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    func script(_ script: String) async throws -> JSONValue {
        try await call("POST", "/execute/sync", ["script": .string(script), "args": []])
    }

    /// Polls `script` until `condition` holds for its value; returns that value.
    @discardableResult
    func waitFor(
        _ what: String, timeout: Double = 60, _ script: String, _ condition: (JSONValue) -> Bool
    ) async throws -> JSONValue {
        var last: JSONValue = .null
        do {
            try await Harness.waitFor(what, timeout: timeout) {
                last = try await self.script(script)
                return condition(last)
            }
        } catch {
            throw HarnessError("\(error); the page's last answer: \(last)")
        }
        return last
    }

    /// A PNG of the viewport.
    func screenshot() async throws -> Data {
        let value = try await call("GET", "/screenshot")
        guard let text = value.stringValue, let data = Data(base64Encoded: text) else {
            throw HarnessError("the screenshot is not base64")
        }
        return data
    }

    func quit() async {
        _ = try? await call("DELETE", "")
        await Harness.stop(process)
    }
}
