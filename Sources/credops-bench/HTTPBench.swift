import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// Requests per second and client CPU of `HTTPClient` against a sandbox in another process.
struct HTTPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "http", abstract: "HTTP client throughput and CPU against the sandbox.")

    @Option(help: "Requests to send.") var requests = 20_000
    @Option(help: "Requests in flight (the client's worker threads).") var concurrency = 16

    func run() async throws {
        // The sandbox runs in its own process so that this process's CPU is the client's alone.
        let out = ChildProcess.pipe()
        let sandbox = try ChildProcess(credopsBinary, ["sandbox", "serve", "--port", "0", "--token", "bench-token"], stdout: out.write)
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
        let request = HTTPRequest(method: .get, url: base + "/apiops/projects/payments/credentials/",
                                  headers: HTTPHeaders([("Authorization", "Bearer bench-token")]))
        // Warm up the connections.
        for _ in 0..<concurrency { _ = try await client.send(request) }

        let before = ProcessUsage.now()
        let start = ContinuousClock.now
        let failures = try await withThrowingTaskGroup(of: Int.self) { group in
            let perTask = requests / concurrency
            for _ in 0..<concurrency {
                group.addTask {
                    var failed = 0
                    for _ in 0..<perTask where (try await client.send(request)).status != 200 { failed += 1 }
                    return failed
                }
            }
            return try await group.reduce(0, +)
        }
        let wall = ContinuousClock.now - start
        let after = ProcessUsage.now()
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let sent = (requests / concurrency) * concurrency
        print("HTTP client against the sandbox (separate process), concurrency \(concurrency):")
        print(String(format: "  %d requests in %.2f s = %.0f requests/s; client CPU %.2f s (%.1f µs per request); %d failed",
                     sent, seconds, Double(sent) / seconds, after.cpu - before.cpu, (after.cpu - before.cpu) / Double(sent) * 1e6, failures))
    }
}
