import ApinizerSandbox
import CredOps
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

@Suite struct GitOpsTests {
    func workspace() async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start(["staging"])
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        return w
    }

    @Test func savedPlanAppliesOnceAndIsThenStale() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        let plan = await w.run(["plan", "manifests", "--out", "plan.json"])
        #expect(plan.exitCode == 0, "\(plan)")
        #expect(plan.stdout.contains("Plan saved to plan.json; apply it with: credops apply --plan plan.json"))
        let file = try Data(contentsOf: URL(fileURLWithPath: w.dir.url("plan.json")))
        for secret in Manifests.passwords.values + ["test-token-0123456789"] {
            #expect(file.range(of: Data(secret.utf8)) == nil, "the plan file holds a secret")
        }
        let mode = (try FileManager.default.attributesOfItem(atPath: w.dir.url("plan.json"))[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)

        let shown = await w.run(["show", "plan.json", "--format", "markdown"])
        #expect(shown.exitCode == 0)
        #expect(shown.stdout.contains("<details><summary><b>staging</b>: 2 to create, 2 grants</summary>"), "\(shown)")

        let applied = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(applied.exitCode == 0, "\(applied)")
        #expect(await w.sandbox("staging").credentials().count == 2)
        // Applying it again: the live state is no longer the one it was made from.
        try await w.sandbox("staging").resetStats()
        let again = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(again.exitCode == 1)
        #expect(again.stderr.contains("stale plan: plan.json"), "\(again)")
        #expect(again.stderr.contains("staging: the live state or credops state changed since the plan was made"))
        #expect(try await w.sandbox("staging").stats().writes == 0)
    }

    @Test func savedPlanIsStaleAfterAnOutOfBandChange() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        w.manifest("payments.yaml", Manifests.payments(checkoutEmail: "new@example.com", productionOverride: false))
        #expect(await w.run(["plan", "manifests", "--out", "plan.json"]).exitCode == 0)
        var changed = try #require(await w.sandbox("staging").credentials()["billing-bot"])
        changed.fullName = "Changed on the server"
        try await w.sandbox("staging").seed(credentials: [changed])
        try await w.sandbox("staging").resetStats()
        let result = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("staging: the live state or credops state changed since the plan was made"), "\(result)")
        #expect(try await w.sandbox("staging").stats().writes == 0)
        #expect(await w.sandbox("staging").credentials()["checkout-service"]?.email == "checkout@example.com")
    }

    @Test func savedPlanIsStaleAfterAManifestEdit() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        #expect(await w.run(["plan", "manifests", "--out", "plan.json"]).exitCode == 0)
        w.manifest("payments.yaml", Manifests.payments(checkoutEmail: "edited@example.com", productionOverride: false))
        let result = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("manifests/payments.yaml changed since the plan was made"), "\(result)")
        #expect(try await w.sandbox("staging").stats().writes == 0)
    }

    @Test func savedPlanIsStaleAfterASecretChange() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        #expect(await w.run(["plan", "manifests", "--out", "plan.json"]).exitCode == 0)
        w.variables["BILLING_PASSWORD"] = "canary-Billing-pw-other-777"
        let result = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("staging: a declared password changed since the plan was made"), "\(result)")
        #expect(try await w.sandbox("staging").stats().writes == 0)
    }

    @Test func applyWithPlanRefusesPathsAndEnvironmentFlags() async throws {
        let dir = TemporaryDirectory()
        let result = await CLIRunner(directory: dir.path).run(["apply", "--plan", "p.json", "manifests"])
        #expect(result.exitCode == 64)
        #expect(result.stderr.contains("--plan takes no PATH"))
    }

    @Test func exportedManifestValidatesAndAppliesToAnEmptyPlanButForPasswords() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        try await w.sandbox("staging").seed(credentials: [
            SandboxCredential(project: "payments", username: "legacy-api", password: "old-1", email: "legacy@example.com",
                              fullName: "Legacy: API", description: "no", roleNameList: ["API_USER", "DEVELOPER"], enabled: false,
                              ipList: ["10.1.2.3", "2001:db8::/32"], expireDate: "2026-12-31T23:59:59.000Z",
                              access: [SandboxAccess(name: "PaymentAPI", type: "API_PROXY"), SandboxAccess(name: "PaymentAPIGroup", type: "API_PROXY_GROUP")]),
            SandboxCredential(project: "payments", username: "on", password: "old-2", email: "on@example.com", fullName: "0777",
                              description: nil, roleNameList: [], enabled: true, ipList: [], expireDate: nil, access: []),
        ])
        let export = await w.run(["export", "-e", "staging", "--project", "payments", "--out", "manifests", "--adopt"])
        #expect(export.exitCode == 0, "\(export)")
        #expect(export.stderr.contains("CREDOPS_STAGING_LEGACY_API_PASSWORD  (legacy-api)"))
        #expect(export.stderr.contains("Adopted 2 credentials in staging"))
        let text = try String(contentsOfFile: w.dir.url("manifests/payments.yaml"), encoding: .utf8)
        #expect(text.contains("fullName: \"Legacy: API\""))
        #expect(text.contains("- username: \"on\""))
        #expect(text.contains("description: \"no\""))
        #expect(!text.contains("old-1") && !text.contains("old-2"))

        let validate = await w.run(["validate", "manifests"])
        #expect(validate.exitCode == 0, "\(validate)")
        w.variables["CREDOPS_STAGING_LEGACY_API_PASSWORD"] = "new-legacy-pw-1"
        w.variables["CREDOPS_STAGING_ON_PASSWORD"] = "new-on-pw-2"
        let plan = try await w.planJSON()
        #expect(E2EWorkspace.summary(E2EWorkspace.changes(plan, environment: "staging")).sorted() == ["legacy-api password", "on password"])
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials()["legacy-api"]?.password == "new-legacy-pw-1")
        #expect(await w.run(["plan", "manifests", "--detailed-exitcode"]).exitCode == 0)
    }

    @Test func driftShowsInThePlanJSONForScheduledChecks() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        var changed = try #require(await w.sandbox("staging").credentials()["checkout-service"])
        changed.enabled = false
        changed.access = []
        try await w.sandbox("staging").seed(credentials: [changed, SandboxCredential(
            project: "payments", username: "intruder", password: "x-1", email: "i@example.com", fullName: "Intruder",
            roleNameList: [], enabled: true, ipList: [], access: [])])
        let result = await w.run(["plan", "manifests", "--format", "json", "--detailed-exitcode"])
        #expect(result.exitCode == 2)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let drift = try #require(json["drift"] as? [String: Any])
        #expect(drift["hasDrift"] as? Bool == true)
        let credentials = drift["credentials"] as? [[String: Any]] ?? []
        let entry = try #require(credentials.first { $0["username"] as? String == "checkout-service" })
        #expect(entry["fields"] as? [String] == ["enabled"])
        #expect((entry["grantsMissing"] as? [[String: String]]) == [["type": "API_PROXY", "name": "PaymentAPI"]])
        #expect((drift["unmanagedCredentials"] as? [[String: String]])?.map { $0["username"] } == ["intruder"])
    }

    @Test func schemasMatchTheCommandAndValidateEveryExample() async throws {
        let runner = CLIRunner(directory: PackagePaths.root)
        for (file, arguments) in [("manifest", ["schema", "manifest"]), ("environment", ["schema", "environment"]),
                                  ("manifest.leadconduit", ["schema", "--provider", "leadconduit"]),
                                  ("manifest.leadvibe", ["schema", "--provider", "leadvibe"]), ("profile", ["schema", "profile"]),
                                  ("manifest.leadexec", ["schema", "--provider", "leadexec"]), ("policy", ["schema", "policy"])] {
            let printed = await runner.run(arguments)
            #expect(printed.exitCode == 0)
            let committed = try String(contentsOfFile: PackagePaths.path("schema/\(file).schema.json"), encoding: .utf8)
            #expect(printed.stdout == committed, "schema/\(file).schema.json is not what `credops \(arguments.joined(separator: " "))` prints; regenerate it")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: PackagePaths.path("examples")).filter { $0.hasSuffix(".yaml") }.map { "examples/\($0)" }
            + (try FileManager.default.contentsOfDirectory(atPath: PackagePaths.path("environments"))).map { "environments/\($0)" }
            + (try FileManager.default.contentsOfDirectory(atPath: PackagePaths.path("providers"))).map { "providers/\($0)" }
            + (try FileManager.default.contentsOfDirectory(atPath: PackagePaths.path("policies"))).map { "policies/\($0)" }
        let check = try await python(["scripts/check-schemas.py", "schema"] + files)
        #expect(check.code == 0, "\(check.output)")
        #expect(check.output.components(separatedBy: "\nok ").count - 1 + (check.output.hasPrefix("ok ") ? 1 : 0) == files.count)
        // The check can fail: a manifest with an unknown key is refused.
        let dir = TemporaryDirectory()
        let bad = dir.write("bad.yaml", "apiVersion: credops/v1\nkind: CredentialSet\nproject: p\ncredentials:\n  - { username: u, fullName: U, email: u@example.com, roleNameLists: [] }\n")
        let refused = try await python(["scripts/check-schemas.py", "schema", bad])
        #expect(refused.code == 1)
        #expect(refused.output.contains("roleNameLists"))
    }

    func python(_ arguments: [String]) async throws -> (code: Int32, output: String) {
        let out = ChildProcess.pipe()
        let child = try ChildProcess("/usr/bin/env", ["python3"] + arguments, directory: PackagePaths.root, stdout: out.write, stderr: out.write)
        close(out.write)
        let output = try await offCooperativePool { String(decoding: FileHandle(fileDescriptor: out.read, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self) }
        return (await child.wait(timeout: .seconds(60)) ?? -1, output)
    }
}
