import ApinizerSandbox
import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// One scenario: N credentials (each with an access grant) in E sandbox environments at latency
/// L, applied and then planned by the real binary in a child process.
struct Scenario: Sendable {
    var credentials: Int
    var environments: Int
    var latencyMs: Int
    var concurrency: Int
    var grants = true
    var stateDir: String?
    /// The state on PostgreSQL (a database of its own on a loopback server the bench starts,
    /// as the tests do: fsync off) instead of SQLite.
    var postgres = false
    /// The sandboxes run as `credops sandbox serve` processes of their own (as a user meets a
    /// server), not in this process.
    var external = false

    /// Requests per environment at the least: one list, then a write per change; a plan of an
    /// environment in sync reads one list and one access list per credential with grants.
    var minimumApply: Int { 1 + credentials * (grants ? 2 : 1) }
    var minimumPlan: Int { 1 + (grants ? credentials : 0) }

    /// The round-trip bound of a run that sends `requests` per environment.
    func ideal(_ requestsPerEnvironment: Int) -> Double {
        Double(requestsPerEnvironment) / Double(concurrency) * Double(latencyMs) / 1000
    }

    /// The round trip a bare client sees from these sandboxes at this concurrency: every
    /// environment at once, `concurrency` GETs in flight each, ten rounds; the slowest
    /// environment's time per round. It is the configured latency plus what the emulator and
    /// the machine add (a lone request at 20 ms takes about 21 ms here), so no client can beat
    /// `requests ÷ concurrency × roundTrip`.
    static func measureRoundTrip(_ sandboxes: [any BenchSandbox], concurrency: Int) async throws -> Double {
        try await withThrowingTaskGroup(of: Double.self) { group in
            for sandbox in sandboxes {
                group.addTask {
                    let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: concurrency))
                    defer { client.shutdown() }
                    let request = HTTPRequest(method: .get, url: sandbox.baseURL + "/apiops/projects/",
                                              headers: HTTPHeaders([("Authorization", "Bearer \(sandbox.token)")]))
                    _ = try await client.send(request)
                    let start = ContinuousClock.now
                    _ = try await Concurrently.map(Array(0..<(concurrency * 10)), limit: concurrency) { (_: Int) throws(HTTPClientError) in
                        try await client.send(request).status
                    }
                    let wall = ContinuousClock.now - start
                    return wall.inSeconds / 10
                }
            }
            return try await group.reduce(0) { max($0, $1) }
        }
    }

    struct Measurement {
        var name: String
        var wall: Double
        var ideal: Double
        /// `requests ÷ concurrency × measured round trip`, the busiest environment's.
        var bound: Double = 0
        var requests: Int
        var minimum: Int
        var cpu: Double
        var maxRSS: Int
        var exitCode: Int32
        /// CPU the sandboxes used meanwhile (in this process, or in their own).
        var sandboxCPU: Double

        var ratio: String { ideal == 0 ? "   —" : String(format: "%4.2f", ideal / wall) }
        var boundRatio: String { bound == 0 ? "   —" : String(format: "%4.2f", bound / wall) }
    }

    /// How the environments are applied.
    enum Mode { case together, oneAtATime }

    /// Starts the sandboxes, runs apply then plan, stops the sandboxes.
    func run(mode: Mode = .together, plan: Bool = true) async throws -> [Measurement] {
        let dir = TemporaryDirectory(prefix: "credops-bench")
        var faults = SandboxFaults()
        faults.latencyMilliseconds = latencyMs
        var sandboxes: [any BenchSandbox] = []
        let seed = SandboxSeed(projects: ["bench", "admin"], roles: ["API_USER"], apiProxies: ["BenchAPI"], apiProxyGroups: [],
                               gateways: ["gw"], tokens: [], clients: [:], tokenTTLSeconds: 3600, credentials: [])
        let seedText = "projects: [bench, admin]\nroles: [API_USER]\napiProxies: [BenchAPI]\napiProxyGroups: []\ngateways: [gw]\n"
        for i in 0..<environments {
            let sandbox: any BenchSandbox = external
                ? try await ExternalSandbox.start(seed: seedText, latencyMs: latencyMs, token: "bench-token", directory: dir.path)
                : try await SandboxFixture.start(seed: seed, faults: faults, token: "bench-token")
            sandboxes.append(sandbox)
            dir.write("environments/env\(i).yaml", """
                provider: apinizer
                url: \(sandbox.baseURL)
                auth: { bearer: { fromEnv: BENCH_TOKEN } }
                concurrency: \(concurrency)
                timeoutSeconds: 120
                """)
        }
        defer { Task { [sandboxes] in for s in sandboxes { await s.stop() } } }
        let roundTrip = latencyMs > 0 ? try await Self.measureRoundTrip(sandboxes, concurrency: concurrency) : 0
        let perFile = 5_000
        for file in 0..<((credentials + perFile - 1) / perFile) {
            var manifest = "apiVersion: credops/v1\nkind: CredentialSet\nproject: bench\ncredentials:\n"
            for i in (file * perFile)..<min(credentials, (file + 1) * perFile) {
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
            dir.write("manifests/bench\(file).yaml", manifest)
        }
        var environment = ["PATH": "/usr/bin:/bin", "HOME": dir.path, "BENCH_TOKEN": "bench-token",
                           "BENCH_PASSWORD": "bench-password-1", "NO_COLOR": "1"]
        let stateHolder = stateDir.map { TemporaryDirectory(prefix: "credops-bench-state", in: $0) }
        if let stateHolder { environment["CREDOPS_STATE"] = "sqlite:\(stateHolder.url("state.db"))" }
        if postgres {
            environment["CREDOPS_STATE"] = try await PostgresServer.database()
            environment["CREDOPS_STATE_KEY"] = String(repeating: "5e", count: 32)
        }

        func sandboxCPU() -> Double {
            external ? sandboxes.compactMap { ($0 as? ExternalSandbox)?.cpuSeconds }.reduce(0, +) : ProcessUsage.now().cpu
        }
        func measure(_ name: String, _ runs: [[String]], minimumPerEnvironment: Int) async throws -> Measurement {
            for s in sandboxes { try await s.resetStats() }
            let benchBefore = sandboxCPU()
            let start = ContinuousClock.now
            var cpu = 0.0, rss = 0, code: Int32 = 0
            for arguments in runs {
                let child = try ChildProcess(credopsBinary, arguments, environment: environment, directory: dir.path)
                code = max(code, await child.wait(timeout: .seconds(3600)) ?? -1)
                cpu += child.resources.cpuSeconds
                rss = max(rss, child.resources.maxRSSBytes)
            }
            let wall = ContinuousClock.now - start
            var perEnvironment: [Int] = []
            for s in sandboxes { perEnvironment.append(try await s.requestCount()) }
            // Side by side, the bound is the busiest environment's; one at a time, their sum.
            let busiest = runs.count == 1 ? perEnvironment.max() ?? 0 : perEnvironment.reduce(0, +)
            return Measurement(name: name, wall: wall.inSeconds,
                               ideal: self.ideal(busiest), bound: Double(busiest) / Double(concurrency) * roundTrip, requests: perEnvironment.reduce(0, +), minimum: minimumPerEnvironment * environments,
                               cpu: cpu, maxRSS: rss, exitCode: code, sandboxCPU: sandboxCPU() - benchBefore)
        }

        let applyRuns: [[String]] = switch mode {
        case .together: [["apply", "manifests", "--auto-approve", "--quiet"]]
        case .oneAtATime: (0..<environments).map { ["apply", "manifests", "--auto-approve", "--quiet", "-e", "env\($0)"] }
        }
        var results = [try await measure("apply", applyRuns, minimumPerEnvironment: minimumApply)]
        if plan {
            results.append(try await measure("plan", [["plan", "manifests", "--quiet"]], minimumPerEnvironment: minimumPlan))
        }
        return results
    }
}

enum Table {
    static let header = "  credentials  envs  latency  conc  run      wall       ideal     ideal/wall  rtt bound  bound/wall  requests (min)      credops CPU  CPU/cred-env  peak RSS   sandbox CPU"

    static func row(_ s: Scenario, _ m: Scenario.Measurement) -> String {
        String(format: "  %11d  %4d  %4d ms  %4d  %@ %7.2f s  %7.2f s    %@     %7.2f s   %@      %7d (%7d)  %7.2f s  %7.0f µs    %@  %7.2f s%@",
               s.credentials, s.environments, s.latencyMs, s.concurrency, m.name.padding(toLength: 6, withPad: " ", startingAt: 0),
               m.wall, m.ideal, m.ratio, m.bound, m.boundRatio, m.requests, m.minimum, m.cpu,
               m.cpu / Double(max(1, s.credentials * s.environments)) * 1e6,
               megabytes(m.maxRSS).padding(toLength: 9, withPad: " ", startingAt: 0),
               m.sandboxCPU, m.exitCode == 0 ? "" : "  exit \(m.exitCode)")
    }
}

/// One scenario, printed.
struct ScenarioBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scenario", abstract: "Apply and plan wall time against the round-trip bound.")

    @Option(help: "Credentials per environment.") var credentials = 1000
    @Option(help: "Environments, applied side by side.") var environments = 3
    @Option(help: "Latency the sandboxes add to every answer (ms).") var latencyMs = 20
    @Option(help: "Requests in flight per environment.") var concurrency = 16
    @Flag(inversion: .prefixedNo, help: "Give every credential one access grant.") var grants = true
    @Option(help: "Keep the state database in this directory (e.g. /dev/shm to leave fsync out).") var stateDir: String?
    @Flag(help: "Run the sandboxes as `credops sandbox serve` processes of their own.") var external = false
    @Flag(help: "Keep the state on PostgreSQL: a loopback server the bench starts (fsync off).") var postgres = false

    func run() async throws {
        let scenario = Scenario(credentials: credentials, environments: environments, latencyMs: latencyMs, concurrency: concurrency,
                                grants: grants, stateDir: stateDir, postgres: postgres, external: external)
        print(Table.header)
        for m in try await scenario.run() { print(Table.row(scenario, m)) }
    }
}

/// The table of the issue: N × E × L × C.
struct MatrixBench: AsyncParsableCommand {
    init() {}

    static let configuration = CommandConfiguration(commandName: "matrix", abstract: "Plan and apply over credentials × environments × latency × concurrency.")

    @Option(help: "Credential counts.") var credentials: [Int] = [100, 1_000, 10_000]
    @Option(help: "Environment counts.") var environments: [Int] = [1, 3]
    @Option(help: "Latencies (ms).") var latencies: [Int] = [0, 20]
    @Option(help: "Concurrency levels.") var concurrency: [Int] = [4, 16, 64]
    @Option(help: "Skip scenarios whose apply bound is longer than this (seconds); 0 runs all.") var maxIdeal = 30.0
    @Flag(help: "Run the sandboxes as `credops sandbox serve` processes of their own.") var external = false

    func run() async throws {
        print(Table.header)
        for n in credentials {
            for e in environments {
                for l in latencies {
                    for c in concurrency {
                        let s = Scenario(credentials: n, environments: e, latencyMs: l, concurrency: c, external: external)
                        if maxIdeal > 0 && s.ideal(s.minimumApply) > maxIdeal {
                            print(String(format: "  %11d  %4d  %4d ms  %4d  skipped: the apply bound alone is %.0f s (--max-ideal 0 runs it)",
                                         n, e, l, c, s.ideal(s.minimumApply)))
                            continue
                        }
                        for m in try await s.run() { print(Table.row(s, m)) }
                    }
                }
            }
        }
    }
}

/// The same apply three ways: credops, a decK/Terraform-like default, a sequential script.
struct CompareBench: AsyncParsableCommand {
    init() {}

    static let configuration = CommandConfiguration(commandName: "compare", abstract: "credops against one-environment-at-a-time tools.")

    @Option(help: "Credentials per environment.") var credentials = 250
    @Option(help: "Environments.") var environments = 3
    @Option(help: "Latency (ms).") var latencyMs = 20

    func run() async throws {
        let ours = try await Scenario(credentials: credentials, environments: environments, latencyMs: latencyMs, concurrency: 16)
            .run(mode: .together, plan: false)[0]
        let deckLike = try await Scenario(credentials: credentials, environments: environments, latencyMs: latencyMs, concurrency: 10)
            .run(mode: .oneAtATime, plan: false)[0]
        let sequential = try await Scenario(credentials: credentials, environments: environments, latencyMs: latencyMs, concurrency: 1)
            .run(mode: .oneAtATime, plan: false)[0]
        print("Apply of \(credentials) credentials (create + grant) × \(environments) environments at \(latencyMs) ms:")
        print("  way                                                     wall       requests   vs credops")
        for (name, m) in [("credops (environments side by side, 16 in flight)", ours),
                          ("one environment at a time, 10 in flight (decK/Terraform-like)", deckLike),
                          ("one environment at a time, 1 in flight (a sequential script)", sequential)] {
            print(String(format: "  %@ %7.2f s   %7d    %5.1f×", name.padding(toLength: 55, withPad: " ", startingAt: 0), m.wall, m.requests, m.wall / ours.wall))
        }
    }
}

/// Everything, in one run (under ten minutes on the reference machine).
struct AllBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "all", abstract: "Every benchmark, one after the other.")

    func run() async throws {
        let start = ContinuousClock.now
        // Parsed, not constructed: ArgumentParser's property wrappers hold no value until parsed.
        try InputBench.parse([]).run()
        print("")
        let http = try HTTPBench.parse(["--requests", "20000", "--concurrency", "16"])
        try await http.run()
        print("")
        try await MicroBench.parse([]).run()
        print("")
        let matrix = try MatrixBench.parse(["--max-ideal", "30"])
        try await matrix.run()
        print("")
        let compare = try CompareBench.parse([])
        try await compare.run()
        print("")
        try await LeadConduitBench.parse([]).run()
        print("\nAll benchmarks took \((ContinuousClock.now - start).formatted(.units(allowed: [.minutes, .seconds], width: .narrow))).")
    }
}

/// The headline rows, as a user meets credops: servers in processes of their own.
struct ExternalBench: AsyncParsableCommand {
    init() {}

    static let configuration = CommandConfiguration(
        commandName: "external",
        abstract: "Apply and plan against `credops sandbox serve` processes: wall against the bound, CPU per credential and environment, fixed cost.")

    @Option(help: "Keep the state database in this directory (e.g. /dev/shm to leave fsync out).") var stateDir: String?
    @Flag(help: "Keep the state on PostgreSQL: a loopback server the bench starts (fsync off), a database per scenario.") var postgres = false
    @Option(help: "Credential counts of the 20 ms rows (3 environments each).") var credentials: [Int] = [1_000, 200]

    func run() async throws {
        print("Against sandboxes in processes of their own (credops sandbox serve), release build, state on \(postgres ? "PostgreSQL (loopback)" : "SQLite"):")
        print(Table.header)
        for n in credentials {
            let s = Scenario(credentials: n, environments: 3, latencyMs: 20, concurrency: 16, stateDir: stateDir, postgres: postgres, external: true)
            for m in try await s.run() { print(Table.row(s, m)) }
        }
        // Fixed cost: a small apply and a no-change plan at no latency, where start-up is all there is.
        let small = Scenario(credentials: 10, environments: 1, latencyMs: 0, concurrency: 16, stateDir: stateDir, postgres: postgres, external: true)
        for m in try await small.run() { print(Table.row(small, m)) }
    }
}
