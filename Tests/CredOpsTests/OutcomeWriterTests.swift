@testable import CredOps
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// The writer behind apply's operations, against a real SQLite store.
@Suite struct OutcomeWriterTests {
    static func record(_ user: String, fp: String) -> ManagedCredential {
        ManagedCredential(environment: "e", namespace: "p", key: CredentialKey(user), secretFingerprint: Fingerprint(hex: fp),
                          grants: [], lastAction: "update", lastRunID: "run1", lastChangedAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    static func intents(_ count: Int, step: Int) -> [Intent] {
        (0..<count).map { Intent(id: "run1-\(step)-\($0)", environment: "e", namespace: "p", key: CredentialKey("u\($0)"), action: .update, runID: "run1") }
    }

    /// Each credential's writes land in the order they were submitted, whichever batch they
    /// fall in; a record someone awaits is stored when the await returns.
    @Test func writesLandInSubmissionOrderAndAnAwaitedRecordIsStoredWhenItReturns() async throws {
        let dir = TemporaryDirectory()
        let store = try await SQLiteStateStore.open(path: dir.url(".credops/state.db"))
        let writer = OutcomeWriter(store: store)
        let steps = 4
        let all = (0..<steps).map { Self.intents(300, step: $0) }
        try await store.recordIntents(all.flatMap { $0 })
        for step in 0..<steps {
            for intent in all[step] { writer.submit(intent, .record(Self.record(intent.key.rawValue, fp: "0\(step)"))) }
            // Spread over several gathering windows.
            try await Task.sleep(for: .milliseconds(7))
        }
        try await writer.recordNow(Self.record("u0", fp: "ff"))
        #expect(try await store.managedCredentials(environment: "e").first { $0.key == "u0" }?.secretFingerprint == Fingerprint(hex: "ff"))
        writer.submit(record: Self.record("u1", fp: "ee"))
        let failures = await writer.drain()
        #expect(failures.isEmpty)
        let stored = Dictionary(uniqueKeysWithValues: try await store.managedCredentials(environment: "e").map { ($0.key.rawValue, $0) })
        #expect(stored.count == 300)
        #expect(stored["u0"]?.secretFingerprint == Fingerprint(hex: "ff"))
        #expect(stored["u1"]?.secretFingerprint == Fingerprint(hex: "ee"))
        #expect(stored["u2"]?.secretFingerprint == Fingerprint(hex: "03"))
        #expect(stored["u299"]?.secretFingerprint == Fingerprint(hex: "03"))
        #expect(try await store.pendingIntents(environment: "e").isEmpty)
        await store.close()
    }

    /// Operations wait for room once the writer is `backlogLimit` writes behind, and go on as
    /// soon as it has taken them; with room, they do not wait at all.
    @Test(.timeLimit(.minutes(1))) func aWriterFarBehindMakesNewOperationsWaitUntilItCatchesUp() async throws {
        let dir = TemporaryDirectory()
        let store = try await SQLiteStateStore.open(path: dir.url(".credops/state.db"))
        let writer = OutcomeWriter(store: store)
        await writer.waitForRoom()
        let count = OutcomeWriter.backlogLimit * 3
        let intents = Self.intents(count, step: 0)
        try await store.recordIntents(intents)
        // The writer gathers 20 ms before its first take: these are all queued by then, unless
        // this thread is held up that long (then the test proves less, and still holds).
        for intent in intents { writer.submit(intent, .record(Self.record(intent.key.rawValue, fp: "01"))) }
        await writer.waitForRoom()
        #expect(writer.queued < OutcomeWriter.backlogLimit)
        #expect(await writer.drain().isEmpty)
        #expect(try await store.managedCredentials(environment: "e").count == count)
        #expect(try await store.pendingIntents(environment: "e").isEmpty)
        await store.close()
    }

    /// Outcomes a store refuses (the lock was taken away) are reported by intent, and stop new
    /// operations; a drain with nothing queued returns at once.
    @Test(.timeLimit(.minutes(1))) func refusedOutcomesAreReportedByIntent() async throws {
        let dir = TemporaryDirectory()
        let store = try await SQLiteStateStore.open(path: dir.url(".credops/state.db"))
        #expect(await OutcomeWriter(store: store).drain().isEmpty)
        let info = LockInfo(environment: "e", lockID: "abc123", user: "ci", host: "runner-1", pid: 1, command: "credops apply", since: Date())
        try await store.acquireLock(info, timeout: .seconds(5), shouldStop: { false })
        let intents = Self.intents(20, step: 0)
        try await store.recordIntents(intents)
        let other = try await SQLiteStateStore.open(path: dir.url(".credops/state.db"))
        try await other.forceUnlock(environment: "e", lockID: "abc123")
        let writer = OutcomeWriter(store: store)
        for intent in intents { writer.submit(intent, .unchanged) }
        let failures = await writer.drain()
        #expect(Set(failures.keys) == Set(intents.map(\.id)))
        #expect(writer.failure != nil)
        #expect(try await other.pendingIntents(environment: "e").count == 20)
        await other.close()
        await store.close()
    }
}
