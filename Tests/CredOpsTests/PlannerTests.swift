import ApinizerProvider
import CredOps
import CredOpsRender
import Foundation
import Testing

/// The planner is pure: these tests give it desired, live and state values and check the plan.
@Suite struct PlannerTests {
    static let schema = ApinizerProvider.credentialSchema
    let planner = Planner(schema: schema)
    static let key = FingerprintKey(bytes: [UInt8](repeating: 7, count: 32))
    static let fpA = Secret("password-a").fingerprint(key: key, context: "c")
    static let fpB = Secret("password-b").fingerprint(key: key, context: "c")
    static let proxyA = AccessGrant(type: "API_PROXY", name: "A")
    static let proxyB = AccessGrant(type: "API_PROXY", name: "B")

    static func resource(_ id: String, _ changes: [String: FieldValue] = [:]) -> Resource {
        var fields: [String: FieldValue] = [
            "fullName": .string("Name \(id)"), "email": .string("\(id)@example.com"), "description": .string(""),
            "roleNameList": .set(["API_USER"]), "enabled": .bool(true), "ipList": .set([]), "expireDate": .instant(nil),
        ]
        for (k, v) in changes { fields[k] = v }
        return Resource(id: CredentialKey(id), fields: fields)
    }

    static func desired(_ id: String, _ changes: [String: FieldValue] = [:], grants: [AccessGrant]? = nil) -> DesiredCredential {
        DesiredCredential(resource: resource(id, changes), secret: SecretReference(.environment("P")), grants: grants,
                          location: SourceLocation(file: "m.yaml", line: 1, column: 1))
    }

    static func managed(_ id: String, fingerprint: Fingerprint? = fpA, grants: [AccessGrant] = [], pending: String? = nil) -> ManagedCredential {
        ManagedCredential(environment: "staging", namespace: "payments", key: CredentialKey(id), secretFingerprint: fingerprint,
                          grants: grants, pendingRedeploy: pending, lastAction: "create", lastRunID: "r1", lastChangedAt: Date())
    }

    func plan(desired: [DesiredCredential], live: [Resource] = [], grants: [String: [AccessGrant]] = [:],
              managed: [ManagedCredential] = [], prune: PruneMode = .managed, password: Fingerprint = fpA) -> ProjectPlan {
        let project = DesiredProject(project: "payments", serverProject: "payments", prune: prune, credentials: desired,
                                     location: SourceLocation(file: "m.yaml", line: 1, column: 1))
        return planner.plan(Planner.ProjectInput(
            desired: project, live: live,
            liveGrants: Dictionary(uniqueKeysWithValues: grants.map { (CredentialKey($0.key), $0.value) }),
            managed: Dictionary(uniqueKeysWithValues: managed.map { ($0.key, $0) }),
            secrets: Dictionary(uniqueKeysWithValues: desired.map { ($0.key, password) })))
    }

    func kinds(_ plan: ProjectPlan) -> [String] { plan.changes.map { "\($0.key) \($0.action.kind.rawValue)" } }

    @Test func newCredentialIsCreatedThenGranted() {
        let p = plan(desired: [Self.desired("a", grants: [Self.proxyA])])
        #expect(kinds(p) == ["a create", "a grant"])
    }

    @Test func sameFieldsAndFingerprintMeanNoChange() {
        let p = plan(desired: [Self.desired("a")], live: [Self.resource("a")], managed: [Self.managed("a")])
        #expect(p.changes.isEmpty)
        #expect(p.inSync == 1)
    }

    @Test func changedFingerprintIsAPasswordChange() {
        let p = plan(desired: [Self.desired("a")], live: [Self.resource("a")], managed: [Self.managed("a")], password: Self.fpB)
        #expect(kinds(p) == ["a password"])
        #expect(p.changes.first?.reason == .secret(.changedSinceLastApply))
    }

    @Test func unknownFingerprintIsAPasswordChange() {
        let p = plan(desired: [Self.desired("a")], live: [Self.resource("a")], managed: [Self.managed("a", fingerprint: nil)])
        #expect(kinds(p) == ["a password"])
        #expect(p.changes.first?.reason == .secret(.neverAppliedByCredops))
    }

    @Test func liveUnmanagedDeclaredCredentialIsAdoptedAndItsPasswordSet() {
        let p = plan(desired: [Self.desired("a", grants: [Self.proxyA])], live: [Self.resource("a")], grants: ["a": [Self.proxyA]])
        #expect(kinds(p) == ["a adopt", "a password"])
        if case .adopt(_, let grants, let credential) = p.changes[0].action {
            #expect(grants == [Self.proxyA])
            #expect(credential)
        } else {
            Issue.record("not an adopt")
        }
    }

    @Test func changedFieldIsAnUpdateNamingOldAndNew() {
        let p = plan(desired: [Self.desired("a", ["enabled": .bool(false), "ipList": .set(["10.1.0.0/16"])])],
                     live: [Self.resource("a", ["ipList": .set(["10.2.0.0/16"])])], managed: [Self.managed("a")])
        #expect(kinds(p) == ["a update"])
        guard case .update(_, _, let fields, _, let passwordChanged) = p.changes[0].action else { Issue.record("not an update"); return }
        #expect(fields == [
            FieldChange(field: "enabled", before: .bool(true), after: .bool(false)),
            FieldChange(field: "ipList", before: .set(["10.2.0.0/16"]), after: .set(["10.1.0.0/16"])),
        ])
        #expect(!passwordChanged)
    }

    @Test func updateCarriesAChangedPasswordInsteadOfASeparatePatch() {
        let p = plan(desired: [Self.desired("a", ["email": .string("new@example.com")])], live: [Self.resource("a")],
                     managed: [Self.managed("a")], password: Self.fpB)
        #expect(kinds(p) == ["a update"])
        if case .update(_, _, _, let fp, let passwordChanged) = p.changes[0].action {
            #expect(passwordChanged)
            #expect(fp == Self.fpB)
        }
    }

    @Test func setsCompareAsSetsAndNullDescriptionEqualsEmpty() {
        let live = Self.resource("a", ["roleNameList": .setOf(["B", "A"]), "description": .string("")])
        let p = plan(desired: [Self.desired("a", ["roleNameList": .setOf(["A", "B"])])], live: [live], managed: [Self.managed("a")])
        #expect(p.changes.isEmpty)
    }

    @Test func ipAddressesCompareInCanonicalForm() {
        let live = Self.resource("a", ["ipList": .set(["2001:0db8:0000::1", "10.0.0.0/8"])])
        let p = plan(desired: [Self.desired("a", ["ipList": .setOf(["2001:db8::1", "10.0.0.0/8"])])], live: [live], managed: [Self.managed("a")])
        #expect(p.changes.isEmpty)
    }

    @Test func expiryComparesAsAnInstant() {
        let ms = Timestamp.parse("2027-06-30T23:59:59.000Z")!
        let sameInstant = Timestamp.parse("2027-07-01T01:59:59+02:00")!
        #expect(ms == sameInstant)
        let p = plan(desired: [Self.desired("a", ["expireDate": .instant(ms)])], live: [Self.resource("a", ["expireDate": .instant(sameInstant)])],
                     managed: [Self.managed("a")])
        #expect(p.changes.isEmpty)
    }

    @Test func grantsGoneFromTheManifestAreRevokedOnlyIfCredopsGaveThem() {
        let p = plan(desired: [Self.desired("a", grants: [Self.proxyA])], live: [Self.resource("a")],
                     grants: ["a": [Self.proxyA, Self.proxyB, AccessGrant(type: "API_PROXY", name: "C")]],
                     managed: [Self.managed("a", grants: [Self.proxyA, Self.proxyB])])
        #expect(kinds(p) == ["a revoke"])
        if case .revoke(let g) = p.changes[0].action { #expect(g == [Self.proxyB]) }
        #expect(p.unmanagedGrants[CredentialKey("a")] == [AccessGrant(type: "API_PROXY", name: "C")])
    }

    @Test func pruneAllRevokesEveryUndeclaredGrantAndPruneNoneNone() {
        let live = [Self.resource("a")]
        let grants = ["a": [Self.proxyA, Self.proxyB]]
        let all = plan(desired: [Self.desired("a", grants: [Self.proxyA])], live: live, grants: grants,
                       managed: [Self.managed("a", grants: [Self.proxyA])], prune: .all)
        #expect(kinds(all) == ["a revoke"])
        let none = plan(desired: [Self.desired("a", grants: [Self.proxyA])], live: live, grants: grants,
                        managed: [Self.managed("a", grants: [Self.proxyA, Self.proxyB])], prune: .none)
        #expect(none.changes.isEmpty)
    }

    @Test func declaredGrantAlreadyOnTheServerIsAdoptedIntoState() {
        let p = plan(desired: [Self.desired("a", grants: [Self.proxyA, Self.proxyB])], live: [Self.resource("a")],
                     grants: ["a": [Self.proxyA]], managed: [Self.managed("a")])
        #expect(kinds(p) == ["a adopt", "a grant"])
        if case .adopt(_, let g, let credential) = p.changes[0].action {
            #expect(g == [Self.proxyA])
            #expect(!credential)
        }
    }

    @Test(arguments: [
        (PruneMode.managed, true, "delete"), (PruneMode.managed, false, "left alone"),
        (PruneMode.all, false, "delete"), (PruneMode.all, true, "delete"),
        (PruneMode.none, true, "left alone"), (PruneMode.none, false, "left alone"),
    ])
    func undeclaredLiveCredentialsFollowThePruneMode(_ prune: PruneMode, _ isManaged: Bool, _ expected: String) {
        let p = plan(desired: [], live: [Self.resource("x")], managed: isManaged ? [Self.managed("x")] : [], prune: prune)
        #expect((p.changes.first?.action.kind == .delete ? "delete" : (p.leftAlone == ["x"] ? "left alone" : "?")) == expected)
    }

    @Test func managedCredentialGoneFromServerAndManifestIsForgotten() {
        let p = plan(desired: [], live: [], managed: [Self.managed("gone")])
        #expect(p.changes.isEmpty)
        #expect(p.forgotten == ["gone"])
    }

    @Test func managedCredentialGoneFromServerButDeclaredIsCreatedAgain() {
        let p = plan(desired: [Self.desired("a")], live: [], managed: [Self.managed("a")])
        #expect(kinds(p) == ["a create"])
        #expect(p.forgotten.isEmpty)
    }

    @Test func pendingRedeployIsSentAgainAsAnUpdate() {
        let p = plan(desired: [Self.desired("a")], live: [Self.resource("a")], managed: [Self.managed("a", pending: "gateway gw failed")])
        #expect(kinds(p) == ["a update"])
        #expect(p.changes[0].reason == .redeploy("gateway gw failed"))
    }

    @Test func deletesComeAfterEveryOtherChange() {
        let p = plan(desired: [Self.desired("b")], live: [Self.resource("a")], managed: [Self.managed("a")])
        #expect(kinds(p) == ["b create", "a delete"])
    }

    @Test(arguments: [(4, 3, true), (4, 2, false), (2, 2, false), (3, 3, true), (6, 3, false)])
    func massDeleteGuard(_ live: Int, _ deletes: Int, _ refused: Bool) {
        let liveResources = (0..<live).map { Self.resource("u\($0)") }
        let keep = (deletes..<live).map { Self.desired("u\($0)") }
        let managed = (0..<live).map { Self.managed("u\($0)") }
        let project = plan(desired: keep, live: liveResources, managed: managed)
        #expect(project.counts[.delete] == deletes)
        let env = EnvironmentPlan(environment: "staging", provider: "apinizer", endpoint: "x", isProtected: false, projects: [project])
        #expect(!env.guardRailRefusals(options: PlanOptions()).isEmpty == refused)
        #expect(env.guardRailRefusals(options: PlanOptions(allowMassDelete: true)).isEmpty)
    }

    @Test func maxDeletesAndProtectedEnvironmentsNeedTheirFlags() {
        let project = plan(desired: [], live: [Self.resource("a")], managed: [Self.managed("a")])
        let env = EnvironmentPlan(environment: "production", provider: "apinizer", endpoint: "x", isProtected: true, projects: [project])
        #expect(env.guardRailRefusals(options: PlanOptions()) == [.deletesInProtectedEnvironment(deletes: 1)])
        #expect(Wording.refusal(.deletesInProtectedEnvironment(deletes: 1), environment: env.environment)
            == "production is protected: 1 delete planned; pass --allow-delete to allow them")
        #expect(env.guardRailRefusals(options: PlanOptions(allowDelete: true)).isEmpty)
        #expect(env.guardRailRefusals(options: PlanOptions(allowDelete: true, maxDeletes: 0)).count == 1)
    }

    @Test func accessListsAreReadOnlyWhereGrantsMatter() {
        let declaredWith = Self.desired("a", grants: [Self.proxyA])
        let declaredWithout = Self.desired("a")
        #expect(Planner.needsGrants(declared: declaredWith, managed: nil, prune: .managed))
        #expect(!Planner.needsGrants(declared: declaredWithout, managed: nil, prune: .managed))
        #expect(Planner.needsGrants(declared: declaredWithout, managed: Self.managed("a", grants: [Self.proxyA]), prune: .managed))
        #expect(!Planner.needsGrants(declared: declaredWithout, managed: Self.managed("a", grants: [Self.proxyA]), prune: .none))
        #expect(Planner.needsGrants(declared: declaredWithout, managed: nil, prune: .all))
        #expect(!Planner.needsGrants(declared: nil, managed: Self.managed("a", grants: [Self.proxyA]), prune: .all))
    }
}
