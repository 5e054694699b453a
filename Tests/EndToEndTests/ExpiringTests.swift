import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// `credops expiring` through the built binary: expiries from the server's expireDate, rotations
/// from a generated secret's age, the exit codes a nightly job keys on, and plan's warnings.
@Suite struct ExpiringTests {
    static func day(_ offset: Int) -> String {
        Timestamp.format(Int64((Date().timeIntervalSince1970 + Double(offset) * 86_400 + 3600) * 1000))
    }

    static func manifest(_ expiries: [(String, Int?)]) -> String {
        var text = """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:

            """
        for (name, days) in expiries {
            text += """
                  - username: \(name)
                    fullName: \(name)
                    email: \(name)@example.com
                    password: { fromEnv: SHARED_PASSWORD }
                    roleNameList: [API_USER]
                \(days.map { "    expireDate: \"\(day($0))\"\n" } ?? "")
                """
        }
        return text
    }

    @Test func expiriesWithinTheWindowAreListedSoonestFirstAndExitTwo() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        w.variables["SHARED_PASSWORD"] = "Shared-Password-0123"
        w.manifest("payments.yaml", Self.manifest([("past-due", -3), ("soon", 10), ("later", 100), ("never", nil)]))
        let apply = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(apply.exitCode == 0, "\(apply)")

        // Without the declared passwords: only the environment's own token is needed.
        let listed = await w.run(["expiring", "manifests", "--within", "30d", "--no-color"], variables: ["SHARED_PASSWORD": ""])
        #expect(listed.exitCode == 2, "\(listed)")
        let lines = listed.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(listed.stdout)")
        #expect(lines.first?.contains("past-due") == true && lines.first?.contains("expired ") == true && lines.first?.contains("3 days ago") == true,
                "\(listed.stdout)")
        #expect(lines.dropFirst().first?.contains("soon") == true && lines.dropFirst().first?.contains("in 10 days") == true, "\(listed.stdout)")
        #expect(!listed.stdout.contains("later") && !listed.stdout.contains("never"))
        #expect(lines.last == "2 credentials expire within 30 days (1 already past).", "\(listed.stdout)")

        let json = await w.run(["expiring", "manifests", "--within", "200d", "--format", "json"])
        #expect(json.exitCode == 2)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let items = try #require(document["credentials"] as? [[String: Any]])
        #expect(items.map { $0["name"] as? String } == ["past-due", "soon", "later"])
        #expect(items.map { $0["daysLeft"] as? Int } == [-3, 10, 100])
        #expect(items.allSatisfy { $0["kind"] as? String == "expires" && $0["environment"] as? String == "staging" })
        #expect(document["withinSeconds"] as? Int == 200 * 86_400)

        // Plans warn 30 days ahead.
        let plan = await w.run(["plan", "manifests", "--no-color"])
        #expect(plan.exitCode == 0 && plan.stdout.contains("! past-due expired ") && plan.stdout.contains("! soon expires "), "\(plan)")
        #expect(!plan.stdout.contains("! later"))

        // Nothing within the window: exit 0 (the two that expire soon are deleted first).
        w.manifest("payments.yaml", Self.manifest([("later", 100), ("never", nil)]))
        let cleanup = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(cleanup.exitCode == 0 && cleanup.stdout.contains("2 deleted"), "\(cleanup)")
        let calm = await w.run(["expiring", "manifests", "--within", "7d", "--no-color"])
        #expect(calm.exitCode == 0 && calm.stdout.contains("No credential expires or is due for rotation within 7 days."), "\(calm)")
    }

    @Test func aGeneratedSecretNearItsRotateAfterIsListedAndAnUnreadableEnvironmentExitsOne() async throws {
        let w = E2EWorkspace()
        w.dir.write("providers/leadexec.yaml", ProfileFixtures.leadExec)
        w.variables["LEADEXEC_CLIENT_SECRET"] = "expiring-client-secret-0123"
        let profile = try ProfileFixtures.profile(ProfileFixtures.leadExec)
        let server = try await ProfileServer.start(ProfileEmulatorConfiguration(profile: profile, keys: ["expiring-client-secret-0123"]))
        defer { Task { await server.stop() } }
        w.environment("le-one", """
            provider: leadexec
            url: \(server.baseURL)
            auth:
              oauth2: { clientId: credops-e2e, clientSecret: { fromEnv: LEADEXEC_CLIENT_SECRET } }
            """)
        w.manifest("alpha.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: leadexec
            project: alpha
            deliver: { file: "../delivered/{environment}/{project}/{name}.json" }
            rotateAfter: 30d
            credentials:
              - { description: Feed One, scopes: [Lead Receiver] }
              - { description: Feed Two, scopes: [Data API] }
            """)
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        await server.backdate(days: 26)
        let listed = await w.run(["expiring", "manifests", "--within", "7d", "--no-color"])
        #expect(listed.exitCode == 2, "\(listed)")
        #expect(listed.stdout.contains("Feed One") && listed.stdout.contains("rotate by ") && listed.stdout.contains("in 3 days")
                    && listed.stdout.contains("secret 26 days old, rotateAfter 30d"), "\(listed)")
        #expect(listed.stdout.contains("2 generated secrets are due for rotation within 7 days."), "\(listed)")
        let plan = await w.run(["plan", "manifests", "--no-color"])
        #expect(plan.stdout.contains("! Feed One rotate by ") && plan.stdout.contains("the apply after that replaces it"), "\(plan)")

        // An environment that cannot be read is an error, not "nothing expires".
        await server.stop()
        let down = await w.run(["expiring", "manifests", "--no-color"])
        #expect(down.exitCode == 1 && down.stdout.contains("le-one: cannot read:"), "\(down)")
    }

    @Test func aWindowThatIsNotADurationIsRefused() async throws {
        let w = E2EWorkspace()
        let bad = await w.run(["expiring", "manifests", "--within", "thirty"])
        #expect(bad.exitCode == 64 && bad.stderr.contains("--within must be a duration"), "\(bad)")
    }
}
