import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Seed data")
struct SeedTests {
    typealias H = SandboxHarness

    private func withFile<T>(_ text: String, _ body: (String) throws -> T) throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("seed-\(UUID().uuidString).yaml").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }

    @Test func productExampleSeedLoadsAndLeftOutKeysTakeDefaults() throws {
        let seed = try withFile("""
        projects: [MyProject, payments]
        roles: [API_USER, DEVELOPER, ADMIN]
        apiProxies: [MyAPI, PaymentAPI]
        apiProxyGroups: [MyAPIGroup]
        gateways: [production, staging]   # the environments named in every deploymentResult
        tokens: [demo-token]              # accepted bearer tokens, besides --token
        clients: { ci-user: ci-pass }     # logins for POST /apiops/auth/token
        tokenTTLSeconds: 3600
        """) { try SandboxSeed.load(yamlFile: $0) }
        #expect(seed.projects == ["MyProject", "payments"])
        #expect(seed.clients == ["ci-user": "ci-pass"])
        #expect(seed.credentials == [])
        let partial = try withFile("gateways: [prod-eu]\ntokens: ['0777', no]\n") { try SandboxSeed.load(yamlFile: $0) }
        #expect(partial.gateways == ["prod-eu"])
        #expect(partial.tokens == ["0777", "no"])
        #expect(partial.roles == SandboxSeed.default.roles)
    }

    @Test func emptySeedFileIsTheDefaultSeed() throws {
        #expect(try withFile("\n# nothing\n") { try SandboxSeed.load(yamlFile: $0) } == SandboxSeed.default)
    }

    @Test func unknownKeyIsAnErrorWithItsPathAndASuggestion() throws {
        let error = #expect(throws: SandboxError.self) {
            try withFile("""
            credentials:
              - project: MyProject
                username: alice
                email: a@example.com
                fullName: Alice
                roleNameLists: [API_USER]
            """) { try SandboxSeed.load(yamlFile: $0) }
        }
        #expect(error?.kind == .invalidSeed)
        #expect(error?.message.contains("credentials[0].roleNameLists") == true)
        #expect(error?.message.contains("did you mean 'roleNameList'") == true)
        let top = #expect(throws: SandboxError.self) { try withFile("gateway: [x]\n") { try SandboxSeed.load(yamlFile: $0) } }
        #expect(top?.message.contains("did you mean 'gateways'") == true)
    }

    @Test(arguments: [
        "credentials: [{project: nowhere, username: a, email: a@example.com, fullName: A}]",
        "credentials: [{project: MyProject, username: a, email: a@example.com, fullName: A, roleNameList: [NOPE]}]",
        "credentials: [{project: MyProject, username: a, email: a@example.com, fullName: A, expireDate: soon}]",
        "credentials: [{project: MyProject, username: a, email: a@example.com, fullName: A, ipList: [1.2.3]}]",
        "credentials: [{project: MyProject, username: a, email: a@example.com, fullName: A, access: [{name: X, type: API_PROXY}]}]",
        "credentials: [{project: MyProject, username: a, email: a@example.com, fullName: A}, {project: payments, username: a, email: b@example.com, fullName: B}]",
        "credentials: [{project: MyProject, username: a, email: nope, fullName: A}]",
        "credentials: [{project: MyProject, username: a, fullName: A}]",
        "tokenTTLSeconds: -1",
        "tokenTTLSeconds: soon",
        "roles: ['']",
        "projects: MyProject",
        "projects: [unclosed",
    ])
    func inconsistentOrMalformedSeedIsRefused(yaml: String) throws {
        #expect(throws: SandboxError.self) { try withFile(yaml) { try SandboxSeed.load(yamlFile: $0) } }
    }

    @Test func missingSeedFileIsAnError() {
        #expect(throws: SandboxError.self) { try SandboxSeed.load(yamlFile: "/nonexistent/seed.yaml") }
    }

    @Test func seededCredentialsExistAtStartWithNormalisedExpiry() async throws {
        let seed = try withFile("""
        credentials:
          - project: payments
            username: legacy
            password: old
            email: legacy@example.com
            fullName: Legacy
            expireDate: "2026-03-04T05:06:07+02:00"
            access: [{name: PaymentAPI, type: API_PROXY}]
        """) { try SandboxSeed.load(yamlFile: $0) }
        #expect(seed.credentials.first?.expireDate == "2026-03-04T03:06:07.000Z")
        try await H.with(H.configuration(seed: seed)) { h async throws in
            let list = try await h.send(.get, H.credentialsPath("payments"))
            #expect(list.json["resultList"]?[0]?["username"]?.stringValue == "legacy")
            let access = try await h.send(.get, H.credentialsPath("payments", "legacy", access: true))
            #expect(access.json["resultList"]?[0]?["name"]?.stringValue == "PaymentAPI")
            let duplicate = try await h.send(.post, H.credentialsPath("MyProject"),
                                             json: #"{"username":"legacy","password":"p","email":"a@b.io","fullName":"A"}"#)
            #expect(duplicate.errorDescription == "There is already a credential has this name!")
        }
    }

    @Test func startRefusesAnInconsistentConfiguredSeed() async throws {
        var seed = SandboxSeed.default
        seed.credentials = [SandboxCredential(project: "nowhere", username: "x", email: "x@example.com", fullName: "X")]
        await #expect(throws: SandboxError.self) { _ = try await SandboxServer.start(H.configuration(seed: seed)) }
    }

    @Test func seedRoundTripsThroughJSON() throws {
        var seed = SandboxSeed.default
        seed.credentials = [SandboxCredential(project: "admin", username: "g", password: nil, email: "g@example.com", fullName: "G",
                                              access: [SandboxAccess(name: "MyAPI", type: "API_PROXY")])]
        let data = try JSONEncoder().encode(seed)
        #expect(try JSONDecoder().decode(SandboxSeed.self, from: data) == seed)
    }
}
