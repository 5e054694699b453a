import ApinizerSandbox
import CredOps
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// `password: { generate: ... }` for APIs that take a declared secret: credops makes it, sets it,
/// delivers it and keeps only its fingerprint; rotation replaces it (LeadConduit, a new
/// credential first) or sets a new one (Apinizer, one credential per username).
@Suite struct GeneratedPasswordTests {
    static func delivered(_ w: E2EWorkspace, _ file: String) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: w.dir.url("delivered/\(file)")))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
    }

    @Test func leadConduitMakesDeliversAndRotatesAPasswordWithoutAGap() async throws {
        let key = "lc-gen-key-0123456789"
        let server = try await LeadConduitServer.start(LeadConduitConfiguration(apiKeys: [key]))
        defer { Task { await server.stop() } }
        let w = E2EWorkspace()
        w.variables["LEADCONDUIT_API_KEY"] = key
        w.environment("acct", "provider: leadconduit\nurl: \(server.baseURL)\nauth: { apiKey: { fromEnv: LEADCONDUIT_API_KEY } }\n")
        func manifest(_ package: String) -> String {
            """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: leadconduit
            project: lead-intake
            deliver: { file: "../delivered/{environment}/{name}.json" }
            credentials:
              - name: Acme CRM delivery
                package: \(package)
                username: acme-posting
                password: { generate: { length: 40 } }

            """
        }
        w.manifest("lc.yaml", manifest("acme-crm"))
        let first = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        #expect(first.exitCode == 0, "\(first)")
        var pair = try Self.delivered(w, "acct/Acme CRM delivery.json")
        var held = await server.credentials()
        #expect(held.count == 1 && held[0].password == pair["password"] && pair["password"]?.count == 40 && pair["username"] == "acme-posting")
        #expect(pair["id"] == held[0].id)
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "in sync once made: \(plan)")

        // A field change needs the whole object with the password, which credops did not keep:
        // a new credential with a new password, delivered before the old one goes.
        w.manifest("lc.yaml", manifest("acme-crm-v2"))
        let change = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(change.exitCode == 0 && change.stdout.contains("1 replaced"), "\(change)")
        let before = pair
        pair = try Self.delivered(w, "acct/Acme CRM delivery.json")
        held = await server.credentials()
        #expect(held.count == 1 && held[0].id != before["id"] && held[0].password == pair["password"] && held[0].package == "acme-crm-v2")

        // Changed in LeadConduit's UI: the sink is stale, so a new one is made and delivered.
        try await setPassword(server, key: key, id: held[0].id, to: "typed-in-the-ui-000")
        let drift = await w.run(["plan", "manifests"])
        #expect(drift.stdout.contains("-/+ Acme CRM delivery") && drift.stdout.contains("differs from the one on the server"), "\(drift)")
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        pair = try Self.delivered(w, "acct/Acme CRM delivery.json")
        held = await server.credentials()
        #expect(held.count == 1 && held[0].password == pair["password"])

        // The password is in the sink and on the server only.
        var documents = Canary.files(under: w.dir.path).filter { !$0.key.hasPrefix("delivered/") }
        documents["first stdout"] = Data(first.stdout.utf8)
        documents["change stdout"] = Data(change.stdout.utf8)
        #expect(Canary.hits([before["password"] ?? "", pair["password"] ?? ""], in: documents).isEmpty)
    }

    func setPassword(_ server: LeadConduitServer, key: String, id: String, to password: String) async throws {
        let current = try #require(await server.credentials().first { $0.id == id })
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1))
        defer { client.shutdown() }
        let body = try JSONSerialization.data(withJSONObject: ["name": current.name, "type": current.type, "package": current.package,
                                                               "username": current.username, "password": password])
        let response = try await client.send(HTTPRequest(method: .put, url: server.baseURL + "/credentials/" + id, headers: HTTPHeaders([
            ("Authorization", "Basic " + Data("API:\(key)".utf8).base64EncodedString()), ("Content-Type", "application/json"),
        ]), body: body))
        #expect(response.status == 200)
    }

    @Test func apinizerSetsANewPasswordInPlaceWhenRotatedOrWhenFieldsChange() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        func manifest(_ fullName: String) -> String {
            """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:
              - username: made-by-credops
                fullName: \(fullName)
                email: made@example.com
                roleNameList: [API_USER]
                password: { generate: }
                deliver: { file: "../delivered/{environment}/{name}.json" }

            """
        }
        w.manifest("p.yaml", manifest("Made"))
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        var pair = try Self.delivered(w, "staging/made-by-credops.json")
        let madeLive = await w.sandbox("staging").credentials()["made-by-credops"]
        #expect(madeLive?.password == pair["password"] && pair["password"]?.count == 32)
        let rotate = await w.run(["rotate", "-e", "staging", "--project", "payments", "made-by-credops", "--manifests", "manifests", "--auto-approve"])
        #expect(rotate.exitCode == 0, "\(rotate)")
        let old = pair
        pair = try Self.delivered(w, "staging/made-by-credops.json")
        let rotatedLive = await w.sandbox("staging").credentials()["made-by-credops"]
        #expect(pair["password"] != old["password"] && rotatedLive?.password == pair["password"])
        // A field change is sent with a new password (Apinizer takes the whole object).
        w.manifest("p.yaml", manifest("Made Again"))
        let update = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(update.exitCode == 0 && update.stdout.contains("1 updated"), "\(update)")
        let third = try Self.delivered(w, "staging/made-by-credops.json")
        let live = await w.sandbox("staging").credentials()["made-by-credops"]
        #expect(live?.password == third["password"] && third["password"] != pair["password"] && live?.fullName == "Made Again")
        #expect(await w.run(["plan", "manifests", "--detailed-exitcode"]).exitCode == 0)
        // A declared password cannot be rotated: it is the manifest's to change.
        w.manifest("q.yaml", "apiVersion: credops/v1\nkind: CredentialSet\nproject: payments-b\ncredentials:\n  - { username: declared, fullName: D, email: d@example.com, password: { fromEnv: CREDOPS_TOKEN } }\n")
        let refused = await w.run(["rotate", "-e", "staging", "--project", "payments-b", "declared", "--manifests", "manifests", "--auto-approve"])
        #expect(refused.exitCode == 1 && refused.stderr.contains("has a password declared in the manifests"), "\(refused)")
    }
}
