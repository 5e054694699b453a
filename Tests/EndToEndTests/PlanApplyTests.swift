import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

@Suite struct PlanApplyTests {
    func workspace(_ names: [String] = ["staging", "production"], faults: [String: SandboxFaults] = [:]) async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start(names, faults: faults)
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: names.contains("production")))
        return w
    }

    @Test func firstApplyCreatesEverythingInTwoEnvironmentsWithTheDocumentedReport() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        let result = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(result.exitCode == 0, "\(result)")

        for env in ["staging", "production"] {
            let held = await w.sandbox(env).credentials()
            let checkout = try #require(held["checkout-service"])
            #expect(checkout.project == "payments")
            #expect(checkout.email == "checkout@example.com")
            #expect(checkout.description == "Calls the payment APIs")
            #expect(checkout.roleNameList == ["API_USER"])
            #expect(checkout.ipList == [env == "production" ? "10.20.0.0/16" : "10.0.0.0/8"])
            #expect(checkout.expireDate == "2027-06-30T23:59:59.000Z")
            #expect(checkout.password == (env == "production" ? "canary-CheckoutProd-pw-0815" : "canary-Checkout-pw-4711"))
            #expect(checkout.access == [SandboxAccess(name: "PaymentAPI", type: "API_PROXY")])
            let billing = try #require(held["billing-bot"])
            #expect(Set(billing.roleNameList) == ["API_USER", "DEVELOPER"])
            #expect(billing.access == [SandboxAccess(name: "PaymentAPIGroup", type: "API_PROXY_GROUP")])
            #expect(held.count == 2)
        }

        let report = try w.report()
        #expect(report["success"] as? Bool == true)
        let deployment = try #require(report["deploymentResult"] as? [String: Any])
        #expect(deployment["success"] as? Bool == true)
        #expect(deployment["message"] as? String == "Deployment completed successfully in 2 environments")
        let results = E2EWorkspace.environmentResults(report)
        #expect(results.map { $0["environmentName"] as? String } == ["production", "staging"])
        for entry in results {
            #expect(entry["success"] as? Bool == true)
            #expect(entry["message"] as? String == "Deployed successfully: 2 created, 2 granted")
            let changes = try #require(entry["changes"] as? [String: Int])
            #expect(changes == ["created": 2, "updated": 0, "passwordChanged": 0, "granted": 2, "revoked": 0, "deleted": 0, "adopted": 0])
            let operations = try #require(entry["operations"] as? [[String: Any]])
            #expect(operations.count == 4)
            #expect(operations.allSatisfy { $0["success"] as? Bool == true && $0["username"] != nil && $0["action"] != nil })
        }
    }

    @Test func secondPlanShowsNoChangesAndSecondApplySendsNoWrite() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        for env in ["staging", "production"] { try await w.sandbox(env).resetStats() }

        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        #expect(plan.stdout.contains("No changes. 2 environments are in sync with the manifests."))
        let apply = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(apply.exitCode == 0, "\(apply)")
        for env in ["staging", "production"] {
            let stats = try await w.sandbox(env).stats()
            #expect(stats.writes == 0, "\(env): \(stats.byRoute)")
            // One list per project and one access list per credential with grants, per run.
            #expect(stats.byRoute["GET /apiops/projects/{project}/credentials/"] == 2)
            #expect(stats.byRoute["GET /apiops/projects/{project}/credentials/{username}/access/"] == 4)
        }
    }

    @Test func fieldPasswordAccessAndRemovalAreEachPlannedAndAppliedPrecisely() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)

        // A field change.
        w.manifest("payments.yaml", Manifests.payments(checkoutEmail: "payments-team@example.com", productionOverride: false))
        var plan = try await w.planJSON()
        var changes = E2EWorkspace.changes(plan, environment: "staging")
        #expect(E2EWorkspace.summary(changes) == ["checkout-service update"])
        let fields = changes.first?["fields"] as? [[String: Any]]
        #expect(fields?.count == 1)
        #expect(fields?.first?["field"] as? String == "email")
        #expect(fields?.first?["before"] as? String == "checkout@example.com")
        #expect(fields?.first?["after"] as? String == "payments-team@example.com")
        #expect(changes.first?["passwordChanged"] as? Bool == false)
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials()["checkout-service"]?.email == "payments-team@example.com")

        // A password change: the environment variable changed.
        w.variables["BILLING_PASSWORD"] = "canary-Billing-pw-rotated-99"
        plan = try await w.planJSON()
        #expect(E2EWorkspace.summary(E2EWorkspace.changes(plan, environment: "staging")) == ["billing-bot password"])
        try await w.sandbox("staging").resetStats()
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials()["billing-bot"]?.password == "canary-Billing-pw-rotated-99")
        #expect(try await w.sandbox("staging").stats().byRoute["PATCH /apiops/projects/{project}/credentials/{username}/"] == 1)

        // An access change: one grant replaced by another.
        w.manifest("payments.yaml", Manifests.payments(checkoutEmail: "payments-team@example.com",
                                                       checkoutGrants: "[{ name: RefundAPI, type: API_PROXY }]", productionOverride: false))
        plan = try await w.planJSON()
        changes = E2EWorkspace.changes(plan, environment: "staging")
        #expect(E2EWorkspace.summary(changes) == ["checkout-service grant", "checkout-service revoke"])
        #expect((changes[0]["grants"] as? [[String: String]]) == [["type": "API_PROXY", "name": "RefundAPI"]])
        #expect((changes[1]["grants"] as? [[String: String]]) == [["type": "API_PROXY", "name": "PaymentAPI"]])
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials()["checkout-service"]?.access == [SandboxAccess(name: "RefundAPI", type: "API_PROXY")])

        // A removed credential (managed by credops) is deleted.
        w.manifest("payments.yaml", Manifests.payments(checkoutEmail: "payments-team@example.com",
                                                       checkoutGrants: "[{ name: RefundAPI, type: API_PROXY }]", includeBilling: false, productionOverride: false))
        plan = try await w.planJSON()
        #expect(E2EWorkspace.summary(E2EWorkspace.changes(plan, environment: "staging")) == ["billing-bot delete"])
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials()["billing-bot"] == nil)

        let final = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(final.exitCode == 0, "\(final)")
    }

    @Test func outOfBandCredentialIsLeftAloneUnlessPruneAll() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        try await w.sandbox("staging").seed(credentials: [
            SandboxCredential(project: "payments", username: "legacy-user", password: "x-legacy-1", email: "legacy@example.com",
                              fullName: "Legacy", roleNameList: [], enabled: true, ipList: [], access: []),
        ])
        let apply = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(apply.exitCode == 0, "\(apply)")
        #expect(apply.stdout.contains("legacy-user") && apply.stdout.contains("unmanaged, left alone"))
        #expect(await w.sandbox("staging").credentials()["legacy-user"] != nil)

        w.manifest("payments.yaml", Manifests.payments(prune: "all", productionOverride: false))
        let plan = try await w.planJSON()
        let changes = E2EWorkspace.changes(plan, environment: "staging")
        #expect(E2EWorkspace.summary(changes) == ["legacy-user delete"])
        #expect(changes.first?["reason"] as? String == "not declared (prune: all)")
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials()["legacy-user"] == nil)
    }

    @Test func massDeleteIsRefusedWithoutTheFlag() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let extra = (1...4).map { i in
            """
              - username: bot-\(i)
                fullName: Bot \(i)
                email: bot\(i)@example.com
                password: { fromEnv: BILLING_PASSWORD }

            """
        }.joined()
        w.manifest("payments.yaml", Manifests.payments(extraCredentials: extra, productionOverride: false))
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.sandbox("staging").credentials().count == 6)

        // Four of six would go: refused, nothing changed.
        w.manifest("payments.yaml", Manifests.payments(includeBilling: false, productionOverride: false))
        try await w.sandbox("staging").resetStats()
        let refused = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(refused.exitCode == 1, "\(refused)")
        #expect(refused.stderr.contains("5 of 6 credentials of project payments would be deleted (more than half)"))
        #expect(refused.stderr.contains("--allow-mass-delete"))
        #expect(try await w.sandbox("staging").stats().writes == 0)
        #expect(await w.sandbox("staging").credentials().count == 6)

        let allowed = await w.run(["apply", "manifests", "--auto-approve", "--allow-mass-delete"])
        #expect(allowed.exitCode == 0, "\(allowed)")
        #expect(await w.sandbox("staging").credentials().keys.sorted() == ["checkout-service"])
    }

    @Test func unreachableEnvironmentFailsAloneAndIsReported() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let closed = try RawHTTPServer { _ in nil }
        let port = closed.port
        closed.stop()
        w.environment("production", """
            provider: apinizer
            url: http://127.0.0.1:\(port)
            auth: { bearer: { fromEnv: CREDOPS_TOKEN } }
            connectTimeoutSeconds: 2
            retry: { maxRetries: 1, initialBackoffMilliseconds: 10 }
            """)
        let result = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(await w.sandbox("staging").credentials().count == 2)
        let entries = E2EWorkspace.environmentResults(try w.report())
        let production = try #require(entries.first { $0["environmentName"] as? String == "production" })
        #expect(production["success"] as? Bool == false)
        #expect((production["message"] as? String)?.contains("connect to 127.0.0.1:\(port) failed") == true)
        let staging = try #require(entries.first { $0["environmentName"] as? String == "staging" })
        #expect(staging["success"] as? Bool == true)
        #expect((try w.report()["deploymentResult"] as? [String: Any])?["message"] as? String == "Deployment failed in 1 of 2 environments")
    }

    @Test func gatewayFailureFailsTheOperationNamingTheGatewayAndIsRedeployedLater() async throws {
        var faults = SandboxFaults()
        faults.failingGateway = "gw-us"
        let w = try await workspace(["staging", "production"], faults: ["production": faults])
        defer { Task { await w.stop() } }
        let result = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(result.exitCode == 1, "\(result)")
        let entries = E2EWorkspace.environmentResults(try w.report())
        let production = try #require(entries.first { $0["environmentName"] as? String == "production" })
        #expect(production["success"] as? Bool == false)
        let message = production["message"] as? String ?? ""
        #expect(message.contains("gateway gw-us failed"), "\(message)")
        #expect(entries.first { $0["environmentName"] as? String == "staging" }?["success"] as? Bool == true)
        // The manager stored the credentials; the next plan sends them again.
        #expect(await w.sandbox("production").credentials().count == 2)
        await w.sandbox("production").setFaults(SandboxFaults())
        let plan = try await w.planJSON(["-e", "production"])
        let changes = E2EWorkspace.changes(plan, environment: "production")
        #expect(E2EWorkspace.summary(changes).contains("checkout-service update"), "\(changes)")
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(await w.run(["plan", "manifests", "--detailed-exitcode"]).exitCode == 0)
    }

    @Test func missingSecretStopsTheRunBeforeAnyRequest() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        w.variables.removeValue(forKey: "BILLING_PASSWORD")
        let result = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("environment variable BILLING_PASSWORD is not set; export it before running credops (declared at manifests/payments.yaml:"), "\(result)")
        #expect(try await w.sandbox("staging").stats().total == 0)
    }

    @Test func applyWithoutTerminalOrApprovalRefusesAndChangesNothing() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let result = await w.run(["apply", "manifests"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("apply needs confirmation: run it in a terminal, or pass --auto-approve."))
        #expect(try await w.sandbox("staging").stats().writes == 0)
    }

    @Test func protectedEnvironmentNeedsItsNameConfirmed() async throws {
        let w = try await E2EWorkspace.start(["production"], extra: ["production": "protected: true"])
        defer { Task { await w.stop() } }
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments())
        let refused = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(refused.exitCode == 1)
        #expect(refused.stderr.contains("production is protected: pass --confirm-environment production"), "\(refused)")
        #expect(try await w.sandbox("production").stats().writes == 0)
        let confirmed = await w.run(["apply", "manifests", "--auto-approve", "--confirm-environment", "production"])
        #expect(confirmed.exitCode == 0, "\(confirmed)")
    }

    @Test func clientCredentialsLoginIsUsed() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        w.environment("staging", """
            provider: apinizer
            url: \(w.sandbox("staging").baseURL)
            auth: { oauth2: { clientId: ci-user, clientSecret: { fromEnv: CI_SECRET } } }
            """)
        w.variables["CI_SECRET"] = "ci-pass"
        let result = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(result.exitCode == 0, "\(result)")
        #expect(try await w.sandbox("staging").stats().byRoute["POST /apiops/auth/token"] == 1)
        w.variables["CI_SECRET"] = "wrong-secret-value"
        let refused = await w.run(["plan", "manifests"])
        #expect(refused.exitCode == 1)
        #expect(refused.stdout.contains("401 unauthorized_client: Bad credentials; check auth.oauth2 clientId and clientSecret"), "\(refused)")
        #expect(!refused.stdout.contains("wrong-secret-value") && !refused.stderr.contains("wrong-secret-value"))
    }

    @Test func noPasswordAppearsInAnyOutputReportPlanOrStateFile() async throws {
        var faults = SandboxFaults()
        faults.failingGateway = "gw-eu"
        let w = try await workspace(["staging", "production"], faults: ["production": faults])
        defer { Task { await w.stop() } }
        w.manifest("broken.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            project: reporting
            credentials:
              - username: bad-role-bot
                fullName: Bad Role
                email: bad@example.com
                password: { fromEnv: BILLING_PASSWORD }
                roleNameList: [NO_SUCH_ROLE]
            """)
        var outputs: [String] = []
        for args in [["plan", "manifests"], ["plan", "manifests", "--format", "json"],
                     ["apply", "manifests", "--auto-approve", "--report", "report.json"],
                     ["apply", "manifests", "--auto-approve", "--format", "json"]] {
            let r = await w.run(args)
            outputs += [r.stdout, r.stderr]
        }
        w.variables["CHECKOUT_PASSWORD"] = "canary-Checkout-pw-second-1234"
        let r = await w.run(["apply", "manifests", "--auto-approve", "--report", "report2.json"])
        outputs += [r.stdout, r.stderr]
        var files: [String] = []
        if let e = FileManager.default.enumerator(atPath: w.dir.path) {
            while let f = e.nextObject() as? String {
                if f.hasPrefix("manifests") || f.hasPrefix("environments") { continue }
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: w.dir.url(f), isDirectory: &isDir), !isDir.boolValue { files.append(f) }
            }
        }
        #expect(files.contains(".credops/state.db"))
        #expect(files.contains("report.json"))
        let canaries = Array(Manifests.passwords.values) + ["canary-Checkout-pw-second-1234", "test-token-0123456789"]
        for canary in canaries {
            for (i, output) in outputs.enumerated() { #expect(!output.contains(canary), "output \(i) holds a secret") }
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: w.dir.url(file)))
                #expect(data.range(of: Data(canary.utf8)) == nil, "\(file) holds a secret")
            }
        }
    }
}
