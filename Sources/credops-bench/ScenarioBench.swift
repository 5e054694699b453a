import ApinizerSandbox
import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// Plan and apply of N credentials in E sandbox environments at latency L and concurrency C,
/// run by the real binary in a child process, against the round-trip bound.
struct ScenarioBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scenario", abstract: "Apply and plan wall time against the round-trip bound.")

    @Option(help: "Credentials per environment.") var credentials = 1000
    @Option(help: "Environments, applied side by side.") var environments = 3
    @Option(help: "Latency the sandboxes add to every answer (ms).") var latencyMs = 20
    @Option(help: "Requests in flight per environment.") var concurrency = 16
    @Flag(inversion: .prefixedNo, help: "Give every credential one access grant.") var grants = true

    struct Measurement {
        var name: String
        var wall: Double
        var ideal: Double
        var requests: Int
        var minimum: Int
        var cpu: Double
        var maxRSS: Int
        var exitCode: Int32
    }

    func run() async throws {
        let dir = TemporaryDirectory(prefix: "credops-bench")
        var faults = SandboxFaults()
        faults.latencyMilliseconds = latencyMs
        var sandboxes: [SandboxFixture] = []
        let seed = SandboxSeed(projects: ["bench", "admin"], roles: ["API_USER"], apiProxies: ["BenchAPI"], apiProxyGroups: [],
                               gateways: ["gw"], tokens: [], clients: [:], tokenTTLSeconds: 3600, credentials: [])
        for i in 0..<environments {
            let sandbox = try await SandboxFixture.start(seed: seed, faults: faults, token: "bench-token")
            sandboxes.append(sandbox)
            dir.write("environments/env\(i).yaml", """
                provider: apinizer
                url: \(sandbox.baseURL)
                auth: { bearer: { fromEnv: BENCH_TOKEN } }
                concurrency: \(concurrency)
                timeoutSeconds: 60
                """)
        }
        var manifest = "apiVersion: credops/v1\nkind: CredentialSet\nproject: bench\ncredentials:\n"
        for i in 0..<credentials {
            manifest += """
                  - username: bench-user-\(i)
                    fullName: Bench User \(i)
                    email: user\(i)@example.com
                    password: { fromEnv: BENCH_PASSWORD }
                    roleNameList: [API_USER]
                    ipList: [10.\(i / 65536 % 256).\(i / 256 % 256).\(i % 256)]

                """
            if grants { manifest += "    access: [{ name: BenchAPI, type: API_PROXY }]\n" }
        }
        dir.write("manifests/bench.yaml", manifest)
        let environment = ["PATH": "/usr/bin:/bin", "HOME": dir.path, "BENCH_TOKEN": "bench-token",
                           "BENCH_PASSWORD": "bench-password-1", "NO_COLOR": "1"]

        func measure(_ name: String, _ arguments: [String], minimumPerEnvironment: Int) async throws -> Measurement {
            for s in sandboxes { try await s.resetStats() }
            let child = try ChildProcess(credopsBinary, arguments, environment: environment, directory: dir.path)
            let start = ContinuousClock.now
            let code = await child.wait(timeout: .seconds(1800)) ?? -1
            let wall = ContinuousClock.now - start
            var perEnvironment: [Int] = []
            for s in sandboxes { perEnvironment.append(try await s.stats().total) }
            // Environments run side by side: the bound is the slowest one's requests ÷ C × latency.
            let ideal = Double(perEnvironment.max() ?? 0) / Double(concurrency) * Double(latencyMs) / 1000
            let usage = child.resources
            return Measurement(name: name, wall: Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18,
                               ideal: ideal, requests: perEnvironment.reduce(0, +), minimum: minimumPerEnvironment * environments,
                               cpu: usage.cpuSeconds, maxRSS: usage.maxRSSBytes, exitCode: code)
        }

        let perCredentialWrites = grants ? 2 : 1
        let apply = try await measure("apply (first: create\(grants ? " + grant" : ""))", ["apply", "manifests", "--auto-approve"],
                                      minimumPerEnvironment: 1 + credentials * perCredentialWrites)
        let plan = try await measure("plan (in sync)", ["plan", "manifests"], minimumPerEnvironment: 1 + (grants ? credentials : 0))
        for s in sandboxes { await s.stop() }

        print("\(credentials) credentials × \(environments) environments, latency \(latencyMs) ms, concurrency \(concurrency):")
        print("  run                          wall      ideal     ideal/wall  requests (min)     CPU      peak RSS  exit")
        for m in [apply, plan] {
            print(String(format: "  %@ %6.2f s  %6.2f s   %5.2f      %6d (%6d)   %5.2f s  %@  %d",
                         m.name.padding(toLength: 28, withPad: " ", startingAt: 0), m.wall, m.ideal, m.ideal / m.wall,
                         m.requests, m.minimum, m.cpu, megabytes(m.maxRSS).padding(toLength: 8, withPad: " ", startingAt: 0), m.exitCode))
        }
    }
}
