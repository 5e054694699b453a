import Foundation

/// What the emulator answers to one request, before it becomes an HTTP response.
struct SandboxAnswer: Sendable {
    var status: Int
    var body: Data
    var headers: [(String, String)]
    /// True when the request changed the stored state (what `commitThenFailRate` needs to know).
    var committed: Bool

    init(status: Int, body: JSONValue, headers: [(String, String)] = [], committed: Bool = false) {
        self.init(status: status, data: body.serialized, headers: headers, committed: committed)
    }

    init(status: Int, data: Data, headers: [(String, String)] = [], committed: Bool = false) {
        self.status = status
        self.body = data
        self.headers = headers
        self.committed = committed
    }

    /// 200 with `body`.
    static func ok(_ body: JSONValue, committed: Bool = false) -> SandboxAnswer {
        SandboxAnswer(status: 200, body: body, committed: committed)
    }
}
