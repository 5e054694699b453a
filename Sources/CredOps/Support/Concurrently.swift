/// Bounded concurrency helpers: at most `limit` tasks at once, results in input order.
public enum Concurrently {
    /// Maps `items` with at most `limit` calls in flight; the first error cancels the rest.
    public static func map<T: Sendable, R: Sendable, E: Error>(
        _ items: [T], limit: Int, _ transform: @escaping @Sendable (T) async throws(E) -> R
    ) async throws(E) -> [R] {
        guard !items.isEmpty else { return [] }
        let result: Result<[R], E> = await withTaskGroup(of: (Int, Result<R, E>).self) { group in
            var results = [R?](repeating: nil, count: items.count)
            var next = 0
            func start() {
                let i = next
                next += 1
                group.addTask {
                    do throws(E) { return (i, .success(try await transform(items[i]))) } catch { return (i, .failure(error)) }
                }
            }
            for _ in 0..<min(max(1, limit), items.count) { start() }
            while let (i, outcome) = await group.next() {
                switch outcome {
                case .success(let value):
                    results[i] = value
                    if next < items.count { start() }
                case .failure(let error):
                    group.cancelAll()
                    return .failure(error)
                }
            }
            return .success(results.map { $0! })
        }
        return try result.get()
    }
}
