import ApinizerSandbox
import CredOps
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// The built binary with a provider it knows only from a profile (the LeadExec example in
/// `providers/`), against the generic emulator serving that profile: OAuth2 with a JSON token
/// call, generated client ids and secrets delivered to files, immutable scopes, faults,
/// SIGKILL, locks, saved plans, drift and export.
@Suite struct ProfileProviderTests {
    static let clientSecret = "le-e2e-client-secret-0123456789"

    /// Environments each on their own emulator of the LeadExec profile, with short-lived tokens
    /// (renewed during a run).
    func workspace(faults: SandboxFaults = SandboxFaults(), environments: [String] = ["le-one", "le-two"], tokenTTL: Int = 3600, concurrency: Int = 4)
        async throws -> (E2EWorkspace, [String: ProfileServer]) {
        let w = E2EWorkspace()
        w.dir.write("providers/leadexec.yaml", ProfileFixtures.leadExec)
        w.variables["LEADEXEC_CLIENT_SECRET"] = Self.clientSecret
        let profile = try ProfileFixtures.profile(ProfileFixtures.leadExec)
        var servers: [String: ProfileServer] = [:]
        for name in environments {
            var configuration = ProfileEmulatorConfiguration(profile: profile, keys: [Self.clientSecret])
            configuration.faults = faults
            configuration.tokenTTLSeconds = tokenTTL
            let server = try await ProfileServer.start(configuration)
            servers[name] = server
            w.environment(name, """
                provider: leadexec
                url: \(server.baseURL)
                auth:
                  oauth2: { clientId: credops-e2e, clientSecret: { fromEnv: LEADEXEC_CLIENT_SECRET } }
                concurrency: \(concurrency)
                timeoutSeconds: 10
                retry: { initialBackoffMilliseconds: 10, maxBackoffMilliseconds: 100 }
                """)
        }
        return (w, servers)
    }

    static func manifest(_ project: String, count: Int, scopes: (Int) -> String = { $0 % 2 == 0 ? "[Lead Receiver]" : "[Account API, Data API]" },
                         extra: String = "") -> String {
        var text = """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: leadexec
            project: \(project)
            deliver: { file: "../delivered/{environment}/{project}/{name}.json" }
            \(extra)
            credentials:

            """
        for i in 0..<count { text += "  - { description: \(project) client \(i), scopes: \(scopes(i)), enabled: \(i % 5 != 0) }\n" }
        return text
    }

    /// Every delivered file under `delivered/ENV/PROJECT/`: description → (client_id, client_secret).
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

    /// Each declared credential is on its server once, and its sink holds its valid pair;
    /// nothing else is on the server.
    func expectConverged(_ w: E2EWorkspace, _ servers: [String: ProfileServer], projects: [String], count: Int,
                         sourceLocation: Testing.SourceLocation = #_sourceLocation) async {
        for (environment, server) in servers {
            let held = await server.records()
            #expect(held.count == projects.count * count, "\(environment): \(held.count) on the server (orphans or missing)", sourceLocation: sourceLocation)
            let names = held.compactMap { $0.object[JSONPointer("/description")!]?.string }
            #expect(Set(names).count == names.count, "\(environment): duplicates", sourceLocation: sourceLocation)
            var valid = 0
            for project in projects {
                for (name, pair) in Self.delivered(w, environment: environment, project: project) {
                    guard held.contains(where: { $0.id == pair.0 && $0.object[JSONPointer("/description")!]?.string == name }) else { continue }
                    if await server.holds(id: pair.0, secret: pair.1) { valid += 1 }
                }
            }
            #expect(valid == projects.count * count, "\(environment): \(valid) sinks hold their live credential's valid pair", sourceLocation: sourceLocation)
        }
    }

    func converge(_ w: E2EWorkspace, runs: Int = 4, arguments: [String] = ["apply", "manifests", "--auto-approve"]) async -> [CLIRunner.Result] {
        var results: [CLIRunner.Result] = []
        for _ in 0..<runs {
            let result = await w.run(arguments)
            results.append(result)
            if result.exitCode == 0 { break }
        }
        return results
    }

    @Test func convergesUnderFaultsWithTokensRenewedAndKeepsNoSecret() async throws {
        var faults = SandboxFaults()
        faults.errorRate = 0.08
        faults.dropRate = 0.03
        faults.commitThenFailRate = 0.05
        faults.randomSeed = 21
        faults.latencyMilliseconds = 5
        let (w, servers) = try await workspace(faults: faults, tokenTTL: 2)
        defer { Task { for s in servers.values { await s.stop() } } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 30))
        w.manifest("beta.yaml", Self.manifest("beta", count: 30))
        let runs = await converge(w, arguments: ["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(runs.last?.exitCode == 0, "\(runs.last.map { "\($0)" } ?? "")")
        for server in servers.values { await server.setFaults(SandboxFaults()) }
        await expectConverged(w, servers, projects: ["alpha", "beta"], count: 30)
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        // Tokens live two seconds (renewed after one): every run fetched its own, and longer
        // runs more than one.
        let tokenCalls = await servers["le-one"]!.stats().byRoute["POST /v1/authorization/token"] ?? 0
        #expect(tokenCalls >= runs.count + 1, "\(tokenCalls) token calls")
        let report = try w.report()
        #expect(E2EWorkspace.environmentResults(report).allSatisfy { $0["success"] as? Bool == true })

        var secrets: [String] = []
        for environment in servers.keys {
            for project in ["alpha", "beta"] { secrets += Self.delivered(w, environment: environment, project: project).values.map(\.1) }
        }
        #expect(secrets.count == 120)
        var documents = Canary.files(under: w.dir.path).filter { !$0.key.hasPrefix("delivered/") }
        for (i, run) in (runs + [plan]).enumerated() {
            documents["run \(i) stdout"] = Data(run.stdout.utf8)
            documents["run \(i) stderr"] = Data(run.stderr.utf8)
        }
        let hits = Canary.hits(secrets + [Self.clientSecret], in: documents)
        #expect(hits.isEmpty, "\(hits.prefix(5))")

        print("FIGURE profile leadexec faults: 60 credentials × 2 environments converged in \(runs.count) apply run(s) (\(tokenCalls) token calls on le-one); 120 delivered pairs valid; 0 secrets outside the sinks")
    }

    /// Replaces delete old credentials while other operations read back lost creates through
    /// paged listings whose offsets shift when an earlier credential goes: no read-back may miss
    /// a credential a lost answer made, or it would stay on the server with nobody's secret.
    @Test func aReadBackAfterALostCreateMissesNothingWhileReplacesDelete() async throws {
        let (w, servers) = try await workspace(environments: ["le-one"], concurrency: 16)
        defer { Task { for s in servers.values { await s.stop() } } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 150))
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        var faults = SandboxFaults()
        faults.commitThenFailRate = 0.2
        faults.latencyMilliseconds = 10
        faults.randomSeed = 5
        for server in servers.values { await server.setFaults(faults) }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 150, scopes: { _ in "[Data API]" }))
        let runs = await converge(w, arguments: ["apply", "manifests", "--auto-approve", "--verbose"])
        #expect(runs.last?.exitCode == 0, "\(runs.last.map { "\($0)" } ?? "")")
        for server in servers.values { await server.setFaults(SandboxFaults()) }
        await expectConverged(w, servers, projects: ["alpha"], count: 150)
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0 && !plan.stdout.contains("left alone"), "\(plan)")
        let lost = runs.map { ($0.stdout + $0.stderr).components(separatedBy: "answer lost").count - 1 }.reduce(0, +)
        #expect(lost > 0)
        print("FIGURE profile leadexec replaces: 150 replaced at 16 in flight (\(lost) lost create answers read back through 3 pages while old ones were deleted) in \(runs.count) run(s); 150 live, 0 orphans")
    }

    @Test func scopesAreReplacedDeliveredFirstAndDriftIsSeenAndCorrected() async throws {
        let (w, servers) = try await workspace(environments: ["le-one"])
        let server = try #require(servers["le-one"])
        defer { Task { await server.stop() } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 4))
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        let before = try #require(Self.delivered(w, environment: "le-one", project: "alpha")["alpha client 0"])

        // Scopes cannot change: a replace, the new pair delivered before the old is deleted.
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 4, scopes: { $0 == 0 ? "[Lead Receiver, Data API]" : ($0 % 2 == 0 ? "[Lead Receiver]" : "[Account API, Data API]") }))
        let plan = await w.run(["plan", "manifests"])
        #expect(plan.stdout.contains("-/+ alpha client 0") && plan.stdout.contains("(scopes cannot change)"), "\(plan)")
        #expect(plan.stdout.contains("new one delivered to"), "\(plan)")
        #expect(plan.stdout.contains("leadexec (profile providers/leadexec.yaml)"), "the header names the profile's file: \(plan)")
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        let after = try #require(Self.delivered(w, environment: "le-one", project: "alpha")["alpha client 0"])
        #expect(after.0 != before.0)
        #expect(await server.holds(id: after.0, secret: after.1))
        #expect(await !server.holds(id: before.0, secret: before.1), "the replaced credential is gone")

        // Someone turns one off in the UI: drift, shown and set back.
        let one = try #require(Self.delivered(w, environment: "le-one", project: "alpha")["alpha client 1"])
        await server.edit(id: one.0, set: .bool(false), at: JSONPointer("/enabled")!)
        let drift = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(drift.exitCode == 2 && drift.stdout.contains("alpha client 1") && drift.stdout.contains("enabled"), "\(drift)")
        let fixed = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(fixed.exitCode == 0, "\(fixed)")
        #expect(await server.stats().byRoute["PATCH /v1/credentials/{id}"] == 1)
        #expect(await w.run(["plan", "manifests", "--detailed-exitcode"]).exitCode == 0)
    }

    @Test func aSavedPlanAppliesAndALockedEnvironmentIsRefused() async throws {
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 150
        let (w, servers) = try await workspace(faults: faults, environments: ["le-one"])
        let server = try #require(servers["le-one"])
        defer { Task { await server.stop() } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 30))
        let saved = await w.run(["plan", "manifests", "--out", "plan.json"])
        #expect(saved.exitCode == 0, "\(saved)")
        let holder = try w.spawn(["apply", "--plan", "plan.json", "--auto-approve"])
        // Wait until the holder is writing, then a second apply meets its lock.
        let clock = ContinuousClock()
        let start = clock.now
        while await (server.stats().byRoute["POST /v1/credentials"] ?? 0) == 0, start.duration(to: clock.now) < .seconds(30) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let second = await w.run(["apply", "manifests", "--auto-approve", "--lock-timeout", "1"])
        #expect(second.exitCode == 1 && second.stdout.contains("le-one is locked by"), "\(second)")
        #expect(await holder.wait(timeout: .seconds(60)) == 0)
        await expectConverged(w, ["le-one": server], projects: ["alpha"], count: 30)
        await server.setFaults(SandboxFaults())
        // A profile changed after the plan was saved makes the plan stale.
        w.dir.write("providers/leadexec.yaml", ProfileFixtures.leadExec + "\n# edited\n")
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 31))
        #expect(await w.run(["plan", "manifests", "--out", "plan2.json"]).exitCode == 0)
        w.dir.write("providers/leadexec.yaml", ProfileFixtures.leadExec + "\n# edited again\n")
        let stale = await w.run(["apply", "--plan", "plan2.json", "--auto-approve"])
        #expect(stale.exitCode != 0 && (stale.stdout + stale.stderr).contains("providers/leadexec.yaml"), "\(stale)")
    }

    @Test func sigkillMidApplyLeavesNothingUndeliveredAfterOneMoreApply() async throws {
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 15
        let (w, servers) = try await workspace(faults: faults, environments: ["le-one"])
        let server = try #require(servers["le-one"])
        defer { Task { await server.stop() } }
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 40))
        w.manifest("beta.yaml", Self.manifest("beta", count: 40))
        var generator = SplitMix64(seed: 7)
        var kills = 0
        var progress: [Int] = []
        for round in 0..<5 {
            let createsBefore = await server.stats().byRoute["POST /v1/credentials"] ?? 0
            let child = try w.spawn(["apply", "manifests", "--auto-approve"])
            let clock = ContinuousClock()
            let spawned = clock.now
            while await (server.stats().byRoute["POST /v1/credentials"] ?? 0) == createsBefore, spawned.duration(to: clock.now) < .seconds(30) {
                try await Task.sleep(for: .milliseconds(5))
            }
            try await Task.sleep(for: .milliseconds(Int(generator.next() % 200)))
            child.signal(SIGKILL)
            if await child.wait(timeout: .seconds(10)) == 128 + SIGKILL { kills += 1 }
            progress.append(await server.records().count)
            if round == 2 {
                // Kills land in replaces too: every scope changes.
                w.manifest("alpha.yaml", Self.manifest("alpha", count: 40, scopes: { _ in "[Data API]" }))
                w.manifest("beta.yaml", Self.manifest("beta", count: 40, scopes: { _ in "[Data API]" }))
            }
        }
        #expect(kills >= 4, "kills \(kills), progress \(progress)")
        let last = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(last.exitCode == 0, "\(last)")
        await expectConverged(w, ["le-one": server], projects: ["alpha", "beta"], count: 40)
        #expect(await w.run(["plan", "manifests", "--detailed-exitcode"]).exitCode == 0)
        print("FIGURE profile leadexec sigkill: \(kills) kills mid-apply (credentials on the server after each: \(progress)); one more apply: 80 live, 80 valid delivered pairs, 0 orphans")
    }

    @Test func exportWritesAManifestWithADeliveryAndAdoptsWhatTheUIMade() async throws {
        let (w, servers) = try await workspace(environments: ["le-one"])
        let server = try #require(servers["le-one"])
        defer { Task { await server.stop() } }
        let id = try #require(await server.make(.object(["description": .string("Made in the UI"), "scopes": .array([.string("Data API")]), "enabled": .bool(true)])))
        let export = await w.run(["export", "-e", "le-one", "--project", "legacy", "--out", "manifests", "--adopt"])
        #expect(export.exitCode == 0, "\(export)")
        let text = try String(contentsOfFile: w.dir.url("manifests/legacy.yaml"), encoding: .utf8)
        #expect(text.contains("provider: leadexec") && text.contains("Made in the UI") && text.contains("deliver:"), "\(text)")
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        let store = try await SQLiteStateStore.open(path: w.dir.url(".credops/state.db"))
        let records = try await store.managedCredentials(environment: "le-one")
        await store.close()
        #expect(records.map(\.serverID) == [id] && records.first?.delivery == .external, "\(records)")
    }

    @Test func aProfileThatDoesNotCheckOutStopsTheRunAtItsPlace() async throws {
        let (w, servers) = try await workspace(environments: ["le-one"])
        defer { Task { for s in servers.values { await s.stop() } } }
        w.dir.write("providers/leadexec.yaml", ProfileFixtures.leadExec.replacingOccurrences(of: "item: /v1/credentials/{id}", with: "item: //evil.example/{id}"))
        w.manifest("alpha.yaml", Self.manifest("alpha", count: 1))
        let plan = await w.run(["plan", "manifests"])
        #expect(plan.exitCode == 1)
        #expect(plan.stderr.contains("providers/leadexec.yaml:") && plan.stderr.contains("names a host"), "\(plan)")
        #expect(await server(servers).stats().total == 0, "nothing was sent")
    }

    func server(_ servers: [String: ProfileServer]) -> ProfileServer { servers.values.first! }
}
