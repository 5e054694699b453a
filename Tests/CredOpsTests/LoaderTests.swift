import ApinizerProvider
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

@Suite struct LoaderTests {
    static let schemas = ["apinizer": ApinizerProvider.credentialSchema]
    static let corpus = PackagePaths.path("Tests/CredOpsTests/Corpus")

    func load(_ files: [String: String], environments: String? = nil) -> (Inputs?, [Diagnostic], TemporaryDirectory) {
        let dir = TemporaryDirectory()
        for (name, text) in files { dir.write("m/\(name)", text) }
        let (inputs, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [dir.url("m")], environmentsDirectory: environments ?? "\(Self.corpus)/environments")
        return (inputs, diagnostics, dir)
    }

    @Test func yaml11WordsStayLiteralInStringFields() throws {
        let file = "\(Self.corpus)/manifests/yaml11-words-stay-strings.yaml"
        let (inputs, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let manifest = try #require(inputs?.manifests.first)
        #expect(manifest.project == "no")
        let credential = try #require(manifest.credentials.first)
        #expect(credential.key == "0777")
        #expect(credential.values.fields["fullName"] == .string("on"))
        #expect(credential.values.fields["description"] == .string("no"))
        #expect(credential.values.fields["roleNameList"] == .set(["1e3", "NULL_ROLE", "yes"]))
        if case .environment(let name)? = credential.values.password?.source { #expect(name == "NO") } else { Issue.record("password source") }
    }

    @Test func mergeKeysAndAliasesAreApplied() throws {
        let file = "\(Self.corpus)/manifests/merge-keys-and-anchors.yaml"
        let (inputs, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let credentials = try #require(inputs?.manifests.first?.credentials)
        #expect(credentials.map(\.key) == ["checkout", "checkout-2"])
        #expect(credentials[1].values.fields["fullName"] == .string("Checkout"))
        #expect(credentials[1].values.fields["roleNameList"] == .set(["API_USER"]))
    }

    @Test func invalidUTF8IsRefusedWithItsPosition() {
        let dir = TemporaryDirectory()
        var bytes = Data("apiVersion: credops/v1\nkind: Cred".utf8)
        bytes.append(contentsOf: [0xC3, 0x28])
        bytes.append(Data("entialSet\n".utf8))
        let file = dir.write("bad.yaml", data: bytes)
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(diagnostics.map(\.description) == ["\(file):2:11: error: the file is not valid UTF-8"])
    }

    @Test func fileOverFourMiBIsRefusedBeforeParsing() {
        let dir = TemporaryDirectory()
        let file = dir.write("big.yaml", data: Data(repeating: UInt8(ascii: "#"), count: 4 * 1024 * 1024 + 1))
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(diagnostics.map(\.description) == ["\(file):1:1: error: the file is 4 MiB, over the 4 MiB limit; split it"])
    }

    @Test func byteOrderMarkIsAccepted() {
        let (inputs, diagnostics, _) = load(["m.yaml": "\u{FEFF}apiVersion: credops/v1\nkind: CredentialSet\nproject: p\ncredentials: []\n"])
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        #expect(inputs?.manifests.count == 1)
    }

    @Test func nonManifestYAMLInADirectoryIsSkippedButNamedFileIsChecked() {
        let (inputs, diagnostics, dir) = load([
            "ci/pipeline.yml": "stages: [validate]\njobs: {}\n",
            "p.yaml": "apiVersion: credops/v1\nkind: CredentialSet\nproject: p\ncredentials: []\n",
        ])
        #expect(!diagnostics.hasErrors)
        #expect(inputs?.skippedFiles == [dir.url("m/ci/pipeline.yml")])
        let (_, explicit) = InputLoader(schemas: Self.schemas).load(paths: [dir.url("m/ci/pipeline.yml")], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(explicit.contains { $0.message == "missing apiVersion: credops/v1" })
    }

    @Test func multipleDocumentsInOneFileAreSeparateManifests() {
        let (inputs, diagnostics, _) = load(["m.yaml": """
            apiVersion: credops/v1
            kind: CredentialSet
            project: a
            credentials: []
            ---
            apiVersion: credops/v1
            kind: CredentialSet
            project: b
            credentials: []
            """])
        #expect(!diagnostics.hasErrors)
        #expect(inputs?.manifests.map(\.project) == ["a", "b"])
    }

    @Test func literalPasswordIsAcceptedOnlyWhenAllowed() {
        let text = """
            apiVersion: credops/v1
            kind: CredentialSet
            project: p
            credentials:
              - { username: u, fullName: U, email: u@example.com, password: literal-pw-1 }
            """
        let dir = TemporaryDirectory()
        let file = dir.write("m.yaml", text)
        let strict = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(strict.diagnostics.hasErrors)
        let relaxed = InputLoader(schemas: Self.schemas, options: LoadOptions(allowPlaintextSecrets: true))
            .load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        #expect(!relaxed.diagnostics.hasErrors, "\(relaxed.diagnostics)")
    }

    @Test func overridesAndRenamesShapeTheDesiredStatePerEnvironment() throws {
        let (inputs, diagnostics, _) = load(["m.yaml": """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:
              - username: checkout
                fullName: Checkout
                email: checkout@example.com
                password: { fromEnv: CHECKOUT_PASSWORD }
                ipList: [10.0.0.0/8]
                overrides:
                  production:
                    ipList: [10.20.0.0/16]
                    password: { fromEnv: CHECKOUT_PASSWORD_PROD }
              - username: tester
                fullName: Tester
                email: t@example.com
                password: { fromEnv: T }
                environments: [staging]
            """])
        #expect(!diagnostics.hasErrors, "\(diagnostics)")
        let inputsValue = try #require(inputs)
        let production = try #require(inputsValue.environment(named: "production"))
        let desired = inputsValue.desired(for: production, schema: ApinizerProvider.credentialSchema)
        let project = try #require(desired.projects.first)
        #expect(project.serverProject == "Payments-Prod")
        #expect(project.credentials.map(\.key) == ["checkout"])
        #expect(project.credentials[0].resource["ipList"] == .set(["10.20.0.0/16"]))
        #expect(project.credentials[0].resource["enabled"] == .bool(true))
        #expect(project.credentials[0].secret?.description == "env CHECKOUT_PASSWORD_PROD")
        let staging = inputsValue.desired(for: try #require(inputsValue.environment(named: "staging")), schema: ApinizerProvider.credentialSchema)
        #expect(staging.projects.first?.credentials.map(\.key) == ["checkout", "tester"])
    }

    @Test func aliasBombIsRefusedQuickly() throws {
        let file = "\(Self.corpus)/manifests/alias-bomb.yaml"
        let start = ContinuousClock.now
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        let elapsed = ContinuousClock.now - start
        #expect(diagnostics.contains { $0.message.contains("through its aliases; refusing it") })
        // A generous bound (the benchmark measures the real figure): an expansion would take minutes.
        #expect(elapsed < .seconds(30))
    }
}
