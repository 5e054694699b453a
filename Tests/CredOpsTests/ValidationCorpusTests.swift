import ApinizerProvider
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Runs every file of `Corpus/` through the loader and compares the diagnostics with the
/// file's own `# expect:` lines, exactly: each rule of validation is pinned by a case.
@Suite struct ValidationCorpusTests {
    static let corpus = PackagePaths.path("Tests/CredOpsTests/Corpus")
    static let schemas = ["apinizer": ApinizerProvider.credentialSchema]

    static func files(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(corpus)/\(folder)")) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func directories(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(corpus)/\(folder)")) ?? []).sorted()
    }

    struct Expectations {
        var errors: Set<String> = []
        var warnings: Set<String> = []
        var forbidden: [String] = []

        init(file: String) {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# expect: ") { errors.insert(String(line.dropFirst("# expect: ".count))) }
                if line.hasPrefix("# expect-warning: ") { warnings.insert(String(line.dropFirst("# expect-warning: ".count))) }
                if line.hasPrefix("# must-not-contain: ") { forbidden.append(String(line.dropFirst("# must-not-contain: ".count))) }
            }
        }
    }

    /// `LINE:COL: message` for diagnostics in `file`; everything else in full, so it shows up as unexpected.
    static func actual(_ diagnostics: [Diagnostic], severity: Diagnostic.Severity, file: String, replacing prefixes: [String]) -> Set<String> {
        Set(diagnostics.filter { $0.severity == severity }.map { d in
            var message = d.message
            for prefix in prefixes { message = message.replacingOccurrences(of: prefix, with: "Tests/CredOpsTests/Corpus/") }
            if let l = d.location, l.file == file { return "\(l.line):\(l.column): \(message)" }
            return d.description
        })
    }

    static func check(_ diagnostics: [Diagnostic], file: String, prefixes: [String]) {
        let expected = Expectations(file: file)
        #expect(actual(diagnostics, severity: .error, file: file, replacing: prefixes) == expected.errors, "errors of \(file)")
        #expect(actual(diagnostics, severity: .warning, file: file, replacing: prefixes) == expected.warnings, "warnings of \(file)")
        for text in expected.forbidden {
            #expect(!diagnostics.contains { $0.description.contains(text) }, "a message repeats '\(text)'")
        }
    }

    @Test(arguments: files("manifests"))
    func manifestCase(_ name: String) {
        let file = "\(Self.corpus)/manifests/\(name)"
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
        Self.check(diagnostics, file: file, prefixes: ["\(Self.corpus)/"])
    }

    /// Each file of `profiles/` is read as the only file of a `providers/` directory.
    @Test(arguments: files("profiles"))
    func profileCase(_ name: String) throws {
        let dir = TemporaryDirectory()
        let source = "\(Self.corpus)/profiles/\(name)"
        let target = dir.write("providers/p.yaml", data: try Data(contentsOf: URL(fileURLWithPath: source)))
        let (profiles, _, diagnostics) = InputLoader(schemas: [:]).loadProfiles(directory: dir.url("providers"), builtIn: ["apinizer", "leadconduit", "leadvibe"])
        let expected = Expectations(file: source)
        #expect(Self.actual(diagnostics, severity: .error, file: target, replacing: []) == expected.errors, "errors of \(name)")
        #expect(expected.errors.isEmpty || profiles.isEmpty, "\(name): a profile with errors is not used")
    }

    /// Each file of `policies/` is read as the only file of a `policies/` directory, with the
    /// Apinizer schema and a provider whose secrets the server generates (no expiry, no ipList).
    @Test(arguments: files("policies"))
    func policyCase(_ name: String) throws {
        let dir = TemporaryDirectory()
        let source = "\(Self.corpus)/policies/\(name)"
        let target = dir.write("policies/p.yaml", data: try Data(contentsOf: URL(fileURLWithPath: source)))
        var schemas = Self.schemas
        schemas["leadexec"] = try ProfileFixtures.profile(ProfileFixtures.leadExec).schema
        let (policies, _, diagnostics) = InputLoader(schemas: schemas).loadPolicies(directory: dir.url("policies"), schemas: schemas)
        let expected = Expectations(file: source)
        #expect(Self.actual(diagnostics, severity: .error, file: target, replacing: []) == expected.errors, "errors of \(name)")
        #expect(expected.errors.isEmpty || policies.isEmpty, "\(name): a file with errors gives no policy")
    }

    @Test(arguments: files("environment-files"))
    func environmentFileCase(_ name: String) throws {
        let dir = TemporaryDirectory()
        let source = "\(Self.corpus)/environment-files/\(name)"
        let target = dir.write("environments/target.yaml", data: try Data(contentsOf: URL(fileURLWithPath: source)))
        // A valid neighbour, so that the manifest applies somewhere whatever the case does.
        dir.write("environments/staging.yaml", data: try Data(contentsOf: URL(fileURLWithPath: "\(Self.corpus)/environments/staging.yaml")))
        let manifest = dir.write("manifests/m.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:
              - username: checkout
                fullName: Checkout
                email: checkout@example.com
                password: { fromEnv: CHECKOUT_PASSWORD }
            """)
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [manifest], environmentsDirectory: dir.url("environments"))
        let expected = Expectations(file: source)
        #expect(Self.actual(diagnostics, severity: .error, file: target, replacing: []) == expected.errors, "errors of \(name)")
        #expect(Self.actual(diagnostics, severity: .warning, file: target, replacing: []) == expected.warnings, "warnings of \(name)")
        for text in expected.forbidden {
            #expect(!diagnostics.contains { $0.description.contains(text) }, "a message repeats '\(text)'")
        }
    }

    @Test(arguments: directories("multi"))
    func multiFileCase(_ name: String) {
        let dir = "\(Self.corpus)/multi/\(name)"
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [dir], environmentsDirectory: "\(Self.corpus)/environments")
        var remaining = diagnostics
        for file in Self.files("multi/\(name)").map({ "\(dir)/\($0)" }) {
            let mine = diagnostics.filter { $0.location?.file == file }
            Self.check(mine, file: file, prefixes: ["\(Self.corpus)/"])
            remaining.removeAll { $0.location?.file == file }
        }
        #expect(remaining.isEmpty, "diagnostics outside the case's files: \(remaining)")
    }

    @Test func corpusCoversEveryRule() {
        #expect(Self.files("manifests").count >= 35)
        #expect(Self.files("environment-files").count >= 15)
        #expect(Self.files("policies").count >= 20)
    }
}

/// The fuzzers' seeds must be what today's readers take, or a fuzzer spends its hours on
/// refusals at the door (the saved-plan seeds of plan format 1 did, for a whole campaign, once
/// format 2 came).
@Suite struct FuzzSeedTests {
    @Test func everySavedPlanSeedIsAPlanThisVersionReads() throws {
        let directory = PackagePaths.path("Fuzz/Corpus/saved-plan")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        #expect(seeds.count >= 5)
        for seed in seeds {
            let data = try Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(seed)))
            #expect(throws: Never.self, "\(seed)") { _ = try SavedPlan.read(data) }
        }
    }
}
