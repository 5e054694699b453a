import Foundation

/// Writes operations' outcomes to state behind the operations, so that a durable commit never
/// sits between two requests: each credential's writes stay in order (a chain per credential),
/// different credentials' writes share group commits, and `drain()` waits for all of them.
///
/// Invariant: `tails`, `failures` and `firstFailure` are touched only with `lock` held.
final class OutcomeWriter: @unchecked Sendable {
    private let store: any StateStore
    private let lock = NSLock()
    private var tails: [String: Task<Void, Never>] = [:]
    private var failures: [String: String] = [:]
    private var firstFailure: String?
    /// Where the writing tasks run: the environment's HTTP thread, so that a write costs no
    /// wake-up of another thread to start it.
    private let executor: (any TaskExecutor)?

    init(store: any StateStore, executor: (any TaskExecutor)? = nil) {
        self.store = store
        self.executor = executor
    }

    /// The first write that failed, if any (then no new operation should start).
    var failure: String? { lock.withLock { firstFailure } }

    /// Completes `intent` with `outcome` after the credential's earlier writes.
    func submit(_ intent: Intent, _ outcome: StateOutcome, key: String) {
        chain(key: key, id: intent.id) { store in try await store.complete(intent, outcome: outcome) }
    }

    /// Records a state-only change (adopt) after the credential's earlier writes.
    func submit(record: ManagedCredential, key: String) {
        chain(key: key, id: nil) { store in try await store.record(record) }
    }

    /// Records `record` after the credential's earlier writes and returns once it is stored:
    /// for a write that must be durable before the next step (a secret about to leave).
    func recordNow(_ record: ManagedCredential, key: String) async throws {
        let store = self.store
        let write: Task<Result<Void, any Error>, Never> = lock.withLock {
            let previous = tails[key]
            let task = Task(executorPreference: executor) { () -> Result<Void, any Error> in
                await previous?.value
                do {
                    try await store.record(record)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            tails[key] = Task(executorPreference: executor) { _ = await task.value }
            return task
        }
        try await write.value.get()
    }

    private func chain(key: String, id: String?, _ write: @escaping @Sendable (any StateStore) async throws -> Void) {
        let store = self.store
        lock.withLock {
            let previous = tails[key]
            tails[key] = Task(executorPreference: executor) {
                await previous?.value
                do {
                    try await write(store)
                } catch {
                    self.recordFailure(id: id, "\(error)")
                }
            }
        }
    }

    private func recordFailure(id: String?, _ message: String) {
        lock.withLock {
            if firstFailure == nil { firstFailure = message }
            if let id { failures[id] = message }
        }
    }

    /// Waits for every write; returns the failed ones by intent id.
    func drain() async -> [String: String] {
        let pending = lock.withLock { Array(tails.values) }
        for task in pending { await task.value }
        return lock.withLock { failures }
    }
}
