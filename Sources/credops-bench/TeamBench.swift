import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// Many runners through one shared state: one process applying one environment, then N
/// processes applying N environments at once, each against its own built-in sandbox.
struct TeamBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "team",
        abstract: "N processes on N environments through one shared state, against one process on one.",
        discussion: """
            Needs a database: credops-bench team --state postgres://credops@127.0.0.1:5432/bench \
            (a sqlite:PATH state works too, shared by the processes through its file locks).
            """)

    @Option(help: "The shared state (postgres://... or sqlite:PATH); 'separate' gives each runner a SQLite state of its own, the baseline without sharing.") var state: String
    @Option(help: "Processes (and environments) side by side.") var processes = 8
    @Option(help: "Credentials per environment.") var credentials = 1000
    @Option(help: "Latency the sandboxes add to every answer (ms).") var latencyMs = 20
    @Option(help: "Requests in flight per environment.") var concurrency = 16

    func run() async throws {
        let dir = TemporaryDirectory(prefix: "credops-bench-team")
        let names = (0...processes).map { "team-\($0)-\(UInt32.random(in: 0...UInt32.max))" }
        for name in names {
            dir.write("environments/\(name).yaml", """
                provider: apinizer
                url: sandbox://\(name)
                concurrency: \(concurrency)
                sandbox:
                  projects: [bench]
                  roles: [API_USER]
                  apiProxies: [BenchAPI]
                  gateways: [gw]
                  latencyMilliseconds: \(latencyMs)
                """)
        }
        var manifest = "apiVersion: credops/v1\nkind: CredentialSet\nproject: bench\ncredentials:\n"
        for i in 0..<credentials {
            manifest += "  - { username: team-user-\(i), fullName: Team User \(i), email: u\(i)@example.com, password: { fromEnv: PW }, roleNameList: [API_USER] }\n"
        }
        dir.write("manifests/bench.yaml", manifest)
        let key = FingerprintKey.random().withBytes { $0.map { String(format: "%02x", $0) }.joined() }
        let environment = ["PATH": "/usr/bin:/bin", "HOME": dir.path, "NO_COLOR": "1", "PW": "team-password-1",
                           "CREDOPS_STATE": state, "CREDOPS_STATE_KEY": key]

        func apply(_ selected: ArraySlice<String>) async throws -> (wall: Double, cpu: Double, failed: Int) {
            let start = ContinuousClock.now
            let children = try selected.map { name in
                var env = environment
                if state == "separate" { env["CREDOPS_STATE"] = "sqlite:\(dir.url("state-\(name).db"))" }
                return try ChildProcess(credopsBinary, ["apply", "manifests", "-e", name, "--auto-approve", "--quiet"],
                                        environment: env, directory: dir.path)
            }
            var cpu = 0.0, failed = 0
            for child in children {
                if let code = await child.wait(timeout: .seconds(3600)), code != 0 {
                    failed += 1
                    if failed == 1 { print("  a run failed (exit \(code)); run it by hand in \(dir.path) to see why") }
                }
                cpu += child.resources.cpuSeconds
            }
            let wall = ContinuousClock.now - start
            return (wall.inSeconds, cpu, failed)
        }

        let one = try await apply(names.prefix(1))
        let many = try await apply(names.dropFirst())
        let shown = state == "separate" ? "one SQLite file per runner" : StateLocation.parse(state)?.description ?? "(unreadable state URL)"
        print("\(credentials) credentials per environment at \(latencyMs) ms, concurrency \(concurrency), state \(shown):")
        print("  runners  environments   wall       CPU (all)   failed")
        print(String(format: "  %7d  %12d  %7.2f s  %7.2f s   %6d", 1, 1, one.wall, one.cpu, one.failed))
        print(String(format: "  %7d  %12d  %7.2f s  %7.2f s   %6d", processes, processes, many.wall, many.cpu, many.failed))
        print(String(format: "  ratio (%d runners / 1): %.2f", processes, many.wall / one.wall))
    }
}
