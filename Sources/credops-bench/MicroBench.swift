import ApinizerProvider
import ArgumentParser
import CredOps
import CredOpsRender
import CredOpsTestSupport
import Foundation

/// Costs that do not depend on the network: loading and validating manifests, diffing, rendering.
struct MicroBench: AsyncParsableCommand {
    init() {}

    static let configuration = CommandConfiguration(commandName: "micro", abstract: "Load, validate, diff and render costs per credential.")

    @Option(help: "Credential counts to load and diff.") var counts: [Int] = [10_000, 50_000]

    func run() async throws {
        print("Micro (this machine; CPU seconds of a fresh process each, peak RSS of that process):")
        print("  work                                        credentials   CPU        per credential   peak RSS")
        for count in counts {
            // A fresh process per count, so that its peak memory is this work's alone.
            let out = ChildProcess.pipe()
            let child = try ChildProcess(CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : benchBinary,
                                         ["micro-child", "--count", "\(count)"], stdout: out.write)
            close(out.write)
            let text = try await offCooperativePool { String(decoding: FileHandle(fileDescriptor: out.read, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self) }
            _ = await child.wait(timeout: .seconds(600))
            let rss = child.resources.maxRSSBytes
            for line in text.split(separator: "\n") { print(line.replacingOccurrences(of: "{rss}", with: megabytes(rss))) }
        }
    }
}

let benchBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return exe
}()

/// One measurement run in its own process (called by `micro`).
struct MicroChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "micro-child", shouldDisplay: false)

    @Option var count: Int

    func run() async throws {
        let schema = ApinizerProvider.credentialSchema
        let dir = TemporaryDirectory(prefix: "credops-micro")
        dir.write("environments/dev.yaml", "provider: apinizer\nurl: sandbox://dev\n")
        // Files of 5,000 credentials (about 1 MiB each), as a large repository would split them.
        let perFile = 5_000
        for file in 0..<((count + perFile - 1) / perFile) {
            var text = "apiVersion: credops/v1\nkind: CredentialSet\nproject: p\(file)\ncredentials:\n"
            for i in (file * perFile)..<min(count, (file + 1) * perFile) {
                text += """
                  - username: user-\(i)
                    fullName: User \(i)
                    email: user\(i)@example.com
                    description: Service account \(i)
                    password: { fromEnv: PW }
                    roleNameList: [API_USER, DEVELOPER]
                    enabled: true
                    ipList: [10.\(i / 65536 % 256).\(i / 256 % 256).0/24]
                    expireDate: 2027-06-30T23:59:59.000Z
                    access:
                      - { name: PaymentAPI, type: API_PROXY }

                """
            }
            dir.write("manifests/m\(file).yaml", text)
        }

        func highWater() -> String {
            let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
            let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }?.split(separator: " ").dropFirst().first ?? "?"
            let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first ?? "?"
            return "rss \((Int(rss) ?? 0) / 1024) MB, high-water \((Int(hwm) ?? 0) / 1024) MB"
        }
        let memory = ProcessInfo.processInfo.environment["CREDOPS_BENCH_MEMORY"] != nil
        if memory { print("  memory before loading: \(highWater())") }
        if ProcessInfo.processInfo.environment["CREDOPS_BENCH_SPLIT"] != nil {
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.url("manifests")).map { dir.url("manifests/\($0)") }
            let datas = files.map { [UInt8](FileManager.default.contents(atPath: $0)!) }
            let a = ProcessUsage.now().cpu
            var nodes = 0
            for bytes in datas { nodes += (try YAMLComposer.compose(bytes)).reduce(0) { $0 + $1.expandedCount } }
            let b = ProcessUsage.now().cpu
            print(String(format: "  compose only: %.3f s (%.1f µs per credential, %d nodes)", b - a, (b - a) / Double(count) * 1e6, nodes))
        }
        let t0 = ProcessUsage.now().cpu
        let (inputs, diagnostics) = InputLoader(schemas: ["apinizer": schema]).load(paths: [dir.url("manifests")], environmentsDirectory: dir.url("environments"))
        guard let inputs, !diagnostics.hasErrors else { print("  load failed: \(diagnostics.prefix(3))"); return }
        let t1 = ProcessUsage.now().cpu
        if memory { print("  memory after loading: \(highWater())") }
        let desired = inputs.desired(for: inputs.environments[0], schema: schema)
        let key = FingerprintKey.random()
        let (book, _) = SecretResolver(environment: ["PW": "bench-password-1"], secretsRoot: ".").book(for: desired, key: key)
        let t2 = ProcessUsage.now().cpu
        if memory { print("  memory after desired state and fingerprints: \(highWater())") }
        // Live: the same credentials, every tenth with another email and without its grant.
        let planner = Planner(schema: schema)
        var plans: [ProjectPlan] = []
        for project in desired.projects {
            var live: [Resource] = []
            var grants: [CredentialKey: [AccessGrant]] = [:]
            var passwords: [CredentialKey: Fingerprint] = [:]
            for (i, c) in project.credentials.enumerated() {
                var r = c.resource
                if i % 10 == 0 { r["email"] = .string("changed@example.com") }
                live.append(r)
                grants[c.key] = i % 10 == 0 ? [] : (c.grants ?? [])
                passwords[c.key] = book.fingerprint(project: project.serverProject, id: c.key)
            }
            let input = Planner.ProjectInput(desired: project, live: live, liveGrants: grants, managed: [:], secrets: passwords)
            plans.append(planner.plan(input))
        }
        let t3 = ProcessUsage.now().cpu
        if memory { print("  memory after diff: \(highWater())") }
        let changes = plans.reduce(0) { $0 + $1.changes.count }
        func row(_ work: String, _ seconds: Double) -> String {
            String(format: "  %@ %11d   %6.3f s   %8.1f µs      {rss}", work.padding(toLength: 43, withPad: " ", startingAt: 0),
                   count, seconds, seconds / Double(count) * 1e6)
        }
        print(row("load + validate manifests", t1 - t0))
        print(row("resolve passwords (HMAC fingerprints)", t2 - t1))
        print(row("diff against live (\(changes) changes)", t3 - t2))
        print(row("load + validate + fingerprint + diff", t3 - t0))

        if count == 10_000 {
            // Rendering a plan of 10,000 changes (the first 10,000 of this one).
            var all = plans.flatMap(\.changes)
            all = Array(all.prefix(10_000))
            let plan = Plan(environments: [EnvironmentPlan(environment: "dev", provider: "apinizer", endpoint: "x", isProtected: false,
                                                           projects: [ProjectPlan(project: "p", serverProject: "p", prune: .managed, changes: all)])])
            for (name, render) in [("text", { _ = PlanTextRenderer(style: .plain, schemas: ["apinizer": schema]).render(plan) }),
                                   ("json", { _ = PlanJSONRenderer.render(plan) }),
                                   ("markdown", { _ = MarkdownRenderer(schemas: ["apinizer": schema]).render(plan) })] as [(String, () -> Void)] {
                let a = ProcessUsage.now().cpu
                render()
                let b = ProcessUsage.now().cpu
                print(String(format: "  render a %d-change plan as %@ %@ %6.3f s   %8.1f µs/change", all.count, name,
                             String(repeating: " ", count: max(0, 17 - name.count)), b - a, (b - a) / Double(all.count) * 1e6))
            }
            // The final redaction every line of output passes: 10,000 distinct passwords sharing
            // a prefix (the worst case for matching), over that plan's text.
            let text = PlanTextRenderer(style: .plain, schemas: ["apinizer": schema]).render(plan)
            let secrets = (0..<10_000).map { Secret("bench-password-\($0)-\($0 &* 7919 % 10_007)") }
            let a = ProcessUsage.now().cpu
            let redactor = Redactor(secrets: secrets)
            let b = ProcessUsage.now().cpu
            _ = redactor.redact(text)
            let c = ProcessUsage.now().cpu
            print(String(format: "  redact that plan's text (%d KiB) of 10,000 passwords: prepare %.3f s, pass %.3f s (%.1f µs/KiB)",
                         text.utf8.count / 1024, b - a, c - b, (c - b) / Double(max(1, text.utf8.count / 1024)) * 1e6))
        }
    }
}
