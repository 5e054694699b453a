import Synchronization

/// Bounded concurrency: at most `limit` calls in flight, results in input order.
public enum Concurrently {
    /// How many calls to keep going for `workers` HTTP workers: twice as many, so that a worker
    /// that finishes a request finds the next one already queued and starts it at once, instead
    /// of sleeping until the finished call's task has run and sent another. The worker count
    /// still caps the requests in flight.
    public static func pipelined(_ workers: Int) -> Int { max(1, workers) * 2 }

    /// Maps `items` with at most `limit` calls in flight; the first error stops the rest.
    ///
    /// `limit` long-lived tasks each take the next item as soon as they are free, so a finished
    /// call starts the next one at once, without a round trip through a coordinating task (on a
    /// two-thread cooperative pool, that round trip delayed every next request).
    public static func map<T: Sendable, R: Sendable, E: Error>(
        _ items: [T], limit: Int, _ transform: @escaping @Sendable (T) async throws(E) -> R
    ) async throws(E) -> [R] {
        guard !items.isEmpty else { return [] }
        let shared = Shared<R, E>(count: items.count)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<min(max(1, limit), items.count) {
                group.addTask {
                    while let i = shared.takeNext() {
                        do throws(E) {
                            shared.store(try await transform(items[i]), at: i)
                        } catch {
                            shared.fail(error)
                            return
                        }
                    }
                }
            }
        }
        return try shared.result()
    }

    /// Calls `body` for each of `items` with at most `limit` calls in flight, as `map` does,
    /// keeping no results: for work that stores its own as it goes.
    public static func forEach<T: Sendable>(_ items: [T], limit: Int, _ body: @escaping @Sendable (T) async -> Void) async {
        _ = await map(items, limit: limit) { (item: T) async -> Bool in
            await body(item)
            return true
        }
    }

    /// The next index, the results and the first error, behind one lock.
    private final class Shared<R: Sendable, E: Error>: Sendable {
        private struct State {
            var next = 0
            var results: [R?]
            var error: E?
        }

        private let state: Mutex<State>
        private let count: Int

        init(count: Int) {
            self.count = count
            state = Mutex(State(results: [R?](repeating: nil, count: count)))
        }

        func takeNext() -> Int? {
            state.withLock { s in
                guard s.error == nil, s.next < count else { return nil }
                defer { s.next += 1 }
                return s.next
            }
        }

        func store(_ value: R, at i: Int) { state.withLock { $0.results[i] = value } }

        func fail(_ error: E) { state.withLock { if $0.error == nil { $0.error = error } } }

        func result() throws(E) -> [R] {
            let (results, error) = state.withLock { ($0.results, $0.error) }
            if let error { throw error }
            return results.map { $0! }
        }
    }
}
