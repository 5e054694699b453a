@testable import CredOps
import CredOpsRender
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// The engine's apply path (planner → applier → environment worker → intent resolver) against
/// the in-memory reference provider, with a real SQLite state: each fault a server can make,
/// and what the engine makes of it, as typed outcomes.
@Suite struct ApplyEngineTests {
    static let schema = ResourceSchema(
        identifierField: "name", secretField: "secret",
        fields: [
            FieldSpec("label", .string, default: .string(""), summary: true),
            FieldSpec("tags", .stringSet, default: .set([])),
            FieldSpec("scopes", .stringSet, default: .set([]), oneOf: ["Account API", "Data API"], immutable: true),
        ],
        grantsField: "access", grantTypes: ["API"], identifiersAreGlobal: false)

    /// A workspace: one environment `dev` on a memory server, manifests, a SQLite state.
    final class Workspace: @unchecked Sendable {
        let dir = TemporaryDirectory()
        let server: MemoryServer
        let key = FingerprintKey.random()
        var secrets: [String: String] = ["TOKEN": "memory-token"]
        /// The schema, with the identity the server has (the key as id, or ids it assigns).
        let schema: ResourceSchema
        var schemas: [String: ResourceSchema] { ["memory": schema] }

        init(assignsIDs: Bool = false) {
            server = MemoryServer(assignsIDs: assignsIDs)
            var schema = ApplyEngineTests.schema
            schema.capabilities.identity = assignsIDs ? .serverAssigned : .keyIsID
            self.schema = schema
            dir.write("environments/dev.yaml", "provider: memory\nurl: https://memory.invalid\nauth:\n  bearer: { fromEnv: TOKEN }\n")
        }

        func manifest(_ credentials: String, prune: String = "managed") {
            dir.write("m/m.yaml", """
                apiVersion: credops/v1
                kind: CredentialSet
                provider: memory
                project: payments
                prune: \(prune)
                credentials:
                \(credentials)
                """)
        }

        /// The manifests and environments loaded, and a workflow over the memory server and the state.
        func workflow() async throws -> (Workflow, Inputs, any StateStore) {
            let provider = MemoryProvider(schema: schema, server: server)
            let (inputs, diagnostics) = InputLoader(schemas: [provider.name: provider.schema])
                .load(paths: [dir.url("m")], environmentsDirectory: dir.url("environments"))
            let loaded = try #require(inputs, "\(diagnostics)")
            let store = try await SQLiteStateStore.open(path: dir.url("state.db"))
            let workflow = Workflow(inputs: loaded, providers: ProviderRegistry([provider]), connector: DirectConnector(), store: store,
                                    stateKey: key, secrets: SecretResolver(environment: secrets, secretsRoot: dir.path))
            return (workflow, loaded, store)
        }


        /// Plans and (with `apply`) applies every environment, as the CLI does.
        func run(apply: Bool = true) async throws -> (Plan, ApplyReport?, [EnvironmentName: PreparedEnvironment]) {
            let (workflow, loaded, store) = try await workflow()
            let (books, problems) = workflow.resolveSecrets(for: loaded.environments)
            #expect(!problems.hasErrors, "\(problems)")
            let (plan, prepared) = await workflow.plan(environments: loaded.environments, books: books, options: PlanOptions())
            var report: ApplyReport?
            if apply {
                let applier = Applier(store: store, run: RunInfo(runID: RunInfo.newID(), command: "test", user: "t", host: "h", pid: 1),
                                      describe: ReportWording.message)
                report = await applier.apply(plan, prepared: prepared, schemas: schemas)
            }
            for env in prepared.values { env.close() }
            await store.close()
            return (plan, report, prepared)
        }

        func operations(_ report: ApplyReport?) -> [OperationResult] { report?.environments.flatMap(\.operations) ?? [] }

        /// Runs the engine's apply use case; `confirm` answers the question, `saved` is a saved plan to apply.
        func useCase(confirm: Bool = true, saved: SavedPlan? = nil, options: PlanOptions = PlanOptions())
            async throws -> (ApplyUseCase.Outcome, [LockInfo], [String]) {
            let (workflow, loaded, store) = try await workflow()
            let (books, _) = workflow.resolveSecrets(for: loaded.environments)
            let steps = StepLog()
            let hooks = ApplyUseCase.Hooks(planned: { _ in steps.add("planned") },
                                           confirm: { envs in steps.add("confirm \(envs.map(\.environment.rawValue))"); return confirm },
                                           willApply: { steps.add("willApply \(self.server.calls.filter { !$0.hasPrefix("list") && !$0.hasPrefix("grants") }.count)") },
                                           describe: ReportWording.message)
            let request = ApplyUseCase.Request(environments: loaded.environments, books: books, options: options,
                                               run: RunInfo(runID: RunInfo.newID(), command: "test", user: "t", host: "h", pid: 1),
                                               lockTimeout: .seconds(5), stop: StopSignal(), runSecrets: RunSecrets(), saved: saved)
            let outcome = await ApplyUseCase(workflow: workflow, schemas: schemas).run(request, hooks: hooks)
            let locks = try await store.locks()
            await store.close()
            return (outcome, locks, steps.all)
        }
    }

    static let alice = """
          - name: alice
            label: Alice
            secret: { fromEnv: ALICE }
            access: [{ type: API, name: orders }]
        """

    @Test func createsUpdatesAndDeletesThroughTheContract() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.secrets["BOB"] = "bob-secret-1"
        w.manifest(Self.alice + "\n  - name: bob\n    secret: { fromEnv: BOB }\n")
        let (_, first, _) = try await w.run()
        #expect(first?.success == true)
        #expect(first?.environments.first?.changes.created == 2)
        #expect(first?.environments.first?.changes.granted == 1)
        #expect(w.server.stored(project: "payments", id: "alice")?.resource["label"] == .string("Alice"))
        #expect(w.server.stored(project: "payments", id: "alice")?.grants == [AccessGrant(type: "API", name: "orders")])
        #expect(w.server.holds(project: "payments", id: "bob", secret: Secret("bob-secret-1")))

        // A new label and a new secret for alice; bob no longer declared (managed, so deleted).
        w.secrets["ALICE"] = "alice-secret-2"
        w.manifest(Self.alice.replacingOccurrences(of: "label: Alice", with: "label: Alice B"))
        let (plan, second, _) = try await w.run()
        #expect(plan.environments.first?.changes.map { "\($0.key) \($0.action.kind.rawValue)" } == ["alice update", "bob delete"])
        #expect(second?.success == true)
        #expect(w.operations(second).first?.notes == [.secretChanged])
        #expect(second?.environments.first?.changes.passwordChanged == 1)
        #expect(w.server.holds(project: "payments", id: "alice", secret: Secret("alice-secret-2")))
        #expect(w.server.stored(project: "payments", id: "bob") == nil)

        let (again, _, _) = try await w.run(apply: false)
        #expect(!again.hasChanges)
    }

    @Test func aLostCreateAnswerIsSettledByReadingBackNotBySendingTwice() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        w.server.inject(.loseAnswer, on: .create)
        let (_, report, _) = try await w.run()
        #expect(report?.success == true)
        let create = try #require(w.operations(report).first)
        guard case .answerLost(1, _, .foundCreated)? = create.notes.first else {
            Issue.record("expected a lost answer found created, got \(create.notes)")
            return
        }
        #expect(w.server.calls.filter { $0.hasPrefix("create") }.count == 1)
        #expect(w.server.holds(project: "payments", id: "alice", secret: Secret("alice-secret-1")))
    }

    @Test func aDroppedCreateIsSentAgainAfterReadingBack() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        w.server.inject(.dropRequest, on: .create)
        let (_, report, _) = try await w.run()
        #expect(report?.success == true)
        guard case .answerLost(1, _, .createdAgain)? = w.operations(report).first?.notes.first else {
            Issue.record("expected created again, got \(w.operations(report).map(\.notes))")
            return
        }
        #expect(w.server.calls.filter { $0.hasPrefix("create") }.count == 2)
        #expect(w.server.credentials(project: "payments").count == 1)
    }

    @Test func aRefusedStepFailsTypedAndSkipsTheRestOfItsCredential() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        w.server.inject(.refuse(status: 400), on: .create)
        let (_, report, _) = try await w.run()
        let ops = w.operations(report)
        #expect(ops.map(\.status) == [.failed, .skipped])
        guard case .provider(let message)? = ops.first?.failure else {
            Issue.record("expected a provider failure, got \(String(describing: ops.first?.failure))")
            return
        }
        #expect(message.contains("400"))
        #expect(ops.last?.skipReason == .earlierStepFailed(.create))
        #expect(report?.success == false)
        #expect(w.server.credentials(project: "payments").isEmpty)

        // Nothing was stored, so the next run plans the same steps and converges.
        let (plan, second, _) = try await w.run()
        #expect(plan.environments.first?.changes.map(\.action.kind) == [.create, .grant])
        #expect(second?.success == true)
    }

    /// An update whose answer was lost leaves its intent; the next plan reads the server,
    /// settles the intent (the update went through) and plans nothing more.
    @Test func anUnknownOutcomeIsSettledFromTheServerByTheNextPlan() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        _ = try await w.run()
        w.manifest(Self.alice.replacingOccurrences(of: "label: Alice", with: "label: Alice B"))
        w.server.inject(.loseAnswer, on: .update)
        let (_, report, _) = try await w.run()
        guard case .outcomeUnknown? = w.operations(report).first?.failure else {
            Issue.record("expected an unknown outcome, got \(w.operations(report).map(\.failure))")
            return
        }
        #expect(w.server.stored(project: "payments", id: "alice")?.resource["label"] == .string("Alice B"))

        let (plan, _, prepared) = try await w.run(apply: false)
        #expect(!plan.hasChanges, "\(plan.environments.first?.changes.map(\.action.kind) ?? [])")
        #expect(prepared["dev"]?.repairs.count == 1)
    }

    /// A change stored on the server but not deployed is a failure now and is sent again by
    /// the next run, until it is deployed.
    @Test func aStoredButUndeployedChangeIsSentAgainByTheNextRun() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        _ = try await w.run()
        w.manifest(Self.alice.replacingOccurrences(of: "label: Alice", with: "label: Alice B"))
        w.server.inject(.storedNotDeployed, on: .update)
        let (_, report, _) = try await w.run()
        #expect(w.operations(report).first?.status == .failed)

        let (plan, second, _) = try await w.run()
        #expect(plan.environments.first?.changes.map(\.action.kind) == [.update])
        #expect(second?.success == true)
        let (settled, _, _) = try await w.run(apply: false)
        #expect(!settled.hasChanges)
    }

    /// A field that cannot change makes a replace: shown as `-/+` with its reason, applied as
    /// delete then create (the key is the id), and the grants given again.
    @Test func anImmutableChangeReplacesTheCredentialAndGivesItsGrantsAgain() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice + "\n    scopes: [Data API]\n")
        _ = try await w.run()
        w.manifest(Self.alice + "\n    scopes: [Data API, Account API]\n    tags: [x]\n")
        let (plan, report, _) = try await w.run()
        let changes = plan.environments.first?.changes ?? []
        #expect(changes.map(\.action.kind) == [.replace, .grant])
        guard case .replace(_, _, let fields, let forcedBy, _)? = changes.first?.action else {
            Issue.record("expected a replace, got \(changes.map(\.action.kind))")
            return
        }
        #expect(fields.map(\.field) == ["tags", "scopes"])
        #expect(forcedBy == ["scopes"])
        let text = PlanTextRenderer(style: .plain, schemas: ["memory": Self.schema]).render(plan)
        #expect(text.contains("-/+ alice"), "\(text)")
        #expect(text.contains("  +   alice        grant"), "\(text)")
        #expect(text.contains("scopes: +Account API (scopes cannot change)"), "\(text)")
        #expect(text.contains("1 to replace"), "\(text)")

        #expect(report?.success == true)
        #expect(report?.environments.first?.changes.replaced == 1)
        #expect(w.server.calls.suffix(3) == ["delete payments/alice", "create payments/alice", "grant payments/alice"])
        let stored = try #require(w.server.stored(project: "payments", id: "alice"))
        #expect(stored.resource["scopes"] == .set(["Account API", "Data API"]))
        #expect(stored.grants == [AccessGrant(type: "API", name: "orders")])
        let (settled, _, _) = try await w.run(apply: false)
        #expect(!settled.hasChanges)
    }

    /// A replace whose create is refused after its delete went through leaves no credential:
    /// state forgets it, and the next run creates it.
    @Test func aReplaceInterruptedAfterItsDeleteConvergesOnTheNextRun() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice + "\n    scopes: [Data API]\n")
        _ = try await w.run()
        w.manifest(Self.alice + "\n    scopes: [Account API]\n")
        w.server.inject(.refuse(status: 500), on: .create)
        let (_, failed, _) = try await w.run()
        #expect(w.operations(failed).map(\.status) == [.failed, .skipped])
        #expect(w.server.stored(project: "payments", id: "alice") == nil)

        let (plan, report, _) = try await w.run()
        #expect(plan.environments.first?.changes.map(\.action.kind) == [.create, .grant])
        #expect(report?.success == true)
        #expect(w.server.stored(project: "payments", id: "alice")?.resource["scopes"] == .set(["Account API"]))
    }

    /// The intent of a replace whose answer was lost is settled from what the server holds.
    @Test func aLostReplaceIsSettledByTheIntentResolver() {
        let resolver = IntentResolver(schema: Self.schema)
        let after = Resource(id: "alice", fields: ["label": .string("A"), "scopes": .set(["Account API"])])
        let old = Resource(id: "alice", fields: ["label": .string("A"), "scopes": .set(["Data API"])])
        var intent = Intent(id: "i1", environment: "dev", namespace: "payments", key: "alice", action: .replace, runID: "r1",
                            secretFingerprint: Fingerprint(hex: "ab"))
        intent.fieldsDigest = Intent.digest(after, schema: Self.schema)
        let managed = ["alice": ManagedCredential(environment: "dev", namespace: "payments", key: "alice", secretFingerprint: Fingerprint(hex: "00"),
                                                  grants: [AccessGrant(type: "API", name: "orders")], lastAction: "create", lastRunID: "r0",
                                                  lastChangedAt: Date())] as [CredentialKey: ManagedCredential]
        let done = resolver.resolve([intent], live: ["alice": after], liveGrants: [:], managed: managed, runID: "r2")
        #expect(done.managed["alice"]?.secretFingerprint == Fingerprint(hex: "ab"))
        #expect(done.managed["alice"]?.grants == [])
        let notYet = resolver.resolve([intent], live: ["alice": old], liveGrants: [:], managed: managed, runID: "r2")
        #expect(notYet.managed["alice"]?.secretFingerprint == Fingerprint(hex: "00"))
        let halfway = resolver.resolve([intent], live: [:], liveGrants: [:], managed: managed, runID: "r2")
        #expect(halfway.managed["alice"] == nil)
    }

    /// The apply use case: lock, plan, confirm, apply, unlock, in that order, with nothing
    /// written unless confirmation is given and no guard rail or staleness stops it.
    @Test func anAccessReadThatMetAPassingFaultIsReadAgainBeforeThePlanFails() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        _ = try await w.run()
        // Once more after the others: a 503 the HTTP retries did not outlast is survived.
        w.server.inject(.refuse(status: 503), on: .grants)
        let (once, _, _) = try await w.run(apply: false)
        #expect(once.environments.first?.failure == nil)
        #expect(once.environments.first?.hasChanges == false)
        // Twice is a failed plan, naming the request; a refusal (403) is not read again.
        w.server.inject(.refuse(status: 503), on: .grants, times: 2)
        let (twice, _, _) = try await w.run(apply: false)
        #expect(twice.environments.first?.failure?.contains("503") == true)
        w.server.inject(.refuse(status: 403), on: .grants)
        let before = w.server.calls.filter { $0.hasPrefix("grants") }.count
        let (refused, _, _) = try await w.run(apply: false)
        #expect(refused.environments.first?.failure?.contains("403") == true)
        #expect(w.server.calls.filter { $0.hasPrefix("grants") }.count == before + 1)
    }

    /// A server that assigns ids: the id a create brings back is kept in state and used for
    /// every later call (the grant right after the create, the update, the delete), and a
    /// replace creates the new credential before it deletes the old one by its own id.
    @Test func serverAssignedIDsAreKeptUsedAndReplacedCreateFirst() async throws {
        let w = Workspace(assignsIDs: true)
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice + "\n    scopes: [Account API]\n")
        let (_, first, _) = try await w.run()
        #expect(first?.success == true, "\(w.operations(first))")
        let made = try #require(w.server.stored(project: "payments", id: "alice"))
        #expect(made.serverID.count == 24 && made.grants == [AccessGrant(type: "API", name: "orders")])
        var store = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        #expect(try await store.managedCredentials(environment: "dev").first?.serverID == made.serverID)
        await store.close()

        // The label is updated in place, at the same id.
        w.manifest(Self.alice.replacingOccurrences(of: "label: Alice", with: "label: Alice B") + "\n    scopes: [Account API]\n")
        let (_, second, _) = try await w.run()
        #expect(second?.environments.first?.changes.updated == 1)
        #expect(w.server.stored(project: "payments", id: "alice")?.serverID == made.serverID)
        #expect(w.server.stored(project: "payments", id: "alice")?.resource["label"] == .string("Alice B"))

        // Scopes cannot change: a new credential (a new id) first, then the old id goes.
        w.manifest(Self.alice.replacingOccurrences(of: "label: Alice", with: "label: Alice B") + "\n    scopes: [Data API]\n")
        let callsBefore = w.server.calls.count
        let (plan, third, _) = try await w.run()
        #expect(plan.environments.first?.changes.map(\.action.kind) == [.replace, .grant])
        #expect(third?.success == true, "\(w.operations(third))")
        let writes = w.server.calls.dropFirst(callsBefore).filter { !$0.hasPrefix("list") && !$0.hasPrefix("grants") }
        #expect(writes.map { $0.split(separator: " ")[0] } == ["create", "delete", "grant"])
        let all = w.server.all(project: "payments")
        #expect(all.count == 1 && all.first?.serverID != made.serverID && all.first?.resource["scopes"] == .set(["Data API"]))
        #expect(all.first?.grants == [AccessGrant(type: "API", name: "orders")])
        store = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        #expect(try await store.managedCredentials(environment: "dev").first?.serverID == all.first?.serverID)
        await store.close()
        let (after, _, _) = try await w.run(apply: false)
        #expect(after.environments.first?.hasChanges == false)
    }

    /// Names are not unique where the server assigns ids: two live credentials of a declared
    /// name that credops does not manage are a conflict for that credential (both ids named,
    /// nothing sent for it), while the others are applied; once one is pinned by state, a
    /// namesake is left alone; when the pinned one goes, the name is matched afresh.
    @Test func duplicateNamesAreAConflictUntilStatePinsOne() async throws {
        let w = Workspace(assignsIDs: true)
        w.secrets["ALICE"] = "alice-secret-1"
        w.secrets["BOB"] = "bob-secret-1"
        let fields: [String: FieldValue] = ["label": .string("Alice"), "tags": .set([]), "scopes": .set([])]
        let first = w.server.put(project: "payments", Resource(id: "alice", fields: fields), secret: Secret("x"))
        let second = w.server.put(project: "payments", Resource(id: "alice", fields: fields), secret: Secret("y"))
        w.manifest(Self.alice + "\n  - name: bob\n    secret: { fromEnv: BOB }\n")
        let (plan, report, _) = try await w.run()
        let project = try #require(plan.environments.first?.projects.first)
        #expect(project.conflicts == [KeyConflict(key: "alice", serverIDs: [first, second])])
        #expect(plan.hasErrors && !project.changes.contains { $0.key == "alice" })
        let env = try #require(report?.environments.first)
        #expect(!env.success && env.changes.created == 1 && env.conflicts.map(\.conflict.key) == ["alice"])
        #expect(ReportWording.message(env).contains("ids \(first), \(second)"))
        #expect(!w.server.calls.contains { $0.hasSuffix("payments/alice") && !$0.hasPrefix("list") })

        // One of them goes: the other is adopted, and pinned by its id.
        w.server.remove(project: "payments", serverID: first)
        let (_, adopted, _) = try await w.run()
        #expect(adopted?.success == true && adopted?.environments.first?.changes.adopted == 1, "\(w.operations(adopted))")
        var store = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        #expect(try await store.managedCredentials(environment: "dev").first { $0.key == "alice" }?.serverID == second)
        await store.close()

        // A namesake made later is left alone: the pinned one is the one credops works with.
        let third = w.server.put(project: "payments", Resource(id: "alice", fields: fields.merging(["label": .string("Other")]) { $1 }),
                                 secret: Secret("z"))
        let (pinned, _, _) = try await w.run(apply: false)
        let pinnedProject = try #require(pinned.environments.first?.projects.first)
        #expect(pinnedProject.conflicts.isEmpty && pinnedProject.namesakes == ["alice": [third]] && !pinned.hasErrors)
        #expect(pinnedProject.changes.allSatisfy { $0.key != "alice" || $0.serverID == second })

        // The pinned one is deleted out of band: the name is matched afresh (adopted again).
        w.server.remove(project: "payments", serverID: second)
        let (again, _, _) = try await w.run(apply: false)
        let adopt = again.environments.first?.changes.first { $0.key == "alice" && $0.action.kind == .adopt }
        #expect(adopt?.reason == .pinnedCredentialGone(second) && adopt?.serverID == third, "\(String(describing: adopt))")
        #expect(Wording.reason(try #require(adopt?.reason)).contains("(id \(second)) is gone"))
        let (_, applied, _) = try await w.run()
        #expect(applied?.success == true, "\(w.operations(applied))")
        store = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        #expect(try await store.managedCredentials(environment: "dev").first { $0.key == "alice" }?.serverID == third)
        await store.close()
    }

    @Test func theApplyUseCaseAsksBeforeTheFirstWriteAndAlwaysUnlocks() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.manifest(Self.alice)
        let (declined, locks1, steps1) = try await w.useCase(confirm: false)
        guard case .declined = declined else { Issue.record("expected declined, got \(declined)"); return }
        #expect(steps1 == ["planned", "confirm [\"dev\"]"])
        #expect(w.server.credentials(project: "payments").isEmpty)
        #expect(locks1.isEmpty)

        let (applied, locks2, steps2) = try await w.useCase()
        guard case .applied(_, let report) = applied else { Issue.record("expected applied, got \(applied)"); return }
        #expect(report.success)
        #expect(steps2 == ["planned", "confirm [\"dev\"]", "willApply 0"])
        #expect(locks2.isEmpty)

        let (unchanged, _, steps3) = try await w.useCase()
        guard case .unchanged(_, let same) = unchanged else { Issue.record("expected unchanged, got \(unchanged)"); return }
        #expect(same.success && same.environments.allSatisfy { $0.operations.isEmpty })
        #expect(steps3 == ["planned"])
    }

    @Test func aStaleSavedPlanAndAGuardRailChangeNothing() async throws {
        let w = Workspace()
        w.secrets["ALICE"] = "alice-secret-1"
        w.secrets["BOB"] = "bob-secret-1"
        w.manifest(Self.alice)
        let (plan, _, _) = try await w.run(apply: false)
        let saved = SavedPlan(plan: plan, inputs: .init(paths: ["m"], environmentsDirectory: "environments", allowPlaintextSecrets: false,
                                                        files: [], selectedEnvironments: []),
                              options: PlanOptions())
        // Someone creates alice out of band: the saved plan's create is no longer what would be done.
        w.server.put(project: "payments", Resource(id: "alice", fields: ["label": .string("Other")]), secret: Secret("x"))
        let (stale, locks, steps) = try await w.useCase(saved: saved)
        guard case .stale(_, let reasons) = stale else { Issue.record("expected stale, got \(stale)"); return }
        #expect(!reasons.isEmpty)
        #expect(steps.isEmpty)
        #expect(locks.isEmpty)
        #expect(w.server.stored(project: "payments", id: "alice")?.resource["label"] == .string("Other"))

        // Three managed credentials of three, all no longer declared: more than half, refused.
        let w2 = Workspace()
        for name in ["a1", "a2", "a3"] { w2.secrets[name.uppercased()] = "secret-\(name)-123" }
        w2.manifest(["a1", "a2", "a3"].map { "  - name: \($0)\n    secret: { fromEnv: \($0.uppercased()) }" }.joined(separator: "\n"))
        _ = try await w2.run()
        w2.manifest("  []")
        let (refused, _, refusedSteps) = try await w2.useCase()
        guard case .refused(let refusedPlan) = refused else { Issue.record("expected refused, got \(refused)"); return }
        #expect(refusedPlan.environments.first?.refusals == [.massDelete(project: "payments", deletes: 3, live: 3)])
        #expect(refusedSteps == ["planned"])
        #expect(w2.server.credentials(project: "payments").count == 3)
    }

    /// Plans `count` credentials on a fresh workspace and returns what an apply of them works
    /// with: the store, a worker and the jobs.
    func jobsOfAFreshPlan(_ count: Int, workspace w: Workspace) async throws -> (any StateStore, EnvironmentWorker, [CredentialJob]) {
        for i in 0..<count { w.secrets["P\(i)"] = "secret-\(i)-long" }
        w.manifest((0..<count).map { "  - name: c\($0)\n    secret: { fromEnv: P\($0) }" }.joined(separator: "\n"))
        let (workflow, loaded, store) = try await w.workflow()
        let (books, _) = workflow.resolveSecrets(for: loaded.environments)
        let (plan, prepared) = await workflow.plan(environments: loaded.environments, books: books, options: PlanOptions())
        let env = try #require(prepared["dev"])
        let worker = EnvironmentWorker(environment: "dev", session: try #require(env.session), store: store, book: env.book,
                                       planner: Planner(schema: w.schema), runID: "r1", managed: ManagedRecords(env.managed),
                                       runSecrets: env.runSecrets, shouldStop: { false })
        return (store, worker, CredentialJob.group(try #require(plan.environments.first).projects) { _ in true })
    }

    /// Intents are recorded a chunk of jobs at a time: a job's own are recorded when it gets
    /// them, and the recorder never runs more than two chunks past the jobs asked for.
    @Test(.timeLimit(.minutes(1))) func intentsAreRecordedInChunksAheadOfTheJobsThatNeedThem() async throws {
        let w = Workspace()
        let (store, worker, jobs) = try await jobsOfAFreshPlan(9, workspace: w)
        #expect(jobs.count == 9)
        let feed = IntentFeed(jobs: jobs, chunkSize: 2)
        let recorder = Task { await feed.record(worker: worker, store: store, shouldStop: { false }, redact: { $0 }) }
        #expect(await feed.firstChunk() == nil)
        var ids = Set<String>()
        for i in 0..<jobs.count {
            guard case .intents(let intents) = await feed.take(i) else { Issue.record("job \(i) got no intents"); return }
            let pending = Set(try await store.pendingIntents(environment: "dev").map(\.id))
            let own = intents.compactMap { $0?.id }
            #expect(!own.isEmpty && own.allSatisfy(pending.contains), "job \(i)")
            #expect(pending.count <= (i + 1) + 2 * 2, "job \(i): \(pending.count) recorded")
            ids.formUnion(own)
            // Handed out once.
            if case .intents(let again) = await feed.take(i) { #expect(again.isEmpty) }
        }
        await recorder.value
        #expect(ids.count == 9)
        #expect(Set(try await store.pendingIntents(environment: "dev").map(\.id)) == ids)
    }

    /// A chunk the store refuses (the lock was taken away) stops the feed: the jobs of that
    /// chunk and every later one are told their intents were not recorded, and never run.
    @Test(.timeLimit(.minutes(1))) func aChunkThatCannotBeRecordedStopsEveryLaterJob() async throws {
        let w = Workspace()
        let (store, worker, jobs) = try await jobsOfAFreshPlan(9, workspace: w)
        let info = LockInfo(environment: "dev", lockID: "abc123", user: "ci", host: "runner-1", pid: 1, command: "credops apply", since: Date())
        try await store.acquireLock(info, timeout: .seconds(5), shouldStop: { false })
        let feed = IntentFeed(jobs: jobs, chunkSize: 2)
        let other = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        // The lock goes once the first chunk is in, before the jobs ask for the third.
        let recorder = Task { await feed.record(worker: worker, store: store, shouldStop: { false }, redact: { $0 }) }
        #expect(await feed.firstChunk() == nil)
        try await other.forceUnlock(environment: "dev", lockID: "abc123")
        var refusedFrom: Int?
        for i in 0..<jobs.count {
            switch await feed.take(i) {
            case .intents(let intents):
                #expect(refusedFrom == nil, "job \(i) got intents after job \(refusedFrom ?? -1) was refused")
                #expect(!intents.isEmpty)
            case .notRecorded(let failure):
                #expect(!failure.isEmpty)
                refusedFrom = refusedFrom ?? i
            }
        }
        await recorder.value
        let first = try #require(refusedFrom)
        #expect(first >= 2 && first <= 4, "refused from job \(first)")
        await other.close()
    }

    /// Through the applier: the state stops taking writes (its lock taken away) while the first
    /// credentials are sent. Credentials whose intents could not be recorded are never sent,
    /// and are reported skipped because state is not writable; the next apply converges.
    @Test(.timeLimit(.minutes(1))) func anApplyWhoseIntentsStopBeingRecordedSendsNothingMore() async throws {
        let w = Workspace()
        w.dir.write("environments/dev.yaml", "provider: memory\nurl: https://memory.invalid\nconcurrency: 1\nauth:\n  bearer: { fromEnv: TOKEN }\n")
        for i in 0..<9 { w.secrets["P\(i)"] = "secret-\(i)-long" }
        w.manifest((0..<9).map { "  - name: c\($0)\n    secret: { fromEnv: P\($0) }" }.joined(separator: "\n"))
        let (workflow, loaded, store) = try await w.workflow()
        let info = LockInfo(environment: "dev", lockID: "abc123", user: "ci", host: "runner-1", pid: 1, command: "credops apply", since: Date())
        try await store.acquireLock(info, timeout: .seconds(5), shouldStop: { false })
        let other = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        // At the first create, the lock goes. With two jobs at a time (concurrency 1, pipelined)
        // and chunks of two, the third chunk (jobs 4-5) cannot be recorded before then.
        w.server.before(.create) {
            let done = DispatchSemaphore(value: 0)
            Task {
                try? await other.forceUnlock(environment: "dev", lockID: "abc123")
                done.signal()
            }
            done.wait()
        }
        let (books, _) = workflow.resolveSecrets(for: loaded.environments)
        let (plan, prepared) = await workflow.plan(environments: loaded.environments, books: books, options: PlanOptions())
        var applier = Applier(store: store, run: RunInfo(runID: "r1", command: "test", user: "t", host: "h", pid: 1),
                              describe: ReportWording.message)
        applier.intentChunkSize = 2
        let report = await applier.apply(plan, prepared: prepared, schemas: w.schemas)
        let operations = w.operations(report)
        #expect(operations.count == 9)
        let created = w.server.calls.filter { $0.hasPrefix("create") }
        #expect(created.count <= 4, "\(created)")
        for operation in operations where !created.contains("create payments/\(operation.key)") {
            #expect(operation.status == .skipped, "\(operation.key): \(operation.status)")
            guard case .stateNotWritable? = operation.skipReason else { Issue.record("\(operation.key): \(String(describing: operation.skipReason))"); continue }
        }
        for key in ["c4", "c5", "c6", "c7", "c8"] { #expect(!created.contains("create payments/\(key)")) }
        await other.close()

        // Once the state takes writes again, the next run settles what was sent and makes the rest.
        let (_, again, _) = try await w.run()
        #expect(again?.success == true, "\(w.operations(again))")
        #expect(w.server.credentials(project: "payments").count == 9)
        let (after, _, _) = try await w.run(apply: false)
        #expect(after.environments.first?.hasChanges == false)
    }

    /// One variable or file named by many credentials is read once and its value shared, while
    /// each place that names it still gets its own warning or error, at its own line.
    @Test func aSecretSourceNamedTwiceIsReadOnceAndReportedAtEachPlace() async throws {
        let w = Workspace()
        w.secrets["SHARED"] = "shared-secret-1"
        let file = w.dir.write("m/pw.txt", "file-secret-12")
        chmod(file, 0o644)
        w.manifest("""
              - name: a
                secret: { fromEnv: SHARED }
              - name: b
                secret: { fromEnv: SHARED }
              - name: c
                secret: { fromFile: pw.txt }
              - name: d
                secret: { fromFile: pw.txt }
              - name: e
                secret: { fromEnv: MISSING }
              - name: f
                secret: { fromEnv: MISSING }
            """)
        let (workflow, loaded, _) = try await w.workflow()
        let (books, problems) = workflow.resolveSecrets(for: loaded.environments)
        let book = try #require(books["dev"])
        #expect(book.secret(project: "payments", id: "a")?.reveal() == "shared-secret-1")
        #expect(book.secret(project: "payments", id: "b")?.reveal() == "shared-secret-1")
        #expect(book.secret(project: "payments", id: "d")?.reveal() == "file-secret-12")
        // Fingerprints stay per credential: one password on two credentials gives two.
        #expect(book.fingerprint(project: "payments", id: "a") != book.fingerprint(project: "payments", id: "b"))
        let warnings = problems.filter { $0.severity == .warning }.map { "\($0.location?.line ?? 0) \($0.message)" }
        #expect(warnings.count == 2 && warnings.allSatisfy { $0.contains("can be read by other users") }, "\(warnings)")
        #expect(Set(warnings.map { $0.prefix(2) }).count == 2)
        let errors = problems.filter { $0.severity == .error }.map { "\($0.location?.line ?? 0) \($0.message)" }
        #expect(errors.count == 2 && errors.allSatisfy { $0.contains("MISSING is not set") }, "\(errors)")
        #expect(Set(errors.map { $0.prefix(2) }).count == 2)
    }
}

extension ApplyEngineTests {
    /// Export reads the project through the provider contract; adopt records what it exported
    /// under the lock and as a run in the history, like every other write to state.
    @Test func exportAndAdoptGoThroughTheEngineAndTheHistory() async throws {
        let w = Workspace()
        w.server.put(project: "payments", Resource(id: "legacy", fields: ["label": .string("Legacy"), "tags": .set(["a"])]), secret: Secret("x"),
                     grants: [AccessGrant(type: "API", name: "orders")])
        let provider = MemoryProvider(schema: Self.schema, server: w.server)
        let (environments, _) = InputLoader(schemas: [provider.name: provider.schema]).loadEnvironments(directory: w.dir.url("environments"))
        let env = try #require(environments.first)
        let http = HTTPClient(configuration: HTTPClientConfiguration(environment: env))
        defer { http.shutdown() }
        let useCase = ExportUseCase(provider: provider, connector: DirectConnector())
        let result = try await useCase.read(environment: env, project: "payments", credentials: .bearer(Secret("memory-token")),
                                            runSecrets: RunSecrets(), http: http)
        #expect(result.exported.map(\.id) == ["legacy"])
        #expect(result.export.text.contains("name: legacy"))
        #expect(result.export.text.contains("label: Legacy"))
        #expect(result.export.text.contains("name: orders"))

        let store = try await SQLiteStateStore.open(path: w.dir.url("state.db"))
        let report = try await useCase.adopt(result, store: store,
                                             run: RunInfo(runID: "adopt-1", command: "export --adopt", user: "t", host: "h", pid: 1),
                                             describe: ReportWording.message)
        #expect(report.changes.adopted == 1)
        let managed = try await store.managedCredentials(environment: "dev")
        #expect(managed.map(\.key) == ["legacy"])
        #expect(managed.first?.grants == [AccessGrant(type: "API", name: "orders")])
        let history = try await store.history(environment: "dev", limit: 5)
        #expect(history.first?.runID == "adopt-1")
        #expect(history.first?.counts.adopted == 1)
        #expect(history.first?.message == "Deployed successfully: 1 adopted")
        #expect(try await store.locks().isEmpty)
        await store.close()
        #expect(w.server.calls.allSatisfy { $0.hasPrefix("list") || $0.hasPrefix("grants") })
    }
}

/// Steps the hooks saw, in order.
final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var steps: [String] = []
    func add(_ step: String) { lock.withLock { steps.append(step) } }
    var all: [String] { lock.withLock { steps } }
}
