/// Why a request got no usable answer. Messages say what failed and where, and never hold a
/// header value or a request body.
public struct HTTPClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The URL cannot be used (malformed, unsupported scheme).
        case invalidURL
        /// Plain http to a non-loopback host without `allowInsecureHTTP`.
        case insecureURL
        case dnsFailure
        case connectFailed
        case connectTimeout
        /// Connected, but no complete answer before the deadline.
        case timeout
        /// Certificate or handshake problem; retrying cannot help.
        case tls
        /// The connection broke before a complete answer (reset, closed, truncated).
        case connectionDropped
        case responseTooLarge
        /// The request itself cannot be sent as it is (a header value with a line break).
        case invalidRequest
        case cancelled
        case other
    }

    public var kind: Kind
    /// `GET https://host/path` (no query, no headers).
    public var request: String
    public var message: String

    public init(_ kind: Kind, request: String, message: String) {
        self.kind = kind
        self.request = request
        self.message = message
    }

    /// True for failures where the request may never have reached the server or its answer
    /// was lost: a retry may succeed. TLS and URL problems are not retryable.
    public var isRetryable: Bool {
        switch kind {
        case .dnsFailure, .connectFailed, .connectTimeout, .timeout, .connectionDropped: true
        default: false
        }
    }

    /// True when the server may have received and acted on the request (its answer was lost).
    public var outcomeUnknown: Bool {
        switch kind {
        case .timeout, .connectionDropped, .cancelled, .responseTooLarge, .other: true
        default: false
        }
    }

    public var description: String { "\(request): \(message)" }
}
