import ApinizerProvider
import CredOpsRender
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// The policy checker on loaded inputs: each rule, its selectors and its level.
@Suite struct PolicyCheckerTests {
    static let now = Date(timeIntervalSince1970: 1_796_256_000)  // 2026-12-03

    func check(_ policies: String, manifests: [String: String]) throws -> [String] {
        let dir = TemporaryDirectory()
        dir.write("environments/production.yaml", "provider: apinizer\nurl: https://apinizer.example.com\nauth: { bearer: { fromEnv: T } }\n")
        dir.write("environments/le-prod.yaml", "provider: leadexec\nurl: https://api.leadexec.example.com\nauth: { oauth2: { clientId: c, clientSecret: { fromEnv: S } } }\n")
        for (name, text) in manifests { dir.write("manifests/\(name)", text) }
        dir.write("policies/p.yaml", "apiVersion: credops/v1\nkind: Policies\npolicies:\n" + policies)
        var schemas = ["apinizer": ApinizerProvider.credentialSchema]
        schemas["leadexec"] = try ProfileFixtures.profile(ProfileFixtures.leadExec).schema
        let loader = InputLoader(schemas: schemas)
        let (inputs, problems) = loader.load(paths: [dir.url("manifests")], environmentsDirectory: dir.url("environments"))
        #expect(!problems.hasErrors, "\(problems)")
        let (policies, _, policyProblems) = loader.loadPolicies(directory: dir.url("policies"), schemas: schemas)
        #expect(policyProblems.isEmpty, "\(policyProblems)")
        let loaded = try #require(inputs)
        return PolicyChecker(policies: policies, now: Self.now).check(loaded, environments: loaded.environments, schemas: schemas)
            .map { "\($0.severity == .error ? "error" : "warning") \($0.address ?? ""): \($0.message)" }
    }

    static let payments = """
        apiVersion: credops/v1
        kind: CredentialSet
        project: payments
        prune: all
        credentials:
          - { username: far, fullName: F, email: f@example.com, password: { fromEnv: P }, expireDate: 2029-01-01T00:00:00.000Z, description: ADMIN }
          - { username: near, fullName: N, email: n@example.com, password: { fromEnv: P }, expireDate: 2027-01-01T00:00:00.000Z, roleNameList: [ADMIN] }
        """

    static let feeds = """
        apiVersion: credops/v1
        kind: CredentialSet
        provider: leadexec
        project: feeds
        deliver: { file: "delivered/{name}.env" }
        credentials:
          - { description: Slow, scopes: [Data API], rotateAfter: 365d }
          - { description: Quick, scopes: [Data API], rotateAfter: 30d }
          - { description: Never, scopes: [Data API] }
        """

    @Test func eachRuleFailsWhereItShouldAndOnlyThere() throws {
        let found = try check("""
              - { name: lifetime, providers: [apinizer], maxLifetime: 365d }
              - { name: no-admin, forbid: { roleNameList: [ADMIN] } }
              - { name: rotate, maxRotateAfter: 90d, level: warn }
              - { name: careful, prune: [managed, none], projects: [payments] }

            """, manifests: ["payments.yaml": Self.payments, "feeds.yaml": Self.feeds])
        #expect(found.sorted() == [
            "error production/payments/far: policy lifetime: far in production expires 2029-01-01, in 760 days; at most 365 days are allowed",
            "error production/payments/near: policy no-admin: near in production may not have ADMIN in roleNameList",
            "error production/payments: policy careful: project payments uses prune: all in production; allowed: managed, none",
            "warning le-prod/feeds/Never: policy rotate: Never in le-prod must declare rotateAfter of at most 90d",
            "warning le-prod/feeds/Slow: policy rotate: Slow in le-prod rotates after 365d; at most 90d is allowed",
        ].sorted(), "\(found)")
    }

    @Test func selectorsNarrowWhatARuleSees() throws {
        // Excluded by name, by provider and by project: nothing fails.
        let found = try check("""
              - { name: a, environments: ["!production"], forbid: { roleNameList: [ADMIN] } }
              - { name: b, providers: [leadexec], maxRotateAfter: 400d }
              - { name: c, projects: ["pay*", "!payments"], forbid: { roleNameList: [ADMIN] } }

            """, manifests: ["payments.yaml": Self.payments, "feeds.yaml": Self.feeds])
        #expect(found.sorted() == ["error le-prod/feeds/Never: policy b: Never in le-prod must declare rotateAfter of at most 400d"], "\(found)")
    }

    @Test func globsMatchAsDocumented() {
        let p = NamePatterns(["prod*", "?taging", "!prod-eu"])
        #expect(p.matches("production") && p.matches("prod-us") && p.matches("staging"))
        #expect(!p.matches("prod-eu") && !p.matches("dev") && !p.matches("sstaging"))
        #expect(NamePatterns().matches("anything") && NamePatterns(["!x"]).matches("y") && !NamePatterns(["!x"]).matches("x"))
        #expect(NamePatterns(["*.example.com"]).matches("api.example.com") && !NamePatterns(["*.example.com"]).matches("example.com.evil.io"))
    }
}

/// `credops expiring --format markdown`: hostile names stay inside their cell.
@Suite struct ExpiryRendererTests {
    @Test func aPipeInANameDoesNotSplitTheTable() {
        let item = ExpiringCredential(environment: "prod", project: "p", key: "a|b** <img src=x>", kind: .expires,
                                      due: 1_800_000_000_000, daysLeft: 3)
        let text = ExpiryRenderer(style: TextStyle(colors: false), window: 30 * 86_400).markdown([item], failures: [])
        let row = text.split(separator: "\n").first { $0.contains("img") } ?? ""
        #expect(row.contains("`a\\|b** <img src=x>`"), "\(row)")
        #expect(row.components(separatedBy: " | ").count == 5, "\(row)")
    }
}
