import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation

/// What the scenarios need of a sandbox, in this process or in another.
protocol BenchSandbox: Sendable {
    var baseURL: String { get }
    var token: String { get }
    func resetStats() async throws
    func requestCount() async throws -> Int
    func stop() async
}

extension SandboxFixture: BenchSandbox {
    func requestCount() async throws -> Int { try await stats().total }
}

/// A sandbox as a user meets one: `credops sandbox serve` in a process of its own (the release
/// binary beside this one), so that it shares no runtime with the client being measured.
final class ExternalSandbox: BenchSandbox, @unchecked Sendable {
    let baseURL: String
    let token: String
    private let process: ChildProcess
    private let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2))

    /// Starts it with `seed` (a YAML seed file's text) and `latencyMs`; returns once it listens.
    static func start(seed: String, latencyMs: Int, token: String, directory: String) async throws -> ExternalSandbox {
        let seedFile = (directory as NSString).appendingPathComponent("seed-\(UInt32.random(in: 0...UInt32.max)).yaml")
        try seed.write(toFile: seedFile, atomically: true, encoding: .utf8)
        let out = ChildProcess.pipe()
        let process = try ChildProcess(credopsBinary, ["sandbox", "serve", "--port", "0", "--token", token, "--seed", seedFile,
                                                       "--latency-ms", "\(latencyMs)"],
                                       environment: ["PATH": "/usr/bin:/bin", "HOME": directory], directory: directory, stdout: out.write)
        close(out.write)
        // The first line is the base URL.
        let url = try await offCooperativePool { () -> String in
            let handle = FileHandle(fileDescriptor: out.read, closeOnDealloc: true)
            var line = Data()
            while let byte = try handle.read(upToCount: 1), let b = byte.first, b != 10 { line.append(b) }
            return String(decoding: line, as: UTF8.self)
        }
        guard url.hasPrefix("http://") else { throw BenchError("the sandbox did not start: '\(url)'") }
        return ExternalSandbox(baseURL: url, token: token, process: process)
    }

    private init(baseURL: String, token: String, process: ChildProcess) {
        self.baseURL = baseURL
        self.token = token
        self.process = process
    }

    private func admin(_ method: HTTPMethod, _ call: String) async throws -> HTTPResponse {
        try await client.send(HTTPRequest(method: method, url: "\(baseURL)/__sandbox/\(call)", headers: HTTPHeaders([("Authorization", "Bearer \(token)")])))
    }

    func resetStats() async throws { _ = try await admin(.delete, "stats") }

    func requestCount() async throws -> Int {
        let body = try await admin(.get, "stats").body
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any], let total = object["total"] as? Int else {
            throw BenchError("the sandbox's stats are not readable")
        }
        return total
    }

    /// CPU the sandbox process used so far (while it runs: from /proc).
    var cpuSeconds: Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // utime and stime are the 12th and 13th fields after the command name.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() async {
        client.shutdown()
        process.signal(SIGTERM)
        _ = await process.wait(timeout: .seconds(10))
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
