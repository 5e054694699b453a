import ApinizerSandbox
import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// The second provider as a user meets it: the real binary applies and plans N LeadConduit
/// credentials against the emulator (ids assigned by the server, passwords returned by reads and
/// compared by fingerprint), with the same columns as the Apinizer scenarios.
struct LeadConduitBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leadconduit", abstract: "Apply and plan against the LeadConduit emulator.")

    @Option(help: "Credential counts.") var credentials: [Int] = [1_000, 10_000]
    @Option(help: "Latency the emulator adds to every answer (ms).") var latencyMs = 20
    @Option(help: "Requests in flight.") var concurrency = 16

    func run() async throws {
        print("LeadConduit (emulator in this process, credops in a child process; apply = 1 list + 1 create each, plan = 1 list):")
        print(Table.header)
        for n in credentials {
            for row in try await measure(n) { print(row) }
        }
    }

    func measure(_ count: Int) async throws -> [String] {
        let key = "bench-lc-key-0123"
        var configuration = LeadConduitConfiguration(apiKeys: [key])
        configuration.faults.latencyMilliseconds = latencyMs
        let server = try await LeadConduitServer.start(configuration)
        defer { Task { await server.stop() } }
        let dir = TemporaryDirectory(prefix: "credops-bench-lc")
        dir.write("environments/lc.yaml", """
            provider: leadconduit
            url: \(server.baseURL)
            auth: { apiKey: { fromEnv: BENCH_KEY } }
            concurrency: \(concurrency)
            timeoutSeconds: 120
            """)
        var manifest = "apiVersion: credops/v1\nkind: CredentialSet\nprovider: leadconduit\nproject: bench\ncredentials:\n"
        for i in 0..<count {
            manifest += "  - { name: Bench delivery \(i), package: pkg-\(i % 7), username: poster-\(i), password: { fromEnv: BENCH_PASSWORD } }\n"
        }
        dir.write("manifests/bench.yaml", manifest)
        let environment = ["PATH": "/usr/bin:/bin", "HOME": dir.path, "BENCH_KEY": key, "BENCH_PASSWORD": "bench-password-1", "NO_COLOR": "1"]
        let scenario = Scenario(credentials: count, environments: 1, latencyMs: latencyMs, concurrency: concurrency, grants: false)
        var rows: [String] = []
        for (name, arguments, minimum) in [("apply", ["apply", "manifests", "--auto-approve", "--quiet"], 1 + count),
                                          ("plan", ["plan", "manifests", "--quiet"], 1)] {
            let before = await server.stats().total
            let benchBefore = ProcessUsage.now().cpu
            let start = ContinuousClock.now
            let child = try ChildProcess(credopsBinary, arguments, environment: environment, directory: dir.path)
            let code = await child.wait(timeout: .seconds(3600)) ?? -1
            let wall = (ContinuousClock.now - start).inSeconds
            let requests = await server.stats().total - before
            let m = Scenario.Measurement(name: name, wall: wall, ideal: scenario.ideal(requests), requests: requests, minimum: minimum,
                                         cpu: child.resources.cpuSeconds, maxRSS: child.resources.maxRSSBytes, exitCode: code,
                                         sandboxCPU: ProcessUsage.now().cpu - benchBefore)
            rows.append(Table.row(scenario, m))
        }
        return rows
    }
}
