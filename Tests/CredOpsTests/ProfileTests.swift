import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Provider profiles as they are read: a good one becomes the engine's schema; each bad one is
/// refused with an error at its place.
@Suite struct ProfileTests {
    static let leadExec = """
        apiVersion: credops/v1
        kind: ProviderProfile
        name: leadexec
        description: LeadExec API credentials (paths filled in by the account owner)
        auth: { allowed: [oauth2], tokenPath: /v1/authorization/token, tokenBody: json }
        namespace: none
        paths: { collection: /v1/credentials, item: "/v1/credentials/{id}" }
        list: { items: /data, paging: { cursor: { parameter: cursor, next: /meta/next } } }
        identity: { id: /client_id }
        update: patch
        key: { name: description, maxLength: 100 }
        fields:
          - { name: scopes, type: stringSet, oneOf: [Account API, Data API, Lead Receiver], immutable: true, required: true }
          - { name: enabled, type: bool, default: true }
          - { name: created_at, readOnly: true }
        secret:
          generated: { values: { client_id: /client_id, client_secret: /client_secret }, secret: [client_secret] }
        errors: { message: /error/message }

        """

    func load(_ text: String) -> ([ProviderProfile], [String]) {
        let dir = TemporaryDirectory()
        dir.write("providers/p.yaml", text)
        let (profiles, _, diagnostics) = InputLoader(schemas: [:]).loadProfiles(directory: dir.url("providers"), builtIn: ["apinizer", "leadconduit"])
        let prefix = dir.url("providers/p.yaml") + ":"
        return (profiles, diagnostics.map { $0.description.replacingOccurrences(of: prefix, with: "") })
    }

    @Test func aLeadExecProfileBecomesASchema() throws {
        let (profiles, problems) = load(Self.leadExec)
        #expect(problems.isEmpty, "\(problems)")
        let profile = try #require(profiles.first)
        #expect(profile.name == "leadexec" && profile.auth.tokenBody == .json && profile.update == .patchChanged)
        #expect(profile.list.paging == .cursor(parameter: "cursor", next: JSONPointer("/meta/next")!))
        let schema = profile.schema
        #expect(schema.identifierField == "description" && schema.identifierLength == 1...100)
        #expect(schema.capabilities == ProviderCapabilities(namespace: .none, secret: .generated, identity: .serverAssigned))
        #expect(schema.secretField == "client_secret" && schema.createdAtField == "created_at" && schema.expiryField == nil)
        #expect(try ProfileFixtures.profile(ProfileFixtures.vault).schema.expiryField == "expires", "an instant field marked expiry is watched")
        let scopes = try #require(schema.field(named: "scopes"))
        #expect(scopes.isImmutable && scopes.kind == .stringSet && scopes.oneOf == ["Account API", "Data API", "Lead Receiver"])
        #expect(schema.field(named: "enabled")?.defaultValue == .bool(true))
        #expect(schema.credentialKeys.contains("deliver") && !schema.credentialKeys.contains("client_secret"))
    }

    @Test func pointersAndPathsFollowTheirRules() {
        #expect(JSONPointer("")?.tokens == [] && JSONPointer("/a~1b/c~0d")?.tokens == ["a/b", "c~d"])
        #expect(JSONPointer("a") == nil && JSONPointer("/a~2") == nil)
        #expect(PathTemplate("/v1/x/{id}") != nil)
        for bad in ["v1/x", "//evil.example/x", "https://evil.example/x", "/x?y=1", "/x/{host}", "/x{id}", "/x/../{id}", "/x y"] {
            #expect(PathTemplate(bad) == nil, "\(bad)")
        }
    }

    // Bad profiles, each refused at its place: Corpus/profiles/ (ValidationCorpusTests).

    /// An environment may only use the auth its provider's profile allows.
    @Test func anEnvironmentsAuthMustBeOneTheProfileAllows() throws {
        let profile = try #require(load(Self.leadExec).0.first)
        let dir = TemporaryDirectory()
        dir.write("environments/le.yaml", "provider: leadexec\nurl: https://api.example.com\nauth: { bearer: { fromEnv: T } }\n")
        dir.write("m.yaml", "apiVersion: credops/v1\nkind: CredentialSet\nprovider: leadexec\nproject: p\ncredentials:\n  - { description: a, scopes: [Data API] }\n")
        let (_, diagnostics) = InputLoader(schemas: ["leadexec": profile.schema]).load(paths: [dir.url("m.yaml")], environmentsDirectory: dir.url("environments"))
        #expect(diagnostics.map(\.description).contains { $0.hasSuffix("le.yaml:3:7: error: provider leadexec takes auth oauth2 (its profile's auth.allowed), found bearer") },
                "\(diagnostics)")
    }
}
