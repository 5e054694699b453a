/// Counts of the API requests received (faulted ones included; `/__sandbox/` calls excluded).
struct RequestStats: Sendable {
    private(set) var total = 0
    private(set) var writes = 0
    private(set) var byRoute: [String: Int] = [:]
    private(set) var byMethod: [String: Int] = [:]

    /// Counts one request; `template` is its route (`GET /apiops/projects/{project}/credentials/`).
    mutating func record(method: String, template: String, isWrite: Bool) {
        total += 1
        if isWrite { writes += 1 }
        byRoute[template, default: 0] += 1
        byMethod[method, default: 0] += 1
    }

    /// `{"total", "byRoute", "byMethod", "writes"}`, maps sorted by key.
    var json: JSONValue {
        func map(_ counts: [String: Int]) -> JSONValue {
            .object(JSONObject(counts.sorted { $0.key < $1.key }.map { (key: $0.key, value: JSONValue.int($0.value)) }))
        }
        return .object(JSONObject([
            (key: "total", value: .int(total)),
            (key: "byRoute", value: map(byRoute)),
            (key: "byMethod", value: map(byMethod)),
            (key: "writes", value: .int(writes)),
        ]))
    }
}
