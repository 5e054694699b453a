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
        #expect(schema.secretField == "client_secret" && schema.createdAtField == "created_at")
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

    /// Each bad profile: the line:column and the start of the message.
    static let badCases: [(String, String, String)] = [
        ("paths: { collection: /v1/credentials, item: \"/v1/credentials/{id}\" }", "paths: { collection: \"//evil.example/c\", item: \"/c/{id}\" }",
         "7:22: error: paths.collection '//evil.example/c' names a host"),
        ("paths: { collection: /v1/credentials, item: \"/v1/credentials/{id}\" }", "paths: { collection: /c, item: /c/x }",
         "7:32: error: paths.item must hold {id}"),
        ("paths: { collection: /v1/credentials, item: \"/v1/credentials/{id}\" }", "paths: { collection: \"/c/{namespace}\", item: \"/c/{id}\" }",
         "7:22: error: paths.collection holds {namespace}, but namespace is not pathSegment"),
        ("paths: { collection: /v1/credentials, item: \"/v1/credentials/{id}\" }", "paths: { collection: /c, item: \"/c/{key}\" }",
         "7:32: error: paths.item '/c/{key}' has an unknown placeholder {key}"),
        ("paths: { collection: /v1/credentials, item: \"/v1/credentials/{id}\" }", "paths: { collection: \"/c?all=1\", item: \"/c/{id}\" }",
         "7:22: error: paths.collection '/c?all=1' holds a query or fragment"),
        ("identity: { id: /client_id }", "identity: { id: client_id }", "9:17: error: identity.id must be a JSON pointer"),
        ("{ name: enabled, type: bool, default: true }", "{ name: enabled, type: boolean }", "14:28: error: type must be one of bool, instant, string, stringSet, found 'boolean'"),
        ("{ name: created_at, readOnly: true }", "{ name: deliver }", "15:13: error: field name 'deliver' is taken"),
        ("{ name: created_at, readOnly: true }", "{ name: enabled }", "15:13: error: field 'enabled' is declared twice (first at 14:13)"),
        ("name: leadexec", "name: apinizer", "3:7: error: name 'apinizer' is a built-in provider's"),
        ("secret: [client_secret] }", "secret: [] }", "17:14: error: secret.generated needs secret"),
        ("key: { name: description, maxLength: 100 }", "key: { name: description, minLength: 10, maxLength: 5 }", "11:38: error: minLength 10 is more than maxLength 5"),
        ("errors: { message: /error/message }", "error: { message: /error/message }", "18:1: error: unknown key 'error'"),
        ("auth: { allowed: [oauth2], tokenPath: /v1/authorization/token, tokenBody: json }",
         "auth: { allowed: [bearer], tokenPath: /v1/authorization/token }", "5:39: error: tokenPath is for oauth2"),
        ("namespace: none", "namespace: perUnit", "6:12: error: namespace must be one of none, pathSegment"),
        ("{ name: created_at, readOnly: true }", "{ name: created_at, readOnly: true, required: true }", "15:35: error: a read-only field is the server's"),
        ("update: patch", "update: post", "10:9: error: update must be one of put, patch, found 'post'"),
        ("{ name: enabled, type: bool, default: true }", "{ name: enabled, type: bool, default: yes }", "14:43: error: enabled must be true or false"),
        ("paging: { cursor: { parameter: cursor, next: /meta/next } }", "paging: { cursor: { parameter: cursor } }", "8:41: error: cursor needs next"),
        ("key: { name: description, maxLength: 100 }", "key: { name: description, type: bool }", "11:27: error: unknown key 'type'"),
    ]

    @Test(arguments: badCases.indices)
    func aBadProfileIsRefusedAtItsPlace(_ index: Int) {
        let (find, replace, expected) = Self.badCases[index]
        #expect(Self.leadExec.contains(find), "case \(index): the fixture has no '\(find)'")
        let (profiles, problems) = load(Self.leadExec.replacingOccurrences(of: find, with: replace))
        #expect(problems.contains { $0.hasPrefix(expected) }, "case \(index): \(problems)")
        #expect(profiles.isEmpty || !problems.isEmpty)
    }
}
