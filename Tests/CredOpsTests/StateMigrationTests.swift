import CredOps
import CredOpsStatePostgres
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// A state written by the release before the generic core (schema 3: Apinizer's columns, one
/// column per count) opens with this build, is migrated in place, and reads back everything it
/// held: managed credentials, their fingerprints and grants, the pending intent a lost answer
/// left, and the history with its counts. The fixtures come from `scripts/make-state-fixtures`
/// run with that release's binary.
@Suite struct StateMigrationTests {
    static func fixture(_ name: String) -> String { PackagePaths.path("Tests/CredOpsTests/Fixtures/state-v3/\(name)") }

    @Test func aSQLiteStateFromTheLastReleaseIsMigratedAndReadBack() async throws {
        let dir = TemporaryDirectory()
        let path = dir.url(".credops/state.db")
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixture("state.db"), toPath: path)
        chmod(path, 0o600)
        let store = try await SQLiteStateStore.open(path: path)
        try await expectMigrated(store)
        await store.close()
        // Opening again migrates nothing more and keeps what the first open wrote.
        let again = try await SQLiteStateStore.open(path: path)
        #expect(try await again.managedCredentials(environment: "fixture").first { $0.key == "alice" }?.serverID == "srv-alice")
        await again.close()
    }

    @Test func aPostgreSQLStateFromTheLastReleaseIsMigratedAndReadBack() async throws {
        let server = try await PostgresServer.get()
        let url = try await offCooperativePool { try server.makeDatabase() }
        let database = try #require(URLComponents(string: url)?.path.dropFirst()).description
        let dump = try String(contentsOfFile: Self.fixture("state.sql"), encoding: .utf8)
        _ = try await offCooperativePool { try server.psql(dump, database: database) }
        let store = try await PostgresStateStore.open(try PostgresLocation(url: url, environment: [:]))
        try await expectMigrated(store)
        await store.close()
    }

    func expectMigrated(_ store: any StateStore) async throws {
        let managed = try await store.managedCredentials(environment: "fixture")
        #expect(managed.map(\.key.rawValue) == ["alice", "bob", "carol"])
        #expect(managed.allSatisfy { $0.namespace == "payments" && $0.serverID == nil && $0.secretFingerprint?.hex.count == 64 })
        #expect(managed.first?.grants == [AccessGrant(type: "API_PROXY", name: "PaymentAPI")])
        #expect(managed.first?.lastAction == "grant")

        let intents = try await store.pendingIntents(environment: "fixture")
        #expect(intents.map { "\($0.namespace)/\($0.key) \($0.action.rawValue)" } == ["payments/carol password"])
        #expect(intents.first?.secretFingerprint != nil && intents.first?.serverID == nil)

        let history = try await store.history(environment: "fixture", limit: 10)
        #expect(history.count == 2)
        let first = try #require(history.last)
        #expect(first.success == true && first.counts.created == 3 && first.counts.granted == 1 && first.counts.total == 4)
        #expect(first.message == "Deployed successfully: 3 created, 1 granted")
        let second = try #require(history.first)
        #expect(second.success == false && second.counts.failed == 1 && second.counts.total == 0)

        // The new columns work on the migrated tables: a server id, and a count the old
        // columns had no place for.
        var alice = try #require(managed.first)
        alice.serverID = "srv-alice"
        try await store.record(alice)
        #expect(try await store.managedCredentials(environment: "fixture").first?.serverID == "srv-alice")
        var run = RunRecord(runID: "after", environment: "fixture", command: "credops apply", user: "u", host: "h", pid: 1,
                            startedAt: Date(), finishedAt: Date(), success: true)
        run.counts.replaced = 2
        try await store.finishRun(run)
        #expect(try await store.history(environment: "fixture", limit: 1).first?.counts.replaced == 2)
        if let intent = intents.first { try await store.complete(intent, outcome: .unchanged) }
        #expect(try await store.pendingIntents(environment: "fixture").isEmpty)
    }
}
