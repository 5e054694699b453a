/// A provider call that did not succeed, with enough to tell the user where and why.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No usable answer (network, TLS, timeout...).
        case transport(HTTPClientError.Kind)
        /// The server answered with an error status.
        case server(status: Int, code: String)
        /// The server stored the change but at least one gateway did not take it.
        case gatewayFailed(gateways: [String])
        /// The answer could not be understood.
        case badAnswer
        /// Authentication failed (bad token or login).
        case authentication
        case cancelled
    }

    public var kind: Kind
    /// `PUT /apiops/projects/payments/credentials/`: method and path, never a body or header.
    public var request: String
    /// What went wrong, already redacted.
    public var message: String
    /// True when the server may have applied the change even though we saw a failure
    /// (a lost answer, or a gateway failure after the manager stored it).
    public var outcomeUnknown: Bool

    public init(_ kind: Kind, request: String, message: String, outcomeUnknown: Bool = false) {
        self.kind = kind
        self.request = request
        self.message = message
        self.outcomeUnknown = outcomeUnknown
    }

    /// `PUT /apiops/... → 400 bad_request: Credential role (X) was not found!`
    public var description: String { "\(request) → \(message)" }

    /// The HTTP status, when the server answered.
    public var status: Int? {
        if case .server(let status, _) = kind { return status }
        return nil
    }

    /// True when the same request may well succeed a little later: no answer (a network
    /// failure or timeout), a rate limit, or a server error.
    public var isTransient: Bool {
        switch kind {
        case .transport(let kind): HTTPClientError(kind, request: request, message: message).isRetryable
        case .server(let status, _): status == 429 || (500...599).contains(status)
        default: false
        }
    }

    /// True when the change is known to be stored on the manager.
    public var isStoredButNotDeployed: Bool {
        if case .gatewayFailed = kind { return true }
        return false
    }
}

/// What a session sent, by kind.
public struct RequestStatistics: Sendable, Equatable {
    public var reads = 0
    public var writes = 0
    public var retries = 0
    public var authentications = 0

    public init() {}

    public var total: Int { reads + writes + authentications }

    public static func + (a: RequestStatistics, b: RequestStatistics) -> RequestStatistics {
        var r = a
        r.reads += b.reads
        r.writes += b.writes
        r.retries += b.retries
        r.authentications += b.authentications
        return r
    }
}
