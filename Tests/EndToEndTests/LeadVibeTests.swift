import ApinizerSandbox
import CredOps
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// The built binary against LeadVibe emulators: secrets the server generates, delivered to
/// files, never kept; undelivered ones replaced; runs killed between create and delivery;
/// rotation during which the sink always holds a pair the server accepts.
@Suite struct LeadVibeTests {
    static let token = "lv-e2e-token-0123456789"
    static let units = ["unit_a", "unit_b"]

    /// Environments `lv-one` and `lv-two`, each on its own emulator with units a and b;
    /// project `alpha` goes to unit_a, `beta` to unit_b.
    func workspace(faults: SandboxFaults = SandboxFaults(), environments: [String] = ["lv-one", "lv-two"])
        async throws -> (E2EWorkspace, [String: LeadVibeServer]) {
        let w = E2EWorkspace()
        w.variables["LEADVIBE_TOKEN"] = Self.token
        var servers: [String: LeadVibeServer] = [:]
        for name in environments {
            let server = try await LeadVibeServer.start(LeadVibeConfiguration(tokens: [Self.token], units: LeadVibeConfiguration.units(Self.units),
                                                                              faults: faults))
            servers[name] = server
            w.environment(name, """
                provider: leadvibe
                url: \(server.baseURL)
                auth: { bearer: { fromEnv: LEADVIBE_TOKEN } }
                concurrency: 4
                timeoutSeconds: 10
                retry: { initialBackoffMilliseconds: 10, maxBackoffMilliseconds: 100 }
                projects:
                  alpha: unit_a
                  beta: unit_b
                """)
        }
        return (w, servers)
    }

    static func manifest(_ project: String, count: Int, extra: String = "") -> String {
        var text = """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: leadvibe
            project: \(project)
            deliver: { file: "../delivered/{environment}/{project}/{name}.json" }
            \(extra)
            credentials:

            """
        for i in 0..<count { text += "  - { name: \(project) feed \(i), trust_upstream_consent: \(i % 3 == 0) }\n" }
        return count == 0 ? text.replacingOccurrences(of: "credentials:\n", with: "credentials: []\n") : text
    }

    /// Every delivered file under `delivered/ENV/PROJECT/`: name → (client_id, client_secret).
    static func delivered(_ w: E2EWorkspace, environment: String, project: String) -> [String: (String, String)] {
        let dir = w.dir.url("delivered/\(environment)/\(project)")
        var pairs: [String: (String, String)] = [:]
        for file in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where file.hasSuffix(".json") {
            guard let data = FileManager.default.contents(atPath: "\(dir)/\(file)"),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: String],
                  let id = object["client_id"], let secret = object["client_secret"], let name = object["name"] else { continue }
            pairs[name] = (id, secret)
        }
        return pairs
    }

    /// Every declared credential is on its server exactly once, in its unit, and its sink holds
    /// a pair the server accepts; nothing else is on the server.
    func expectConverged(_ w: E2EWorkspace, _ servers: [String: LeadVibeServer], count: Int,
                         sourceLocation: Testing.SourceLocation = #_sourceLocation) async {
        for (environment, server) in servers {
            let held = await server.secrets()
            #expect(held.count == 2 * count, "\(environment): \(held.count) credentials on the server (orphans or missing)", sourceLocation: sourceLocation)
            for (project, unit) in [("alpha", "unit_a"), ("beta", "unit_b")] {
                let mine = held.filter { $0.unitID == unit }
                #expect(Set(mine.map(\.name)).count == mine.count, "\(environment)/\(unit): duplicates", sourceLocation: sourceLocation)
                let pairs = Self.delivered(w, environment: environment, project: project)
                var valid = 0
                for credential in mine {
                    guard let (id, secret) = pairs[credential.name], id == credential.clientID else { continue }
                    if await server.check(clientID: id, clientSecret: secret) { valid += 1 }
                }
                #expect(valid == count, "\(environment)/\(project): \(valid) of \(count) sinks hold the live credential's valid pair",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// Applies until an apply succeeds (at most `runs`), returning every result.
    func converge(_ w: E2EWorkspace, runs: Int = 4, arguments: [String] = ["apply", "manifests", "--auto-approve"]) async -> [CLIRunner.Result] {
        var results: [CLIRunner.Result] = []
        for _ in 0..<runs {
            let result = await w.run(arguments)
            results.append(result)
            if result.exitCode == 0 { break }
        }
        return results
    }

    @Test func createsAndDeliversAcrossTwoUnitsAndTwoEnvironmentsUnderFaultsAndKeepsNoSecret() async throws {
        var faults = SandboxFaults()
        faults.errorRate = 0.08
        faults.dropRate = 0.03
        faults.commitThenFailRate = 0.05
        faults.randomSeed = 12
        let (w, servers) = try await workspace(faults: faults)
        defer { Task { for s in servers.values { await s.stop() } } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 25))
        w.manifest("beta.yaml", Self.manifest("beta", count: 25))
        let runs = await converge(w, arguments: ["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(runs.last?.exitCode == 0, "\(runs.last.map { "\($0)" } ?? "")")
        for server in servers.values { await server.setFaults(SandboxFaults()) }
        await expectConverged(w, servers, count: 25)
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")

        // The secrets are in their sinks and nowhere else: not in output, report, state or logs.
        var secrets: [String] = []
        for environment in servers.keys {
            for project in ["alpha", "beta"] { secrets += Self.delivered(w, environment: environment, project: project).values.map(\.1) }
        }
        #expect(secrets.count == 100)
        var documents = Canary.files(under: w.dir.path).filter { !$0.key.hasPrefix("delivered/") }
        for (i, run) in (runs + [plan]).enumerated() {
            documents["run \(i) stdout"] = Data(run.stdout.utf8)
            documents["run \(i) stderr"] = Data(run.stderr.utf8)
        }
        #expect(documents.keys.contains(".credops/state.db") && documents.keys.contains("report.json"))
        let hits = Canary.hits(secrets, in: documents)
        #expect(hits.isEmpty, "\(hits.prefix(5))")
        let store = try await SQLiteStateStore.open(path: w.dir.url(".credops/state.db"))
        let records = try await store.managedCredentials(environment: "lv-one")
        #expect(records.count == 50 && records.allSatisfy { $0.delivery == .delivered && $0.retiring.isEmpty }, "\(records.prefix(3))")
        await store.close()
        print("FIGURE leadvibe faults: 100 credentials × 2 environments converged in \(runs.count) apply run(s); 100 delivered pairs valid; 0 secrets outside the sinks")
    }

    @Test func aFailedDeliveryIsReplacedByTheNextApplyAndAnAdoptedOneIsLeftAlone() async throws {
        let (w, servers) = try await workspace(environments: ["lv-one"])
        let server = try #require(servers["lv-one"])
        defer { Task { await server.stop() } }
        // Someone made one in the UI; credops adopts it but cannot know its secret.
        _ = await server.put(name: "alpha feed 0", unit: "unit_a")
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 2).replacingOccurrences(
            of: "  - { name: alpha feed 1, trust_upstream_consent: false }",
            with: "  - { name: alpha feed 1, deliver: { command: [sh, -c, \"cat >/dev/null; echo vault is sealed >&2; exit 2\"] } }"))
        w.manifest("beta.yaml", Self.manifest("beta", count: 0))
        let first = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(first.exitCode == 1, "\(first)")
        #expect(first.stdout.contains("alpha feed 1 create: created, but its secret was not delivered: the delivery command sh exited with 2: vault is sealed"),
                "\(first)")
        #expect(first.stdout.contains("exists on the server; its secret was generated for whoever made it") || first.stdout.contains("adopt"), "\(first)")
        let undelivered = try #require(await server.secrets().first { $0.name == "alpha feed 1" })

        let plan = await w.run(["plan", "manifests"])
        #expect(plan.stdout.contains("-/+ alpha feed 1") && plan.stdout.contains("secret never delivered"), "\(plan)")
        #expect(!plan.stdout.contains("alpha feed 0"), "the adopted one is left alone: \(plan)")

        w.manifest("alpha.yaml", Self.manifest("alpha", count: 2))
        let second = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(second.exitCode == 0, "\(second)")
        let held = await server.secrets().filter { $0.name == "alpha feed 1" }
        #expect(held.count == 1 && held.first?.secretID != undelivered.secretID, "the undelivered one is gone: \(held)")
        let pair = try #require(Self.delivered(w, environment: "lv-one", project: "alpha")["alpha feed 1"])
        #expect(await server.check(clientID: pair.0, clientSecret: pair.1))
        // Rotation on request replaces even the adopted one, and delivers its secret.
        let rotate = await w.run(["rotate", "-e", "lv-one", "--project", "alpha", "alpha feed 0", "--manifests", "manifests", "--auto-approve"])
        #expect(rotate.exitCode == 0, "\(rotate)")
        let adopted = try #require(Self.delivered(w, environment: "lv-one", project: "alpha")["alpha feed 0"])
        #expect(await server.check(clientID: adopted.0, clientSecret: adopted.1))
        #expect(await server.secrets().filter { $0.name == "alpha feed 0" }.count == 1)
    }

    @Test func sigkillBetweenCreateAndDeliveryLeavesNothingUndeliveredAfterOneMoreApply() async throws {
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 15
        let (w, servers) = try await workspace(faults: faults, environments: ["lv-one"])
        let server = try #require(servers["lv-one"])
        defer { Task { await server.stop() } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 50))
        w.manifest("beta.yaml", Self.manifest("beta", count: 50))
        var generator = SplitMix64(seed: 99)
        var kills = 0
        var progress: [Int] = []
        for round in 0..<6 {
            // The kill comes at a random point after this run's first create reached the server.
            let createsBefore = await server.stats().byRoute["POST /secrets"] ?? 0
            let child = try w.spawn(["apply", "manifests", "--auto-approve"])
            let clock = ContinuousClock()
            let spawned = clock.now
            while await (server.stats().byRoute["POST /secrets"] ?? 0) == createsBefore, spawned.duration(to: clock.now) < .seconds(30) {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await Task.sleep(for: .milliseconds(Int(generator.next() % 250)))
            child.signal(SIGKILL)
            if await child.wait(timeout: .seconds(10)) == 128 + SIGKILL { kills += 1 }
            progress.append(await server.secrets().count)
            // Half the rounds also rotate everything, so that kills land in replaces too.
            if round == 2 { _ = await w.run(["apply", "manifests", "--auto-approve"]); await server.backdate(days: 400) }
            if round == 2 {
                w.manifest("alpha.yaml", Self.manifest("alpha", count: 50, extra: "rotateAfter: 90d"))
                w.manifest("beta.yaml", Self.manifest("beta", count: 50, extra: "rotateAfter: 90d"))
            }
        }
        #expect(kills >= 5, "kills \(kills), progress \(progress)")
        let last = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(last.exitCode == 0, "\(last)")
        await expectConverged(w, ["lv-one": server], count: 50)
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        print("FIGURE leadvibe sigkill: \(kills) kills mid-apply (credentials on the server after each: \(progress)); one more apply: 100 live, 100 valid delivered pairs, 0 orphans, 0 duplicates")
    }


    /// Rotation of every credential while a poller reads the sinks and checks each pair with
    /// the server: whenever a sink is read, the server accepts what it holds.
    @Test(arguments: [0, 2])
    func rotationKeepsAValidPairInEverySinkAtEveryMoment(overlapSeconds: Int) async throws {
        let (w, servers) = try await workspace(environments: ["lv-one"])
        let server = try #require(servers["lv-one"])
        defer { Task { await server.stop() } }
        let extra = "rotateAfter: 90d\noverlap: \(overlapSeconds)s"
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 50, extra: extra))
        w.manifest("beta.yaml", Self.manifest("beta", count: 50, extra: extra))
        let first = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(first.exitCode == 0, "\(first)")
        let before = Set(await server.secrets().map(\.secretID))
        await server.backdate(days: 100)
        var faults = SandboxFaults()
        faults.errorRate = 0.05
        faults.commitThenFailRate = 0.03
        faults.randomSeed = 5
        await server.setFaults(faults)

        let poller = SinkPoller(w: w, server: server)
        let polling = Task { await poller.run() }
        let runs = await converge(w)
        poller.stop()
        let (reads, violations) = await polling.value
        await server.setFaults(SandboxFaults())
        #expect(runs.last?.exitCode == 0, "\(runs.last.map { "\($0)" } ?? "")")
        #expect(violations.isEmpty, "a sink held a pair the server refused: \(violations.prefix(3))")
        #expect(reads > 100, "the poller read \(reads) sinks")
        let after = await server.secrets()
        if overlapSeconds > 0 {
            // The old ones are kept for the overlap, then the first apply after it deletes them.
            #expect(after.count == 200, "old and new side by side during the overlap: \(after.count)")
            let plan = await w.run(["plan", "manifests"])
            #expect(plan.stdout.contains("replaced, retiring"), "\(plan)")
            try await Task.sleep(for: .seconds(overlapSeconds + 1))
            let retire = await w.run(["apply", "manifests", "--auto-approve"])
            #expect(retire.exitCode == 0 && retire.stdout.contains("100 deleted"), "\(retire)")
        }
        let final = await server.secrets()
        #expect(final.count == 100 && Set(final.map(\.secretID)).isDisjoint(with: before), "\(final.count) left; old ones gone")
        await expectConverged(w, ["lv-one": server], count: 50)
        try await expectStateFollowsServer(w, server)
        if overlapSeconds > 0 {
            // Rotated again while the previous rotation's old credentials are due: the new
            // replace deletes them itself, and state follows the newest.
            let again = await w.run(["rotate", "-e", "lv-one", "--project", "alpha", "--all", "--manifests", "manifests", "--auto-approve"])
            #expect(again.exitCode == 0, "\(again)")
            try await Task.sleep(for: .seconds(overlapSeconds + 1))
            let second = await w.run(["rotate", "-e", "lv-one", "--project", "alpha", "--all", "--manifests", "manifests", "--auto-approve"])
            #expect(second.exitCode == 0, "\(second)")
            try await Task.sleep(for: .seconds(overlapSeconds + 1))
            let settle = await w.run(["apply", "manifests", "--auto-approve"])
            #expect(settle.exitCode == 0, "\(settle)")
            await expectConverged(w, ["lv-one": server], count: 50)
            try await expectStateFollowsServer(w, server)
        }
        print("FIGURE leadvibe rotation overlap \(overlapSeconds)s: 100 rotated under faults in \(runs.count) run(s); \(reads) sink reads checked, \(violations.count) invalid")
    }
}

/// State names, for each credential, the one live credential of its name, and keeps nothing
/// to retire.
func expectStateFollowsServer(_ w: E2EWorkspace, _ server: LeadVibeServer) async throws {
    let store = try await SQLiteStateStore.open(path: w.dir.url(".credops/state.db"))
    let records = try await store.managedCredentials(environment: "lv-one")
    await store.close()
    let live = Dictionary(grouping: await server.secrets(), by: \.name)
    for record in records {
        #expect(live[record.key.rawValue]?.map(\.secretID) == [record.serverID ?? ""], "\(record.key): state \(record.serverID ?? "-")")
        #expect(record.retiring.isEmpty && record.delivery == .delivered, "\(record.key): \(record.retiring) \(String(describing: record.delivery))")
    }
}

/// Reads every sink again and again and checks each pair with the server. A pair the server
/// refuses counts only if the sink still holds it afterwards (a sink replaced between the read
/// and the check was read before its rotation, which is no violation).
final class SinkPoller: @unchecked Sendable {
    let w: E2EWorkspace
    let server: LeadVibeServer
    private let lock = NSLock()
    private var stopped = false

    init(w: E2EWorkspace, server: LeadVibeServer) {
        self.w = w
        self.server = server
    }

    func stop() { lock.withLock { stopped = true } }
    var isStopped: Bool { lock.withLock { stopped } }

    func run() async -> (Int, [String]) {
        var reads = 0
        var violations: [String] = []
        while !isStopped {
            for project in ["alpha", "beta"] {
                for (name, pair) in LeadVibeTests.delivered(w, environment: "lv-one", project: project) {
                    reads += 1
                    if await server.check(clientID: pair.0, clientSecret: pair.1) { continue }
                    let again = LeadVibeTests.delivered(w, environment: "lv-one", project: project)[name]
                    if again?.0 == pair.0 && again?.1 == pair.1 { violations.append("\(project)/\(name): \(pair.0)") }
                }
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return (reads, violations)
    }
}
