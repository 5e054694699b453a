import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Policies through the built binary: a failing `error` rule stops validate, plan and apply
/// before anything is sent, located at the credential; `warn` is shown and lets the run go on;
/// rules select environments; a delete limit no flag lifts; allowed hosts; saved plans go stale
/// when a policy changes.
@Suite struct PolicyTests {
    static func credential(_ name: String, roles: String = "[API_USER]", extra: String = "") -> String {
        """
          - username: \(name)
            fullName: \(name)
            email: \(name)@example.com
            password: { fromEnv: SHARED_PASSWORD }
            roleNameList: \(roles)
        \(extra)
        """
    }

    static func manifest(_ credentials: [String]) -> String {
        "apiVersion: credops/v1\nkind: CredentialSet\nproject: payments\ncredentials:\n" + credentials.joined(separator: "\n") + "\n"
    }

    static func policies(_ body: String) -> String { "apiVersion: credops/v1\nkind: Policies\npolicies:\n" + body }

    func workspace() async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start(["staging", "production"])
        w.variables["SHARED_PASSWORD"] = "Shared-Password-0123"
        return w
    }

    @Test func aFailingPolicyStopsValidatePlanAndApplyBeforeAnythingIsSent() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        w.dir.write("policies/baseline.yaml", Self.policies("""
              - name: production-is-fenced
                environments: [production]
                require: [ipList, expireDate]
              - name: no-admin
                projects: ["!admin"]
                forbid: { roleNameList: [ADMIN] }

            """))
        w.manifest("payments.yaml", Self.manifest([Self.credential("fenced", extra: "    ipList: [10.0.0.0/8]\n    expireDate: 2027-06-30T23:59:59.000Z"),
                                                   Self.credential("open"), Self.credential("boss", roles: "[API_USER, ADMIN]")]))
        let validate = await w.run(["validate", "manifests"])
        #expect(validate.exitCode == 1, "\(validate)")
        let plan = await w.run(["plan", "manifests"])
        let apply = await w.run(["apply", "manifests", "--auto-approve"])
        for run in [validate, plan, apply] {
            #expect(run.exitCode == 1)
            #expect(run.stderr.contains("manifests/payments.yaml:12:15: error: policy production-is-fenced: open in production must declare expireDate"), "\(run)")
            #expect(run.stderr.contains("error: policy production-is-fenced: open in production must declare ipList"), "\(run)")
            #expect(run.stderr.contains("error: policy no-admin: boss in staging may not have ADMIN in roleNameList"), "\(run)")
            #expect(!run.stderr.contains("fenced in production must"), "\(run)")
        }
        let sent = try await w.sandbox("staging").stats().total + w.sandbox("production").stats().total
        #expect(sent == 0, "nothing was sent")

        // Only staging selected: the production rule does not apply, the ADMIN one still does.
        w.manifest("payments.yaml", Self.manifest([Self.credential("open")]))
        let staging = await w.run(["apply", "manifests", "-e", "staging", "--auto-approve"])
        #expect(staging.exitCode == 0 && !staging.stderr.contains("policy"), "\(staging)")
        #expect(await w.run(["plan", "manifests", "-e", "production"]).exitCode == 1)

        // warn: shown, and the run goes on.
        w.dir.write("policies/baseline.yaml", Self.policies("""
              - name: production-is-fenced
                environments: [production]
                require: [ipList]
                level: warn

            """))
        let warned = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(warned.exitCode == 0 && warned.stderr.contains("warning: policy production-is-fenced: open in production must declare ipList"), "\(warned)")
    }

    @Test func aPolicyDeleteLimitIsARefusalNoFlagLifts() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        let names = ["a1", "a2", "a3", "a4", "a5", "a6"]
        w.manifest("payments.yaml", Self.manifest(names.map { Self.credential($0) }))
        #expect(await w.run(["apply", "manifests", "-e", "staging", "--auto-approve"]).exitCode == 0)
        w.dir.write("policies/careful.yaml", Self.policies("  - { name: careful-deletes, environments: [staging], maxDeletes: 2 }\n"))
        w.manifest("payments.yaml", Self.manifest(names.prefix(3).map { Self.credential($0) }))
        let plan = await w.run(["plan", "manifests", "-e", "staging", "--no-color"])
        #expect(plan.stdout.contains("3 deletes planned, more than policy careful-deletes allows (maxDeletes: 2)"), "\(plan)")
        let apply = await w.run(["apply", "manifests", "-e", "staging", "--auto-approve", "--allow-mass-delete", "--allow-delete"])
        #expect(apply.exitCode == 1, "\(apply)")
        let routes = try await w.sandbox("staging").stats().byRoute
        #expect(routes.keys.allSatisfy { !$0.hasPrefix("DELETE") }, "nothing deleted: \(routes)")
        // Two at a time is within the limit.
        w.manifest("payments.yaml", Self.manifest(names.prefix(4).map { Self.credential($0) }))
        let smaller = await w.run(["apply", "manifests", "-e", "staging", "--auto-approve", "--allow-mass-delete"])
        #expect(smaller.exitCode == 0 && smaller.stdout.contains("2 deleted"), "\(smaller)")
    }

    @Test func allowedHostsAndStalePlans() async throws {
        let w = try await workspace()
        defer { Task { await w.stop() } }
        w.manifest("payments.yaml", Self.manifest([Self.credential("open")]))
        w.dir.write("policies/hosts.yaml", Self.policies("  - { name: internal-only, allowedHosts: [\"*.internal.example.com\"] }\n"))
        let refused = await w.run(["plan", "manifests", "-e", "staging"])
        #expect(refused.exitCode == 1 && refused.stderr.contains("environments/staging.yaml:2:6: error: policy internal-only: environment staging points at 127.0.0.1, which is not among the allowed hosts (*.internal.example.com)"),
                "\(refused)")
        w.dir.write("policies/hosts.yaml", Self.policies("  - { name: internal-only, allowedHosts: [\"*.internal.example.com\", \"127.0.0.?\"] }\n"))
        #expect(await w.run(["plan", "manifests", "--out", "plan.json"]).exitCode == 0)
        // A policy changed after the plan was saved: the plan is stale.
        w.dir.write("policies/hosts.yaml", Self.policies("  - { name: internal-only, allowedHosts: [\"127.0.0.1\"] }\n"))
        let stale = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(stale.exitCode == 1 && (stale.stdout + stale.stderr).contains("policies/hosts.yaml"), "\(stale)")
    }
}
