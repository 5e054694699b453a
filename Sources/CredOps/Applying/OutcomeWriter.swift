import Foundation

/// Writes operations' outcomes to state behind the operations, so that a durable commit never
/// sits between two requests.
///
/// One writer task per environment takes everything submitted since its last write, in the
/// order it was submitted (so each credential's writes stay in order), and hands the outcomes
/// to the store together: one transaction for many. Before each batch it waits `gatherTime`
/// for company, since a commit costs about the same for one outcome as for fifty; it does not
/// wait once `drain()` has begun, or while a write someone awaits (`recordNow`) is queued.
///
/// A failed batch fails each of its outcomes: the store's errors (a lost lock, a full disk)
/// are not about one outcome. The next run settles those operations from their intents.
///
/// Invariant: `queue`, `running`, `urgent`, `draining`, `wake`, `idle`, `roomWaiters`,
/// `failures` and `firstFailure` are touched only with `lock` held.
final class OutcomeWriter: @unchecked Sendable {
    /// How long a batch may wait for company before it is written.
    static let gatherTime = Duration.milliseconds(20)

    /// Queued writes beyond which new operations wait for the writer (`waitForRoom`). A fast
    /// server answers quicker than state commits; unchecked, the queue held 9 MB of outcomes
    /// per environment in an apply of 10,000 credentials at 0 ms. Waiting costs no time
    /// overall: the apply ends only once every outcome is written anyway.
    static let backlogLimit = 1024

    private enum Item {
        case complete(Intent, StateOutcome)
        /// A record written durably; `waiter` is resumed once it is.
        case record(ManagedCredential, waiter: CheckedContinuation<Void, any Error>?)
    }

    private let store: any StateStore
    /// Where the writer task runs: the environment's HTTP thread, so that starting and
    /// resuming it wakes no other thread.
    private let executor: (any TaskExecutor)?
    private let lock = NSLock()
    private var queue: [Item] = []
    private var running = false
    private var urgent = false
    private var draining = false
    private var wake: CheckedContinuation<Void, Never>?
    private var idle: [CheckedContinuation<Void, Never>] = []
    private var roomWaiters: [CheckedContinuation<Void, Never>] = []
    private var failures: [String: String] = [:]
    private var firstFailure: String?

    init(store: any StateStore, executor: (any TaskExecutor)? = nil) {
        self.store = store
        self.executor = executor
    }

    /// The first write that failed, if any (then no new operation should start).
    var failure: String? { lock.withLock { firstFailure } }

    /// Completes `intent` with `outcome` after the writes submitted before it.
    func submit(_ intent: Intent, _ outcome: StateOutcome) {
        enqueue(.complete(intent, outcome), urgent: false)
    }

    /// Records a state-only change (adopt) after the writes submitted before it.
    func submit(record: ManagedCredential) {
        enqueue(.record(record, waiter: nil), urgent: false)
    }

    /// Records `record` after the writes submitted before it and returns once it is stored:
    /// for a write that must be durable before the next step (a secret about to leave).
    func recordNow(_ record: ManagedCredential) async throws {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            enqueue(.record(record, waiter: waiter), urgent: true)
        }
    }

    /// Writes queued and not yet taken by the writer.
    var queued: Int { lock.withLock { queue.count } }

    /// Returns once fewer than `backlogLimit` writes are queued: called before an operation
    /// starts, so that the writes waiting for state stay bounded.
    func waitForRoom() async {
        guard lock.withLock({ queue.count >= Self.backlogLimit }) else { return }
        await withCheckedContinuation { (room: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                guard queue.count >= Self.backlogLimit else { return true }
                roomWaiters.append(room)
                return false
            }
            if now { room.resume() }
        }
    }

    /// Writes what is queued without gathering more, and waits for it; returns the failed
    /// outcomes by intent id.
    func drain() async -> [String: String] {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let (ready, woken) = lock.withLock { () -> (Bool, CheckedContinuation<Void, Never>?) in
                draining = true
                if !running { return (true, nil) }
                idle.append(done)
                defer { wake = nil }
                return (false, wake)
            }
            woken?.resume()
            if ready { done.resume() }
        }
        return lock.withLock { failures }
    }

    private func enqueue(_ item: Item, urgent isUrgent: Bool) {
        let (start, woken) = lock.withLock { () -> (Bool, CheckedContinuation<Void, Never>?) in
            queue.append(item)
            var woken: CheckedContinuation<Void, Never>?
            if isUrgent {
                urgent = true
                woken = wake
                wake = nil
            }
            if running { return (false, woken) }
            running = true
            return (true, woken)
        }
        woken?.resume()
        if start { Task(executorPreference: executor) { await self.run() } }
    }

    private func run() async {
        while true {
            await gather()
            let (items, room) = lock.withLock { () -> ([Item], [CheckedContinuation<Void, Never>]) in
                // Moved out, not copied: emptying a shared array "keeping capacity" would
                // allocate a second one of the largest batch's size.
                var taken: [Item] = []
                swap(&taken, &queue)
                urgent = false
                defer { roomWaiters.removeAll() }
                return (taken, roomWaiters)
            }
            for waiter in room { waiter.resume() }
            if items.isEmpty {
                let waiting = lock.withLock { () -> [CheckedContinuation<Void, Never>]? in
                    // Something may have come in since the take: write it first.
                    guard queue.isEmpty else { return nil }
                    running = false
                    defer { idle.removeAll() }
                    return idle
                }
                guard let waiting else { continue }
                for done in waiting { done.resume() }
                return
            }
            await write(items)
        }
    }

    /// Waits up to `gatherTime` for more writes, unless one is awaited or a drain began.
    private func gather() async {
        await withCheckedContinuation { (woken: CheckedContinuation<Void, Never>) in
            let waits = lock.withLock { () -> Bool in
                // Not while operations wait for room either: they wait for this batch.
                guard !urgent, !draining, !queue.isEmpty, queue.count < Self.backlogLimit else { return false }
                wake = woken
                return true
            }
            guard waits else { return woken.resume() }
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(Self.gatherTime.milliseconds))) { [self] in
                // A wake-up meant for an earlier wait finds nothing or ends this one early:
                // either is harmless.
                let pending = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                    defer { wake = nil }
                    return wake
                }
                pending?.resume()
            }
        }
    }

    /// Writes `items` in order: runs of outcomes as one call, records one by one.
    private func write(_ items: [Item]) async {
        var outcomes: [(intent: Intent, outcome: StateOutcome)] = []
        func writeOutcomes() async {
            guard !outcomes.isEmpty else { return }
            do {
                try await store.complete(outcomes)
            } catch {
                for (intent, _) in outcomes { recordFailure(id: intent.id, "\(error)") }
            }
            outcomes.removeAll()
        }
        for item in items {
            switch item {
            case .complete(let intent, let outcome):
                outcomes.append((intent, outcome))
            case .record(let record, let waiter):
                await writeOutcomes()
                do {
                    try await store.record(record)
                    waiter?.resume()
                } catch {
                    recordFailure(id: nil, "\(error)")
                    waiter?.resume(throwing: error)
                }
            }
        }
        await writeOutcomes()
    }

    private func recordFailure(id: String?, _ message: String) {
        lock.withLock {
            if firstFailure == nil { firstFailure = message }
            if let id { failures[id] = message }
        }
    }
}
