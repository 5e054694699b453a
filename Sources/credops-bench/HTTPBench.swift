import ApinizerProvider
import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// Requests per second and client CPU of `HTTPClient` against a sandbox in another process.
struct HTTPBench: AsyncParsableCommand {
    init() {}

    static let configuration = CommandConfiguration(commandName: "http", abstract: "HTTP client throughput and CPU against the sandbox.")

    @Option(help: "Requests to send.") var requests = 20_000
    @Option(help: "Requests in flight (the client's worker threads).") var concurrency = 16
    @Option(help: "The sandbox's latency per request, in ms: at 0 answers come in bursts, above it one at a time, as from a real server.") var latencyMs = 0
    @Flag(help: "Run the calling tasks on the client's own thread (as plan and apply do).") var onLoop = false
    @Flag(help: "Go through the Apinizer provider (auth header, retries, JSON decoding), reading an access list.") var provider = false

    func run() async throws {
        // The sandbox runs in its own process so that this process's CPU is the client's alone.
        let out = ChildProcess.pipe()
        let sandbox = try ChildProcess(credopsBinary, ["sandbox", "serve", "--port", "0", "--token", "bench-token", "--latency-ms", "\(latencyMs)"], stdout: out.write)
        close(out.write)
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(out.read, &byte, 1) == 1, byte != 10 { bytes.append(byte) }
        let base = String(decoding: bytes, as: UTF8.self)
        defer {
            sandbox.signal(SIGTERM)
            _ = sandbox.waitBlocking(timeout: .seconds(10))
        }
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: concurrency))
        defer { client.shutdown() }
        if provider {
            try await measureProvider(base: base, client: client)
            return
        }
        let request = HTTPRequest(method: .get, url: base + "/apiops/projects/payments/credentials/",
                                  headers: HTTPHeaders([("Authorization", "Bearer bench-token")]))
        // Warm up the connections.
        for _ in 0..<concurrency { _ = try await client.send(request) }

        let before = ProcessUsage.now()
        let start = ContinuousClock.now
        let failures = try await withTaskExecutorPreference(onLoop ? client.taskExecutor : nil) { try await withThrowingTaskGroup(of: Int.self) { group in
            let perTask = requests / concurrency
            for _ in 0..<concurrency {
                group.addTask {
                    var failed = 0
                    for _ in 0..<perTask where (try await client.send(request)).status != 200 { failed += 1 }
                    return failed
                }
            }
            return try await group.reduce(0, +)
        } }
        let wall = ContinuousClock.now - start
        let after = ProcessUsage.now()
        let seconds = wall.inSeconds
        let sent = (requests / concurrency) * concurrency
        print("HTTP client against the sandbox (separate process, \(latencyMs) ms), concurrency \(concurrency):")
        print(String(format: "  %d requests in %.2f s = %.0f requests/s; client CPU %.2f s (%.1f µs per request); %d failed",
                     sent, seconds, Double(sent) / seconds, after.cpu - before.cpu, (after.cpu - before.cpu) / Double(sent) * 1e6, failures))
    }

    /// The same, one level up: `ProviderSession.grants` (what a plan does per credential).
    private func measureProvider(base: String, client: HTTPClient) async throws {
        let environment = EnvironmentConfig(name: "bench", file: "bench.yaml", location: SourceLocation(file: "bench.yaml", line: 1, column: 1),
                                            provider: "apinizer", endpoint: .url(base), endpointLocation: SourceLocation(file: "bench.yaml", line: 1, column: 1))
        let session = ApinizerProvider().session(for: environment, connection: Connection(baseURL: base, credentials: .bearer(Secret("bench-token")),
                                                                                          retry: RetrySettings()), http: client)
        // One credential to read the access list of.
        let seed = Data(#"{"credentials":[{"project":"payments","username":"bench-user","password":"p-1","email":"b@example.com","fullName":"B","roleNameList":[],"enabled":true,"ipList":[],"access":[{"name":"PaymentAPI","type":"API_PROXY"}]}]}"#.utf8)
        _ = try await client.send(HTTPRequest(method: .post, url: base + "/__sandbox/seed",
                                              headers: HTTPHeaders([("Authorization", "Bearer bench-token"), ("Content-Type", "application/json")]), body: seed))
        let benchUser = CredentialAddress(namespace: "payments", key: "bench-user")
        for _ in 0..<concurrency { _ = try await session.grants(of: benchUser) }
        let before = ProcessUsage.now()
        let start = ContinuousClock.now
        let perTask = requests / concurrency
        try await withTaskExecutorPreference(onLoop ? client.taskExecutor : nil) { try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask { for _ in 0..<perTask { _ = try await session.grants(of: benchUser) } }
            }
            try await group.waitForAll()
        } }
        let wall = ContinuousClock.now - start
        let after = ProcessUsage.now()
        let seconds = wall.inSeconds
        let sent = perTask * concurrency
        print("Provider calls (access list read) against the sandbox (separate process, \(latencyMs) ms), concurrency \(concurrency):")
        print(String(format: "  %d calls in %.2f s = %.0f calls/s; client CPU %.2f s (%.1f µs per call)",
                     sent, seconds, Double(sent) / seconds, after.cpu - before.cpu, (after.cpu - before.cpu) / Double(sent) * 1e6))
    }
}
