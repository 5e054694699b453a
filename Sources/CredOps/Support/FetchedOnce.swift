/// Values fetched once per key, however many calls want one at the same moment: the account's
/// units (one key) and each unit's cookie. A failed fetch is not kept; the next call tries again.
public actor FetchedOnce<Value: Sendable> {
    private var values: [String: Value] = [:]
    private var fetching: [String: Task<Result<Value, ProviderError>, Never>] = [:]

    public init() {}

    public func value(_ key: String = "", _ fetch: @escaping @Sendable () async throws(ProviderError) -> Value) async throws(ProviderError) -> Value {
        if let value = values[key] { return value }
        let task = fetching[key] ?? Task { () -> Result<Value, ProviderError> in
            do throws(ProviderError) { return .success(try await fetch()) } catch { return .failure(error) }
        }
        fetching[key] = task
        let result = await task.value
        fetching[key] = nil
        if case .success(let value) = result { values[key] = value }
        return try result.get()
    }

    /// Drops the value of `key` when `stale` says it is the one that stopped working (unless
    /// another call already replaced it).
    public func forget(_ key: String, if stale: (Value) -> Bool) {
        if let value = values[key], stale(value) { values[key] = nil }
    }
}
