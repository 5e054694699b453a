import Foundation
import Synchronization

/// The `Authorization` header of every request to one environment, for any provider: a
/// bearer token as given, HTTP Basic (a login, or an API key with a fixed user), or OAuth2
/// client-credentials tokens fetched from the provider's token path (or the environment's
/// `tokenPath`) with a form or JSON body, cached and renewed before `expires_in` runs out (and
/// once more when a request is answered 401). Concurrent callers share one token call.
public final class Authenticator: Sendable {
    private struct Cached: Sendable {
        var token: Secret
        var renewAt: ContinuousClock.Instant
    }

    private enum State: Sendable {
        case empty
        case fetching(Task<Cached, any Error>)
        case ready(Cached)
    }

    private let connection: Connection
    private let http: HTTPClient
    private let policy: RetryPolicy
    private let defaultTokenPath: String
    private let defaultTokenBody: TokenBodyFormat
    private let state = Mutex(State.empty)
    private let count = Mutex(0)

    /// - Parameters:
    ///   - defaultTokenPath: the provider's token call, used unless the environment names one.
    ///   - defaultTokenBody: how the provider's token call takes the client's login, unless the
    ///     environment says.
    public init(connection: Connection, http: HTTPClient, policy: RetryPolicy, defaultTokenPath: String, defaultTokenBody: TokenBodyFormat = .form) {
        self.connection = connection
        self.http = http
        self.policy = policy
        self.defaultTokenPath = defaultTokenPath
        self.defaultTokenBody = defaultTokenBody
    }

    /// The header the credentials go in: `Authorization`, or the API's own key header.
    public var headerName: String {
        if case .header(let name, _) = connection.credentials { return name }
        return "Authorization"
    }

    /// True when a 401 can be cured by fetching a new token.
    public var canRenew: Bool {
        if case .clientCredentials = connection.credentials { return true }
        return false
    }

    /// Token calls made so far.
    public var authentications: Int { count.withLock { $0 } }

    /// The value of the `Authorization` header (or of `headerName`), and the secret it carries (to `invalidate` after a 401).
    public func authorization(request: String) async throws(ProviderError) -> (header: String, secret: Secret) {
        switch connection.credentials {
        case .bearer(let token):
            return ("Bearer " + token.reveal(), token)
        case .basic(let username, let password):
            // The one place a Basic password leaves its `Secret`: base64 in the header.
            let encoded = Data((username + ":" + password.reveal()).utf8).base64EncodedString()
            return ("Basic " + encoded, password)
        case .header(_, let value):
            return (value.reveal(), value)
        case .clientCredentials(let clientID, let clientSecret, let tokenPath, let format):
            let token = try await token(request: request, clientID: clientID, clientSecret: clientSecret,
                                        path: tokenPath ?? defaultTokenPath, format: format ?? defaultTokenBody)
            return ("Bearer " + token.reveal(), token)
        }
    }

    /// Forgets a token the server refused, so that the next call fetches a new one.
    public func invalidate(_ token: Secret) {
        state.withLock { state in
            if case .ready(let cached) = state, cached.token.constantTimeEquals(token) { state = .empty }
        }
    }

    private func token(request: String, clientID: Secret, clientSecret: Secret, path: String,
                       format: TokenBodyFormat) async throws(ProviderError) -> Secret {
        let task: Task<Cached, any Error> = state.withLock { state in
            switch state {
            case .ready(let cached) where ContinuousClock.now < cached.renewAt:
                return Task { cached }
            case .fetching(let task):
                return task
            default:
                let task = Task {
                    try await self.fetch(clientID: clientID, clientSecret: clientSecret, path: path, format: format)
                }
                state = .fetching(task)
                return task
            }
        }
        do {
            let cached = try await task.value
            state.withLock { state in
                if case .fetching = state { state = .ready(cached) }
            }
            return cached.token
        } catch {
            state.withLock { state in
                if case .fetching = state { state = .empty }
            }
            if let error = error as? ProviderError { throw error }
            throw ProviderError(.authentication, request: request, message: "could not get a token")
        }
    }

    private func fetch(clientID: Secret, clientSecret: Secret, path: String, format: TokenBodyFormat) async throws(ProviderError) -> Cached {
        let summary = "POST \(path)"
        count.withLock { $0 += 1 }
        // The one place the client secret leaves its `Secret`: the token call's body.
        let body: Data
        let contentType: String
        switch format {
        case .form:
            var form = URLComponents()
            form.queryItems = [
                URLQueryItem(name: "grant_type", value: "client_credentials"),
                URLQueryItem(name: "client_id", value: clientID.reveal()),
                URLQueryItem(name: "client_secret", value: clientSecret.reveal()),
            ]
            body = Data((form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B").utf8)
            contentType = "application/x-www-form-urlencoded"
        case .json:
            body = JSONWriter.object([
                ("client_id", .string(clientID.reveal())),
                ("client_secret", .string(clientSecret.reveal())),
                ("grant_type", .string("client_credentials")),
            ])
            contentType = "application/json"
        }
        let request = HTTPRequest(method: .post, url: connection.baseURL + path,
                                  headers: HTTPHeaders([("Content-Type", contentType), ("Accept", "application/json")]),
                                  body: body)
        let response: HTTPResponse
        do throws(HTTPClientError) {
            // Asking for a token twice is harmless, so this POST may be retried.
            response = try await http.send(request, policy: policy, idempotent: true).0
        } catch {
            throw ProviderError(.transport(error.kind), request: summary, message: error.message)
        }
        guard response.isSuccess else {
            let body = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            let redactor = connection.runSecrets.redactor.adding([clientSecret])
            let code = redactor.serverText(body?["error"] as? String ?? "error", limit: 100)
            let text = redactor.serverText(body?["error_description"] as? String ?? "")
            throw ProviderError(.authentication, request: summary,
                                message: "\(response.status) \(code): \(text); check auth.oauth2 clientId and clientSecret")
        }
        struct Answer: Decodable {
            var access_token: String
            var expires_in: Double?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: response.body), !answer.access_token.isEmpty else {
            throw ProviderError(.badAnswer, request: summary, message: "\(response.status) without an access_token")
        }
        // The token goes into every request's Authorization header: a line break in it would
        // start a header of the server's choosing.
        guard answer.access_token.utf8.allSatisfy({ $0 >= 32 && $0 != 127 }) else {
            throw ProviderError(.badAnswer, request: summary,
                                message: "\(response.status) with an access_token that holds a control character; refused (it cannot go into a header)")
        }
        // From now on every message, report and line of output is redacted of this token too.
        connection.runSecrets.add([Secret(answer.access_token)])
        // A lifetime a server cannot turn into a trap (1e300) or a token kept for ever.
        let given = answer.expires_in.flatMap { $0.isFinite ? $0 : nil } ?? 3600
        let ttl = min(max(1, given), 86_400 * 365)
        // Renew with a margin: a tenth of the lifetime, at least a second, at most a minute.
        let margin = min(60, max(1, ttl / 10))
        let renewAt = ContinuousClock.now + .milliseconds(Int64((ttl - margin) * 1000))
        return Cached(token: Secret(answer.access_token), renewAt: renewAt)
    }
}
