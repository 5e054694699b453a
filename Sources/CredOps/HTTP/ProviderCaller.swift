import Foundation
import Synchronization

/// The part of every provider's API call that is not the provider's: the auth header (bearer,
/// Basic, API key, OAuth2 client credentials), retries by the shared policy (giving up once the
/// run is asked to stop), one token renewal on a 401 when the token can be renewed, request
/// counts, and transport failures as `ProviderError`s. A provider keeps only its wire mapping:
/// paths, bodies, and what its error answers mean.
public final class ProviderCaller: Sendable {
    public let connection: Connection
    public let auth: Authenticator
    private let http: HTTPClient
    private let policy: RetryPolicy
    private let counters = Mutex(RequestStatistics())
    /// Set by the first 401 that a renewed token did not cure: the credentials are refused, and
    /// every later call of this session fails without being sent (a run of a thousand writes
    /// must not present a rotated key a thousand times and lock the account).
    private let refused = Mutex<HTTPResponse?>(nil)

    /// - Parameters:
    ///   - defaultTokenPath: the token call's path when the environment names none.
    ///   - defaultTokenBody: how the token call sends the client's login when the environment does not say.
    public init(connection: Connection, http: HTTPClient, defaultTokenPath: String, defaultTokenBody: TokenBodyFormat = .form) {
        self.connection = connection
        self.http = http
        self.policy = RetryPolicy(settings: connection.retry)
        self.auth = Authenticator(connection: connection, http: http, policy: policy, defaultTokenPath: defaultTokenPath,
                                  defaultTokenBody: defaultTokenBody)
    }

    /// What was sent so far, token calls included.
    public var statistics: RequestStatistics {
        var stats = counters.withLock { $0 }
        stats.authentications = auth.authentications
        return stats
    }

    /// Sends `method path` to the environment (JSON in and out) and returns the answer,
    /// whatever its status: the provider decides what a status means.
    ///
    /// - Throws: `ProviderError` when no answer came (`outcomeUnknown` for a write whose answer
    ///   was lost), or when authentication itself failed.
    /// - Parameter headers: more header fields for this request (a session cookie).
    public func send(_ method: HTTPMethod, _ path: String, body: Data? = nil, headers extra: [(String, String)] = []) async throws(ProviderError) -> HTTPResponse {
        let summary = "\(method.rawValue) \(path)"
        // The refusal stands for the rest of the session; nothing is sent.
        if let answer = refused.withLock({ $0 }) { return answer }
        var renewed = false
        while true {
            let (authorization, token) = try await auth.authorization(request: summary)
            var headers = HTTPHeaders([("Accept", "application/json")])
            headers.add(auth.headerName, authorization)
            if body != nil { headers.add("Content-Type", "application/json") }
            for (name, value) in extra { headers.add(name, value) }
            let request = HTTPRequest(method: method, url: connection.baseURL + path, headers: headers, body: body)
            let response: HTTPResponse
            do throws(HTTPClientError) {
                let stop = connection.stop
                let (answer, retries) = try await http.send(request, policy: policy, giveUp: { stop?.isRequested ?? false })
                response = answer
                counters.withLock {
                    if method == .get { $0.reads += 1 + retries } else { $0.writes += 1 + retries }
                    $0.retries += retries
                }
            } catch {
                counters.withLock { if method == .get { $0.reads += 1 } else { $0.writes += 1 } }
                throw ProviderError(error.kind == .cancelled ? .cancelled : .transport(error.kind), request: summary,
                                    message: error.message, outcomeUnknown: method != .get && error.outcomeUnknown)
            }
            // An expired token is renewed once; a refused API key or login is final.
            if response.status == 401, auth.canRenew, !renewed {
                renewed = true
                auth.invalidate(token)
                continue
            }
            if response.status == 401 { refused.withLock { if $0 == nil { $0 = response } } }
            return response
        }
    }

    /// Sends `method path` and returns the answer when it is a success. A redirect is an error
    /// the same way for every API (never followed; where it pointed, redacted); any other
    /// status is the provider's to word: `failure(answer, "METHOD path")`.
    ///
    /// - Parameter secrets: the secrets this request carries, redacted from whatever the
    ///   server says back.
    public func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, secrets: [Secret] = [], headers: [(String, String)] = [],
                     failure: (HTTPResponse, String) -> ProviderError) async throws(ProviderError) -> HTTPResponse {
        try checked(try await send(method, path, body: body, headers: headers), method, path, secrets: secrets, failure: failure)
    }

    /// `response` when it is a success; otherwise the error `call` would throw for it (for a
    /// provider that looked at the answer first, e.g. to renew a session and send again).
    public func checked(_ response: HTTPResponse, _ method: HTTPMethod, _ path: String, secrets: [Secret] = [],
                        failure: (HTTPResponse, String) -> ProviderError) throws(ProviderError) -> HTTPResponse {
        if response.isSuccess { return response }
        let summary = "\(method.rawValue) \(path)"
        if (300..<400).contains(response.status) {
            let location = response.headers["Location"].map { " to \(serverText(URLParts.withoutQuery($0), extra: secrets, limit: 300))" } ?? ""
            throw ProviderError(.server(status: response.status, code: "redirect"), request: summary,
                                message: "\(response.status) redirect\(location); credops does not follow redirects: check the environment's url")
        }
        throw failure(response, summary)
    }

    /// The error for a refused call, in the words every provider uses: a 401 or 403 names the
    /// environment and where its credentials came from (`credentials`, "the token") and is not
    /// retried; a write answered with a 5xx may have been done (outcome unknown).
    ///
    /// - Parameters:
    ///   - said: what the answer says went wrong (raw server text; made safe here), if anything.
    ///   - refused: what to say after "and": who refused and what to do about it.
    public func failure(_ response: HTTPResponse, method: HTTPMethod, summary: String, said: String?, secrets: [Secret] = [],
                        environment: EnvironmentConfig, credentials: String, refused: String) -> ProviderError {
        let status = response.status
        let text = said.map { serverText($0, extra: secrets, limit: 500) }
        if status == 401 || status == 403 {
            let source = environment.auth?.secretSource ?? "the built-in sandbox's \(credentials)"
            return ProviderError(.authentication, request: summary,
                                 message: "\(status) \(text ?? "authentication failed"): environment \(environment.name) presented the \(credentials) from \(source), "
                                     + "and \(refused). Not retried.")
        }
        let unknown = method != .get && status >= 500
        let message = text.map { "\(status) \($0)" } ?? "\(status) (an answer without an error message: \(response.body.count) bytes)"
        return ProviderError(.server(status: status, code: ""), request: summary, message: message, outcomeUnknown: unknown)
    }

    /// Server-supplied text made safe for a message: control characters out, cut to `limit`,
    /// every secret of the run (and `extra`, the secrets of this request) out, in any encoding.
    public func serverText(_ text: String, extra: [Secret] = [], limit: Int = 2000) -> String {
        let redactor = extra.isEmpty ? connection.runSecrets.redactor : connection.runSecrets.redactor.adding(extra)
        return redactor.serverText(text, limit: limit)
    }
}
