import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// The field rules a provider's schema carries (length, allowed values, read-only, immutable)
/// are enforced by the loader with located errors, shown to editors in the JSON Schema, and
/// respected by the planner: one generic implementation for every provider.
@Suite struct SchemaRulesTests {
    static let schema = ResourceSchema(
        identifierField: "name", secretField: "password",
        fields: [
            FieldSpec("label", .string, default: .string(""), minLength: 2, maxLength: 5),
            FieldSpec("type", .string, default: .string("user"), oneOf: ["user", "token", "oauth"], immutable: true),
            FieldSpec("scopes", .stringSet, default: .set([]), oneOf: ["Account API", "Data API", "Lead Receiver"], immutable: true),
            FieldSpec("created_at", .string, default: .string(""), readOnly: true),
        ],
        grantsField: "access", grantTypes: [], identifiersAreGlobal: false)

    func load(_ credential: String) -> (Inputs?, [Diagnostic], String) {
        let dir = TemporaryDirectory()
        dir.write("environments/dev.yaml", "provider: rules\nurl: https://rules.example\nauth:\n  bearer: { fromEnv: T }\n")
        let file = dir.write("m/m.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: rules
            project: p
            credentials:
              - name: one
                password: { fromEnv: P }
            \(credential)
            """)
        let (inputs, diagnostics) = InputLoader(schemas: ["rules": Self.schema]).load(paths: [file], environmentsDirectory: dir.url("environments"))
        return (inputs, diagnostics, file)
    }

    @Test func valuesWithinTheRulesLoad() throws {
        let (inputs, diagnostics, _) = load("    label: abcde\n    type: token\n    scopes: [Data API, Account API]\n")
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let fields = try #require(inputs?.manifests.first?.credentials.first?.values.fields)
        #expect(fields["label"] == .string("abcde"))
        #expect(fields["scopes"] == .set(["Account API", "Data API"]))
    }

    @Test func lengthBoundsAreCheckedInUTF16UnitsWithTheirPlace() {
        let (_, short, file) = load("    label: a\n")
        #expect(short.map(\.description) == ["\(file):8:12: error: label must be at least 2 characters long, found 1"])
        let (_, long, longFile) = load("    label: abcdef\n")
        #expect(long.map(\.description) == ["\(longFile):8:12: error: label must be at most 5 characters long, found 6"])
        // Three emoji are six UTF-16 units: too long for a server that counts as JavaScript does.
        let (_, emoji, emojiFile) = load("    label: \"😀😀😀\"\n")
        #expect(emoji.map(\.description) == ["\(emojiFile):8:12: error: label must be at most 5 characters long, found 6"])
    }

    @Test func valueOutsideOneOfIsRefusedWithASuggestion() {
        let (_, diagnostics, file) = load("    type: tokn\n    scopes: [Data API, Data APIs]\n")
        #expect(diagnostics.map(\.description) == [
            "\(file):8:11: error: type must be one of 'user', 'token', 'oauth', found 'tokn' (did you mean 'token'?)",
            "\(file):9:24: error: scopes must be one of 'Account API', 'Data API', 'Lead Receiver', found 'Data APIs' (did you mean 'Data API'?)",
        ])
    }

    @Test func readOnlyFieldCannotBeDeclared() {
        let (_, diagnostics, file) = load("    created_at: \"2026-01-01\"\n")
        #expect(diagnostics.map(\.description) == ["\(file):8:5: error: created_at is set by the server and cannot be declared; remove it"])
    }

    @Test func readOnlyFieldsAreIgnoredInDiffs() {
        let planner = Planner(schema: Self.schema)
        let live = Resource(id: "one", fields: ["label": .string("ab"), "created_at": .string("2026-01-01T00:00:00Z")])
        let desired = Resource(id: "one", fields: ["label": .string("ab")])
        #expect(planner.fieldChanges(live: live, desired: desired).isEmpty)
        let changed = Resource(id: "one", fields: ["label": .string("abc")])
        #expect(planner.fieldChanges(live: live, desired: changed).map(\.field) == ["label"])
    }

    @Test func jsonSchemaCarriesTheRulesAndLeavesReadOnlyFieldsOut() throws {
        let document = JSONSchemaDocument.document(.manifest, schemas: ["rules": Self.schema])
        let text = String(decoding: try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]), as: UTF8.self)
        #expect(text.contains(#""maxLength":5"#) && text.contains(#""minLength":2"#))
        #expect(text.contains(#""enum":["user","token","oauth"]"#))
        #expect(text.contains(#""enum":["Account API","Data API","Lead Receiver"]"#))
        #expect(!text.contains("created_at"))
        #expect(text.contains("a new value replaces the credential"))
    }

    /// A provider without namespaces (LeadConduit) refuses `prune: all`, which would delete
    /// other teams' credentials; one without grants refuses `access`.
    @Test func capabilitiesDecideWhatAManifestMaySay() {
        let flat = ResourceSchema(identifierField: "name", secretField: "password", fields: [], grantsField: "access", grantTypes: [],
                                  identifiersAreGlobal: false,
                                  capabilities: ProviderCapabilities(namespace: .none, secret: .declaredReadable, identity: .serverAssigned))
        let dir = TemporaryDirectory()
        dir.write("environments/dev.yaml", "provider: flat\nurl: https://flat.example\nauth:\n  bearer: { fromEnv: T }\n")
        let file = dir.write("m/m.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: flat
            project: intake
            prune: all
            credentials:
              - name: one
                password: { fromEnv: P }
                access: [{ type: X, name: y }]
            """)
        let (_, diagnostics) = InputLoader(schemas: ["flat": flat]).load(paths: [file], environmentsDirectory: dir.url("environments"))
        #expect(diagnostics.map(\.description) == [
            "\(file):5:8: error: prune: all is refused for flat, which has no projects on the server: it would delete every credential of the account that no manifest declares, other teams' too; use prune: managed",
            "\(file):9:5: error: unknown key 'access' in credential 'one'; expected one of: name, password, deliver, rotateAfter, overlap, environments, overrides",
        ])
        let text = String(decoding: try! JSONSerialization.data(withJSONObject: JSONSchemaDocument.document(.manifest, schemas: ["flat": flat]),
                                                                options: [.sortedKeys]), as: UTF8.self)
        #expect(!text.contains(#""access":{"$ref""#))
    }
}

