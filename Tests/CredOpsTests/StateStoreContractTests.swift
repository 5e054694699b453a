import CredOps
@testable import CredOpsStatePostgres
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// The contract every state store keeps, run against each implementation.
@Suite struct StateStoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    final class Opened: @unchecked Sendable {
        let store: any StateStore
        let dir: TemporaryDirectory
        init(store: any StateStore, dir: TemporaryDirectory) { self.store = store; self.dir = dir }
    }

    func open(_ kind: Kind) async throws -> Opened {
        let dir = TemporaryDirectory()
        switch kind {
        case .sqlite: return Opened(store: try await SQLiteStateStore.open(path: dir.url(".credops/state.db")), dir: dir)
        case .postgres:
            let url = try await PostgresServer.database()
            return Opened(store: try await PostgresStateStore.open(try PostgresLocation(url: url, environment: [:])), dir: dir)
        }
    }

    static func credential(_ env: String, _ project: String, _ user: String, fp: String? = "ab12", grants: [AccessGrant] = []) -> ManagedCredential {
        ManagedCredential(environment: EnvironmentName(env), namespace: ProjectName(project), key: CredentialKey(user),
                          secretFingerprint: fp.map(Fingerprint.init(hex:)), grants: grants, pendingRedeploy: nil,
                          lastAction: "create", lastRunID: "run1", lastChangedAt: Date(timeIntervalSince1970: 1_800_000_000.123))
    }

    @Test(arguments: Kind.allCases)
    func recordedCredentialsReadBackExactly(_ kind: Kind) async throws {
        let o = try await open(kind)
        var c = Self.credential("staging", "payments", "a", grants: [AccessGrant(type: "API_PROXY", name: "Z"), AccessGrant(type: "API_PROXY", name: "A")])
        c.pendingRedeploy = "gateway gw failed"
        try await o.store.record(c)
        let read = try await o.store.managedCredentials(environment: "staging")
        var expected = c
        expected.grants = c.grants.sorted()
        #expect(read == [expected])
        await o.store.close()
    }

    /// A NUL inside a name must never shorten it to another name (`svc\0evil` stored as `svc`
    /// once made a plan delete an unrelated `svc`): stored exactly, or refused.
    @Test(arguments: Kind.allCases)
    func aNameWithANulIsNeverTruncatedIntoAnother(_ kind: Kind) async throws {
        let o = try await open(kind)
        try await o.store.record(Self.credential("staging", "p", "svc", fp: "01"))
        let hostile = Self.credential("staging", "p", "svc\u{0}evil", fp: "02")
        let stored = (try? await o.store.record(hostile)) != nil
        var read = try await o.store.managedCredentials(environment: "staging")
        #expect(read.first { $0.key == "svc" }?.secretFingerprint?.hex == "01")
        if stored { #expect(read.first { $0.key == "svc\u{0}evil" }?.secretFingerprint?.hex == "02") }
        try? await o.store.forget(environment: "staging", namespace: "p", key: "svc\u{0}evil")
        read = try await o.store.managedCredentials(environment: "staging")
        #expect(read.map(\.key) == ["svc"])
        await o.store.close()
    }

    @Test(arguments: Kind.allCases)
    func recordReplacesAndForgetRemovesPerEnvironment(_ kind: Kind) async throws {
        let o = try await open(kind)
        try await o.store.record(Self.credential("staging", "p", "a", fp: "01"))
        try await o.store.record(Self.credential("staging", "p", "a", fp: "02"))
        try await o.store.record(Self.credential("production", "p", "a", fp: "03"))
        #expect(try await o.store.managedCredentials(environment: "staging").map(\.secretFingerprint?.hex) == ["02"])
        try await o.store.forget(environment: "staging", namespace: "p", key: "a")
        #expect(try await o.store.managedCredentials(environment: "staging").isEmpty)
        #expect(try await o.store.managedCredentials(environment: "production").count == 1)
        await o.store.close()
    }

    @Test(arguments: Kind.allCases)
    func concurrentWritersAllLand(_ kind: Kind) async throws {
        let o = try await open(kind)
        let store = o.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 { group.addTask { try await store.record(Self.credential("e", "p", "user-\(i)")) } }
            try await group.waitForAll()
        }
        #expect(try await store.managedCredentials(environment: "e").count == 200)
        await store.close()
    }

    @Test(arguments: Kind.allCases)
    func historyKeepsRunsNewestFirst(_ kind: Kind) async throws {
        let o = try await open(kind)
        for (i, env) in ["staging", "production", "staging"].enumerated() {
            var run = RunRecord(runID: "run\(i)", environment: EnvironmentName(env), command: "credops apply", user: "ci", host: "runner-1",
                                pid: 42, startedAt: Date(timeIntervalSince1970: 1_800_000_000 + Double(i)))
            try await o.store.beginRun(run)
            run.finishedAt = run.startedAt.addingTimeInterval(2)
            run.success = i != 1
            run.message = "done"
            run.counts.created = i
            try await o.store.finishRun(run)
        }
        let staging = try await o.store.history(environment: "staging", limit: 10)
        #expect(staging.map(\.runID) == ["run2", "run0"])
        #expect(staging.first?.counts.created == 2)
        #expect(staging.first?.success == true)
        let all = try await o.store.history(environment: nil, limit: 2)
        #expect(all.map(\.runID) == ["run2", "run1"])
        #expect(all.last?.success == false)
        await o.store.close()
    }

    @Test(arguments: Kind.allCases)
    func locksNameTheHolderFenceAfterForceUnlockAndFreeUpOnRelease(_ kind: Kind) async throws {
        let o = try await open(kind)
        let holder = o.store
        let info = LockInfo(environment: "staging", lockID: "abc123", user: "ci", host: "runner-1", pid: 4311, command: "credops apply", since: Date())
        try await holder.acquireLock(info, timeout: .seconds(1), shouldStop: { false })
        #expect(try await holder.locks().map(\.lockID) == ["abc123"])
        // A second store (another runner) cannot take it, and hears who holds it.
        let other = try await reopen(kind, o)
        let second = LockInfo(environment: "staging", lockID: "def456", user: "ci", host: "runner-2", pid: 7, command: "credops apply", since: Date())
        do {
            try await other.acquireLock(second, timeout: .milliseconds(300), shouldStop: { false })
            Issue.record("two holders of one lock")
        } catch let error as StateError {
            #expect("\(error)".contains("is locked by ci@runner-1 (pid 4311, lock abc123"))
        }
        // Force-unlock needs the exact id; then the old holder's writes are refused.
        await #expect(throws: StateError.self) { try await other.forceUnlock(environment: "staging", lockID: "abc") }
        try await other.forceUnlock(environment: "staging", lockID: "abc123")
        await #expect(throws: StateError.self) { try await holder.record(Self.credential("staging", "p", "u")) }
        try await other.acquireLock(second, timeout: .seconds(5), shouldStop: { false })
        try await other.record(Self.credential("staging", "p", "u"))
        await other.releaseLock(environment: "staging")
        #expect(try await other.locks().isEmpty)
        await other.close()
        await holder.close()
    }

    /// The same database, opened again as another runner would.
    func reopen(_ kind: Kind, _ o: Opened) async throws -> any StateStore {
        switch kind {
        case .sqlite: return try await SQLiteStateStore.open(path: o.dir.url(".credops/state.db"))
        case .postgres: return try await PostgresStateStore.open((o.store as! PostgresStateStore).location)
        }
    }

    @Test(arguments: Kind.allCases)
    func intentsAreRecordedInBulkAndCompletedOneByOne(_ kind: Kind) async throws {
        let o = try await open(kind)
        let intents = (0..<2500).map { i in
            Intent(id: "run1-\(i)", environment: "e", namespace: "p", key: CredentialKey("u\(i)"), action: .create, runID: "run1",
                   secretFingerprint: Fingerprint(hex: "ab"), fieldsDigest: "d\(i)", grants: [AccessGrant(type: "API_PROXY", name: "A")],
                   createdAt: Date(timeIntervalSince1970: 1_800_000_000.125))
        }
        try await o.store.recordIntents(intents)
        #expect(try await o.store.pendingIntents(environment: "e").count == 2500)
        try await o.store.complete(intents[0], outcome: .record(Self.credential("e", "p", "u0")))
        try await o.store.complete(intents[1], outcome: .unchanged)
        let pending = try await o.store.pendingIntents(environment: "e")
        #expect(pending.count == 2498)
        #expect(pending.first { $0.id == "run1-2" } == intents[2])
        #expect(try await o.store.managedCredentials(environment: "e").map(\.key) == ["u0"])
        #expect(try await o.store.environments() == ["e"])
        await o.store.close()
    }

    /// Outcomes passed together (as apply settles interrupted runs' intents) land per
    /// environment, each under its own fence.
    @Test(arguments: Kind.allCases)
    func outcomesOfTwoEnvironmentsCompletedTogetherLandInTheirOwn(_ kind: Kind) async throws {
        let o = try await open(kind)
        let intents = ["e", "f"].flatMap { env in
            (0..<30).map { i in
                Intent(id: "run1-\(env)-\(i)", environment: EnvironmentName(env), namespace: "p", key: CredentialKey("u\(i)"),
                       action: .create, runID: "run1")
            }
        }
        try await o.store.recordIntents(intents.filter { $0.environment == "e" })
        try await o.store.recordIntents(intents.filter { $0.environment == "f" })
        try await o.store.complete(intents.map { intent in
            (intent, intent.key == "u7" ? .unchanged : .record(Self.credential(intent.environment.rawValue, "p", intent.key.rawValue)))
        })
        for env: EnvironmentName in ["e", "f"] {
            #expect(try await o.store.pendingIntents(environment: env).isEmpty)
            #expect(try await o.store.managedCredentials(environment: env).count == 29)
        }
        await o.store.close()
    }

    /// Thousands of operations completed at once land in group commits (PostgreSQL coalesces
    /// each commit's statements): the end state is the one-by-one one.
    @Test(arguments: Kind.allCases)
    func operationsCompletedAllAtOnceLeaveTheOneByOneState(_ kind: Kind) async throws {
        let o = try await open(kind)
        let store = o.store
        let n = 3000
        let intents = (0..<n).map { i in
            Intent(id: "run2-\(i)", environment: "e", namespace: "p", key: CredentialKey("u\(i)"), action: .create, runID: "run2",
                   secretFingerprint: nil, fieldsDigest: "d", grants: [], createdAt: Date(timeIntervalSince1970: 1_800_000_000))
        }
        // Those to forget are there first; every third is left as it is.
        for i in stride(from: 2, to: n, by: 3) { try await store.record(Self.credential("e", "p", "u\(i)")) }
        try await store.recordIntents(intents)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, intent) in intents.enumerated() {
                group.addTask {
                    switch i % 3 {
                    case 0: try await store.complete(intent, outcome: .record(Self.credential("e", "p", "u\(i)", fp: String(format: "%04x", i))))
                    case 1: try await store.complete(intent, outcome: .unchanged)
                    default: try await store.complete(intent, outcome: .forget)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.pendingIntents(environment: "e").isEmpty)
        let managed = try await store.managedCredentials(environment: "e")
        #expect(Set(managed.map(\.key.rawValue)) == Set(stride(from: 0, to: n, by: 3).map { "u\($0)" }))
        #expect(managed.allSatisfy { $0.secretFingerprint?.hex == String(format: "%04x", Int($0.key.rawValue.dropFirst())!) })
        await store.close()
    }

    /// A PostgreSQL group commit's statements, coalesced: a key's last upsert of a run wins, a
    /// forget between two upserts keeps its place, completed intents go last in one statement.
    @Test func aGroupCommitCoalescesWithoutReordering() {
        func upsert(_ user: String, _ fp: String) -> (String, [StateCoding.Value?]) {
            (StateSchema.upsertManaged, StateCoding.managedValues(Self.credential("e", "p", user, fp: fp)))
        }
        func done(_ id: String) -> (String, [StateCoding.Value?]) { (StateSchema.deleteIntent, [.text(id)]) }
        let forget = PostgresStateStore.deleteManaged("e", "p", "b")
        let out = PostgresStateStore.coalesced([upsert("a", "01"), done("i1"), upsert("b", "02"), done("i2"), upsert("a", "03"), forget,
                                                upsert("b", "04"), done("i3")])
        #expect(out.count == 4)
        #expect(out[0].0 == StateSchema.upsertManaged(rows: 2))
        #expect(out[0].1 == upsert("b", "02").1 + upsert("a", "03").1)
        #expect(out[1].0 == forget.0 && out[1].1 == forget.1)
        #expect(out[2].0 == StateSchema.upsertManaged && out[2].1 == upsert("b", "04").1)
        #expect(out[3].0 == "DELETE FROM intents WHERE intent_id IN (?, ?, ?)" && out[3].1 == [.text("i1"), .text("i2"), .text("i3")])
    }

    /// Grant lists are written without JSONEncoder: what it wrote and what is written now read
    /// back alike, whatever the names hold.
    @Test func grantListsReadBackWhateverTheNames() throws {
        let names = ["PaymentAPI", "a/b", "quote\"d", "back\\slash", "tab\there", "bell\u{07}", "del\u{7F}", "ünïcödé 🎉", ""]
        let grants = names.map { AccessGrant(type: "API_PROXY", name: $0) } + [AccessGrant(type: "API_PROXY_GROUP", name: "g")]
        let written = StateCoding.encodeGrants(grants.reversed())
        #expect(StateCoding.decodeGrants(written) == grants.sorted())
        let byEncoder = String(decoding: try JSONEncoder.sorted.encode(grants.sorted()), as: UTF8.self)
        #expect(StateCoding.decodeGrants(byEncoder) == grants.sorted())
        let plain = [AccessGrant(type: "API_PROXY", name: "PaymentAPI"), AccessGrant(type: "API_PROXY_GROUP", name: "Core")]
        #expect(StateCoding.encodeGrants(plain) == String(decoding: try JSONEncoder.sorted.encode(plain.sorted()), as: UTF8.self))
        #expect(StateCoding.encodeGrants([]) == "[]" && StateCoding.decodeGrants("[]").isEmpty)
    }

    @Test func sqliteFilesArePrivateAndTheDatabaseIsDurable() async throws {
        let o = try await open(.sqlite)
        for i in 0..<20 { try await o.store.record(Self.credential("e", "p", "u\(i)")) }
        let db = o.dir.url(".credops/state.db")
        for file in [db, db + "-wal", db + "-shm"] where FileManager.default.fileExists(atPath: file) {
            let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o600, "\(file)")
        }
        let dirMode = (try FileManager.default.attributesOfItem(atPath: o.dir.url(".credops"))[.posixPermissions] as? NSNumber)?.intValue
        #expect(dirMode == 0o700)
        let sqlite = try #require(o.store as? SQLiteStateStore)
        var settings = try await sqlite.settings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)  // FULL
        // An outcome commits without waiting for the disk (its intent covers it); the
        // connection is back at FULL for the next durable write.
        let intent = Intent(id: "run1-x", environment: "e", namespace: "p", key: "u0", action: .create, runID: "run1")
        try await o.store.recordIntents([intent])
        try await o.store.complete(intent, outcome: .record(Self.credential("e", "p", "u0")))
        settings = try await sqlite.settings()
        #expect(settings.synchronous == 2)
        #expect(try await o.store.pendingIntents(environment: "e").isEmpty)
        await o.store.close()
        // Reopening keeps everything (and migrating twice is harmless).
        let again = try await SQLiteStateStore.open(path: db)
        #expect(try await again.managedCredentials(environment: "e").count == 20)
        await again.close()
    }
}

@Suite struct StateKeyTests {
    @Test func keyFileIsCreatedPrivateWith32RandomBytesAndReused() throws {
        let dir = TemporaryDirectory()
        let path = dir.url(".credops/state.key")
        let first = try StateKey.load(environment: [:], keyFile: path, createIfMissing: true)
        #expect(first.byteCount == 32)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let second = try StateKey.load(environment: [:], keyFile: path, createIfMissing: true)
        let secret = Secret("same-password")
        #expect(secret.fingerprint(key: first, context: "c") == secret.fingerprint(key: second, context: "c"))
    }

    @Test func environmentKeyWinsAndMustBeLongEnough() throws {
        let hex = String(repeating: "ab", count: 32)
        let key = try StateKey.load(environment: ["CREDOPS_STATE_KEY": hex], keyFile: "/nonexistent/key", createIfMissing: false)
        #expect(key.byteCount == 32)
        #expect(throws: StateKey.Failure.self) {
            _ = try StateKey.load(environment: ["CREDOPS_STATE_KEY": "short"], keyFile: "/nonexistent/key", createIfMissing: false)
        }
    }

    @Test func readableByOthersKeyFileIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("state.key", data: Data(repeating: 1, count: 32))
        chmod(path, 0o644)
        #expect(throws: StateKey.Failure.self) { _ = try StateKey.load(environment: [:], keyFile: path, createIfMissing: true) }
    }

    @Test func samePasswordGivesDifferentFingerprintsUnderDifferentKeysAndContexts() {
        let a = FingerprintKey.random(), b = FingerprintKey.random()
        let secret = Secret("hunter2")
        #expect(secret.fingerprint(key: a, context: "e/p/u") != secret.fingerprint(key: b, context: "e/p/u"))
        #expect(secret.fingerprint(key: a, context: "e/p/u") != secret.fingerprint(key: a, context: "e/p/v"))
    }

    @Test func secretsNeverPrint() {
        let secret = Secret("very-secret-value")
        #expect("\(secret)" == "(sensitive)")
        var dumped = ""
        dump(secret, to: &dumped)
        #expect(!dumped.contains("very-secret-value"))
        #expect(String(reflecting: secret) == "(sensitive)")
        #expect("\(FingerprintKey.random())" == "(sensitive)")
    }
}

@Suite struct RedactorTests {
    @Test func jsonValuesOfSensitiveKeysAreRedactedWhateverTheyAre() {
        let text = #"Invalid body {"username":"u","password":"p@ss w0rd","client_secret": "cs-1"}"#
        #expect(Redactor().serverText(text) == #"Invalid body {"username":"u","password":"(redacted)","client_secret": "(redacted)"}"#)
    }

    @Test func formValuesAreRedacted() {
        #expect(Redactor().serverText("grant_type=client_credentials&client_secret=abc123&x=1") == "grant_type=client_credentials&client_secret=(redacted)&x=1")
    }

    @Test func knownLongSecretsAreRedactedAnywhere() {
        #expect(Redactor(secrets: [Secret("Sup3rSecret")]).redact("password Sup3rSecret is too weak") == "password (redacted) is too weak")
    }

    @Test func shortSecretsDoNotCorruptUnrelatedText() {
        #expect(Redactor(secrets: [Secret("1")]).redact("1 of 2 failed at line 1") == "1 of 2 failed at line 1")
    }
}
