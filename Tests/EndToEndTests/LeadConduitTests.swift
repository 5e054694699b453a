import ApinizerSandbox
import CredOps
import CredOpsStatePostgres
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// The built binary against the LeadConduit emulator on a loopback port: ids the server
/// assigns, names that are not unique, passwords the server returns, a refused key, and faults.
/// Every test runs twice: with the Swift provider, and with LeadConduit written as a provider
/// profile (`ProfileFixtures.leadConduit`): the profile language says all the provider does.
@Suite struct LeadConduitTests {
    static let key = "lc-test-key-0123456789"
    static let providers = ["leadconduit", "leadconduit-profile"]

    /// A workspace with one LeadConduit environment `acct` on its own emulator.
    func workspace(_ configuration: LeadConduitConfiguration = LeadConduitConfiguration(), concurrency: Int = 4, provider: String)
        async throws -> (E2EWorkspace, LeadConduitServer) {
        var configuration = configuration
        configuration.apiKeys = [Self.key]
        let server = try await LeadConduitServer.start(configuration)
        let w = E2EWorkspace()
        if provider != "leadconduit" { w.dir.write("providers/leadconduit.yaml", ProfileFixtures.leadConduit) }
        w.variables["LEADCONDUIT_API_KEY"] = Self.key
        w.environment("acct", """
            provider: \(provider)
            url: \(server.baseURL)
            auth: { apiKey: { fromEnv: LEADCONDUIT_API_KEY } }
            concurrency: \(concurrency)
            timeoutSeconds: 10
            """)
        return (w, server)
    }

    static func manifest(_ count: Int, provider: String, prune: String = "managed", password: (Int) -> String = { "LC_PW_\($0 % 3)" }) -> String {
        var text = "apiVersion: credops/v1\nkind: CredentialSet\nprovider: \(provider)\nproject: lead-intake\nprune: \(prune)\ncredentials:\n"
        for i in 0..<count {
            text += "  - name: Delivery \(i)\n    package: pkg-\(i % 5)\n    username: poster-\(i)\n    password: { fromEnv: \(password(i)) }\n"
        }
        return text
    }

    static let passwords = ["LC_PW_0": "lc-password-zero-0", "LC_PW_1": "lc-password-one-11", "LC_PW_2": "lc-password-two-222"]

    @Test(arguments: LeadConduitTests.providers)
    func appliesMatchesByIDAndSeesAPasswordChangedInTheUI(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        for (k, v) in Self.passwords { w.variables[k] = v }
        w.manifest("lc.yaml", Self.manifest(5, provider: provider))
        let apply = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(apply.exitCode == 0, "\(apply)")
        let held = await server.credentials()
        #expect(held.count == 5 && Set(held.map(\.name)).count == 5)
        #expect(held.first { $0.name == "Delivery 1" }?.password == "lc-password-one-11")
        // State pins each by the id the server gave it.
        let store = try await SQLiteStateStore.open(path: w.dir.url(".credops/state.db"))
        let managed = try await store.managedCredentials(environment: "acct")
        #expect(Set(managed.compactMap(\.serverID)) == Set(held.map(\.id)))
        #expect(managed.allSatisfy { $0.namespace == "lead-intake" })
        await store.close()
        // No password in anything credops wrote.
        for file in ["report.json", ".credops/state.db"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: w.dir.url(file)))
            for secret in Self.passwords.values { #expect(data.range(of: Data(secret.utf8)) == nil, "\(file)") }
        }
        #expect(!apply.stdout.contains("lc-password") && !apply.stderr.contains("lc-password"))

        // A password changed in LeadConduit's UI shows up, and apply puts the declared one back.
        let target = try #require(held.first { $0.name == "Delivery 2" })
        await server.setFaults(SandboxFaults())
        _ = await server.put(name: "unrelated", package: "other-team", username: "x", password: "other-team-secret")
        try await replacePassword(server, id: target.id, with: "typed-in-the-ui")
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 2, "\(plan)")
        #expect(plan.stdout.contains("Delivery 2") && plan.stdout.contains("differs from the one on the server"), "\(plan)")
        #expect(plan.stdout.contains("unrelated") && plan.stdout.contains("unmanaged, left alone"))
        #expect(!plan.stdout.contains("typed-in-the-ui") && !plan.stdout.contains("other-team-secret"))
        let fix = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(fix.exitCode == 0, "\(fix)")
        #expect(await server.credentials().first { $0.id == target.id }?.password == "lc-password-two-222")
        let after = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(after.exitCode == 0, "\(after)")
    }

    /// Sets a stored password through the API, as the UI would.
    func replacePassword(_ server: LeadConduitServer, id: String, with password: String) async throws {
        let current = try #require(await server.credentials().first { $0.id == id })
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1))
        defer { client.shutdown() }
        let body = try JSONSerialization.data(withJSONObject: ["name": current.name, "type": current.type, "package": current.package,
                                                               "username": current.username, "password": password])
        let auth = "Basic " + Data("API:\(Self.key)".utf8).base64EncodedString()
        let response = try await client.send(HTTPRequest(method: .put, url: server.baseURL + "/credentials/" + id,
                                                         headers: HTTPHeaders([("Authorization", auth), ("Content-Type", "application/json")]),
                                                         body: body))
        #expect(response.status == 200)
    }

    static func project(_ name: String, _ credentials: [String], provider: String) -> String {
        "apiVersion: credops/v1\nkind: CredentialSet\nprovider: \(provider)\nproject: \(name)\ncredentials:\n"
            + credentials.map { "  - { name: \($0), package: p, username: u, password: { fromEnv: LC_PW_0 } }\n" }.joined()
    }

    /// LeadConduit has no projects: a credential moved from one manifest project to another is
    /// the same credential (same id), adopted by the new project, never deleted by the old one.
    @Test(arguments: LeadConduitTests.providers)
    func aCredentialMovedToAnotherProjectKeepsItsIDAndIsNeverDeleted(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        for (k, v) in Self.passwords { w.variables[k] = v }
        w.manifest("a.yaml", Self.project("team-a", ["Moving", "Stays-A"], provider: provider))
        w.manifest("b.yaml", Self.project("team-b", ["Stays-B"], provider: provider))
        let first = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(first.exitCode == 0, "\(first)")
        let moving = try #require(await server.credentials().first { $0.name == "Moving" }?.id)

        w.manifest("a.yaml", Self.project("team-a", ["Stays-A"], provider: provider))
        w.manifest("b.yaml", Self.project("team-b", ["Stays-B", "Moving"], provider: provider))
        let plan = await w.run(["plan", "manifests"])
        #expect(plan.stdout.contains("= Moving") && !plan.stdout.contains("- Moving") && plan.stdout.contains("0 to delete"), "\(plan)")
        let apply = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(apply.exitCode == 0, "\(apply)")
        let held = await server.credentials()
        #expect(held.count == 3 && held.first { $0.name == "Moving" }?.id == moving)
        let store = try await SQLiteStateStore.open(path: w.dir.url(".credops/state.db"))
        let records = try await store.managedCredentials(environment: "acct").filter { $0.key == "Moving" }
        await store.close()
        #expect(records.map(\.namespace) == ["team-b"] && records.first?.serverID == moving, "\(records)")
        let after = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(after.exitCode == 0, "\(after)")

        // Exporting a third project of the account leaves out what the other two manage, and a
        // name two live credentials share (a manifest could not tell them apart).
        let dup1 = await server.put(name: "Dup", package: "p", username: "u", password: "dup-password-1")
        let dup2 = await server.put(name: "Dup", package: "p", username: "u", password: "dup-password-2")
        _ = await server.put(name: "Unclaimed", package: "p", username: "u", password: "unclaimed-pw-1")
        let export = await w.run(["export", "-e", "acct", "--project", "team-c"])
        #expect(export.exitCode == 0, "\(export)")
        #expect(export.stdout.contains("name: Unclaimed") && !export.stdout.contains("Stays-A") && !export.stdout.contains("Moving")
                && !export.stdout.contains("name: Dup"), "\(export)")
        #expect(export.stderr.contains("left out 3 credentials that other projects manage"), "\(export)")
        #expect(export.stderr.contains("Dup") && export.stderr.contains(dup1) && export.stderr.contains(dup2), "\(export)")
    }

    /// LeadConduit returns every password in its reads. None of them, managed or not, may
    /// turn up in any output credops writes: plan in every format, the saved plan, apply's
    /// report, state, history, export, and the text of a server error that echoes one.
    @Test(arguments: LeadConduitTests.providers)
    func passwordsTheServerReturnsAppearInNoOutput(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        for (k, v) in Self.passwords { w.variables[k] = v }
        // The API key is a canary too: it must not appear in any output either.
        let canaries = ["canary-unmanaged-7f3a", "canary-changed-in-ui-91c2", Self.key]
        _ = await server.put(name: "Other team", package: "x", username: "y", password: canaries[0])
        w.manifest("lc.yaml", Self.manifest(2, provider: provider))
        var outputs: [String] = []
        let first = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(first.exitCode == 0, "\(first)")
        let target = try #require(await server.credentials().first { $0.name == "Delivery 1" })
        try await replacePassword(server, id: target.id, with: canaries[1])
        for format in ["text", "json", "markdown"] {
            let plan = await w.run(["plan", "manifests", "--format", format, "--out", "plan-\(format).json"])
            outputs += [plan.stdout, plan.stderr, (try? String(contentsOfFile: w.dir.url("plan-\(format).json"), encoding: .utf8)) ?? ""]
        }
        let apply = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json", "--format", "json"])
        outputs += [apply.stdout, apply.stderr, (try? String(contentsOfFile: w.dir.url("report.json"), encoding: .utf8)) ?? ""]
        for format in ["markdown", "junit"] {
            let again = await w.run(["apply", "manifests", "--auto-approve", "--format", format])
            #expect(again.exitCode == 0, "\(again)")
            outputs += [again.stdout, again.stderr]
        }
        let export = await w.run(["export", "-e", "acct", "--project", "lead-intake", "--out", "exported"])
        outputs += [export.stdout, export.stderr]
        for file in (try? FileManager.default.subpathsOfDirectory(atPath: w.dir.url("exported"))) ?? [] {
            outputs.append((try? String(contentsOfFile: w.dir.url("exported/\(file)"), encoding: .utf8)) ?? "")
        }
        for list in [["state", "list", "-e", "acct"], ["state", "show", "-e", "acct", "Delivery 1"]] {
            let r = await w.run(list)
            outputs += [r.stdout, r.stderr]
        }
        let state = try Data(contentsOf: URL(fileURLWithPath: w.dir.url(".credops/state.db")))
        for canary in canaries {
            #expect(!outputs.contains { $0.contains(canary) }, "\(canary) in an output")
            #expect(state.range(of: Data(canary.utf8)) == nil, "\(canary) in state")
        }
        #expect(apply.exitCode == 0, "\(apply)")
    }

    /// Export with --adopt pins what it adopts by id, and a PostgreSQL team state keeps it like
    /// the SQLite one: the next plan has nothing to do.
    @Test(arguments: LeadConduitTests.providers)
    func exportAdoptAndATeamStateWorkAsForApinizer(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        let made = await server.put(name: "Legacy feed", package: "legacy", username: "feed", password: "legacy-password-1")
        let url = try await PostgresServer.database()
        w.variables["CREDOPS_STATE"] = url
        w.variables["CREDOPS_STATE_KEY"] = String(repeating: "ab", count: 32)
        let export = await w.run(["export", "-e", "acct", "--project", "legacy", "--out", "manifests", "--adopt"])
        #expect(export.exitCode == 0, "\(export)")
        let store = try await PostgresStateStore.open(try PostgresLocation(url: url, environment: [:]))
        let records = try await store.managedCredentials(environment: "acct")
        await store.close()
        #expect(records.map(\.serverID) == [made] && records.map(\.namespace) == ["legacy"], "\(records)")
        // The exported manifest names a variable for the password; with it set, the plan only sets it once.
        let variable = try #require(export.stderr.split(separator: "\n").first { $0.contains("_PASSWORD") }?
            .split(separator: " ").first { $0.hasSuffix("_PASSWORD") }.map(String.init), "\(export)")
        w.variables[variable] = "legacy-password-1"
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
    }

    @Test(arguments: LeadConduitTests.providers)
    func twoLiveCredentialsOfADeclaredNameAreAConflictNamingBothIDs(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        for (k, v) in Self.passwords { w.variables[k] = v }
        let a = await server.put(name: "Delivery 0", package: "pkg-0", username: "poster-0", password: "ui-made-1")
        let b = await server.put(name: "Delivery 0", package: "pkg-0", username: "poster-0", password: "ui-made-2")
        w.manifest("lc.yaml", Self.manifest(2, provider: provider))
        let plan = await w.run(["plan", "manifests"])
        #expect(plan.exitCode == 1, "\(plan)")
        #expect(plan.stdout.contains("Delivery 0") && plan.stdout.contains(a) && plan.stdout.contains(b), "\(plan)")
        let apply = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(apply.exitCode == 1)
        let env = try #require(E2EWorkspace.environmentResults(try w.report()).first)
        #expect(env["success"] as? Bool == false)
        let conflicts = env["conflicts"] as? [[String: Any]] ?? []
        #expect(conflicts.first?["serverIds"] as? [String] == [a, b], "\(env)")
        // The other credential was applied; neither namesake was touched.
        let held = await server.credentials()
        #expect(held.filter { $0.name == "Delivery 1" }.count == 1)
        #expect(held.filter { $0.name == "Delivery 0" }.map(\.password).sorted() == ["ui-made-1", "ui-made-2"])
    }

    @Test(arguments: LeadConduitTests.providers)
    func aRefusedKeyNamesTheEnvironmentAndTheVariableAndIsNotRetried(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        for (k, v) in Self.passwords { w.variables[k] = v }
        w.variables["LEADCONDUIT_API_KEY"] = "a-key-that-was-reset"
        w.manifest("lc.yaml", Self.manifest(1, provider: provider))
        let plan = await w.run(["plan", "manifests"])
        #expect(plan.exitCode == 1)
        let text = plan.stdout + plan.stderr
        #expect(text.contains("401 authentication failed") && text.contains("environment acct") && text.contains("env LEADCONDUIT_API_KEY"), "\(plan)")
        #expect(!text.contains("a-key-that-was-reset"))
        #expect(await server.stats().total == 0, "a refused key is answered before anything is counted")
    }

    @Test(arguments: LeadConduitTests.providers)
    func pruneAllIsRefusedWhereTheAPIHasNoProjects(provider: String) async throws {
        let (w, server) = try await workspace(provider: provider)
        defer { Task { await server.stop() } }
        w.manifest("lc.yaml", Self.manifest(1, provider: provider, prune: "all"))
        let result = await w.run(["validate", "manifests"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("lc.yaml:5:8") && result.stderr.contains("prune"), "\(result)")
    }

    /// 300 credentials against errors, dropped connections, answers lost after the change was
    /// stored, and a rate limit: no duplicate names on the server, and at most two runs.
    @Test(arguments: LeadConduitTests.providers)
    func applyConvergesUnderFaultsWithoutDuplicates(provider: String) async throws {
        var faults = SandboxFaults()
        faults.errorRate = 0.1
        faults.dropRate = 0.05
        faults.commitThenFailRate = 0.1
        faults.rateLimit = SandboxFaults.RateLimit(requestsPerSecond: 400, retryAfterSeconds: 1)
        faults.randomSeed = 7
        let (w, server) = try await workspace(LeadConduitConfiguration(faults: faults), concurrency: 8, provider: provider)
        defer { Task { await server.stop() } }
        for (k, v) in Self.passwords { w.variables[k] = v }
        w.manifest("lc.yaml", Self.manifest(300, provider: provider))
        var runs = 0
        var exit: Int32 = -1
        while exit != 0 && runs < 3 {
            runs += 1
            let result = await w.run(["apply", "manifests", "--auto-approve", "--report", "report\(runs).json"])
            exit = result.exitCode
            if exit != 0 {
                let entry = (try? w.report("report\(runs).json")).flatMap { E2EWorkspace.environmentResults($0).first } ?? [:]
                print("FIGURE leadconduit faults run \(runs): exit \(exit): \(entry["message"] ?? result.stderr.suffix(300))")
            }
        }
        #expect(runs <= 2, "took \(runs) runs")
        // What the reports say was created is what the server holds.
        let created = (1...runs).compactMap { try? w.report("report\($0).json") }.compactMap { E2EWorkspace.environmentResults($0).first }
            .compactMap { ($0["changes"] as? [String: Int])?["created"] }.reduce(0, +)
        #expect(created == 300, "reports say \(created) created")
        let stats = await server.stats()
        await server.setFaults(SandboxFaults())
        let held = await server.credentials()
        #expect(held.count == 300 && Set(held.map(\.name)).count == 300, "\(held.count) credentials, \(Set(held.map(\.name)).count) names")
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        print("FIGURE leadconduit faults(300 credentials, 10% 500, 5% drop, 10% commit-then-502, 429 over 400/s): runs=\(runs) requests=\(stats.total) writes=\(stats.writes) (minimum 301: 1 list + 300 creates), duplicates 0")
    }
}
