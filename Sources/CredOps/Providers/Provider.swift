/// A kind of server API that holds credentials (Apinizer first).
///
/// A provider says what its credentials look like (`schema`) and opens sessions to
/// environments. The planner and the applier only ever see `ProviderSession`.
public protocol Provider: Sendable {
    /// The name used in manifests and environment files: `apinizer`.
    var name: String { get }
    var schema: ResourceSchema { get }

    /// A session to one environment, ready to authenticate on first use.
    ///
    /// - Parameters:
    ///   - environment: the environment file's settings.
    ///   - connection: where the server is and which credentials to present.
    ///   - http: the environment's HTTP client (its pool size is the environment's concurrency).
    func session(for environment: EnvironmentConfig, connection: Connection, http: HTTPClient) -> any ProviderSession
}

/// Where to reach an environment's server and how to authenticate, with secrets resolved.
public struct Connection: Sendable {
    public enum Credentials: Sendable {
        case bearer(Secret)
        /// The token call; `tokenPath` nil means the provider's default.
        case clientCredentials(clientID: Secret, clientSecret: Secret, tokenPath: String? = nil, body: TokenBodyFormat = .form)
        case basic(username: String, password: Secret)

        /// The user name an API key goes with as HTTP Basic.
        public static let apiKeyUser = "API"
    }

    /// The manager URL without a trailing slash (`https://host`, `http://127.0.0.1:PORT`).
    public var baseURL: String
    public var credentials: Credentials
    public var retry: RetrySettings
    /// When set and requested, retries stop waiting: the last answer stands.
    public var stop: StopSignal?
    /// Every secret of the run: a provider passes every piece of text a server sent (error
    /// codes and descriptions, field names, gateway names) through
    /// `runSecrets.redactor.serverText(_:)` before it goes into an error, and adds what it
    /// learns (an access token) with `runSecrets.add(_:)`.
    public var runSecrets: RunSecrets

    public init(baseURL: String, credentials: Credentials, retry: RetrySettings, stop: StopSignal? = nil, runSecrets: RunSecrets? = nil) {
        self.baseURL = baseURL
        self.credentials = credentials
        self.retry = retry
        self.stop = stop
        self.runSecrets = runSecrets ?? RunSecrets()
        self.runSecrets.add(secrets)
    }

    /// Every secret this connection holds, so that errors can be redacted of them. A client
    /// id is a login name, not a secret: redacting it (`payments`) would blank out every place
    /// that word appears.
    public var secrets: [Secret] {
        switch credentials {
        case .bearer(let token): [token]
        case .clientCredentials(_, let secret, _, _): [secret]
        case .basic(_, let password): [password]
        }
    }
}

/// Calls on one environment's server. Every call is one request (plus authentication and
/// retries); errors name the request and what the server said, redacted.
public protocol ProviderSession: Sendable {
    /// Every live credential of a project.
    func list(project: ProjectName) async throws(ProviderError) -> [Resource]
    /// The access grants of one credential.
    func grants(project: ProjectName, id: Username) async throws(ProviderError) -> [AccessGrant]
    func create(project: ProjectName, resource: Resource, secret: Secret) async throws(ProviderError)
    /// Replaces every field (the API needs the secret too).
    func update(project: ProjectName, resource: Resource, secret: Secret) async throws(ProviderError)
    func setSecret(project: ProjectName, id: Username, secret: Secret) async throws(ProviderError)
    func delete(project: ProjectName, id: Username) async throws(ProviderError)
    func grant(project: ProjectName, id: Username, grants: [AccessGrant]) async throws(ProviderError)
    func revoke(project: ProjectName, id: Username, grants: [AccessGrant]) async throws(ProviderError)
    /// Counts of what was sent, for reports and benchmarks.
    var statistics: RequestStatistics { get }
}

/// The providers a run knows, by name.
public struct ProviderRegistry: Sendable {
    private var providers: [String: any Provider] = [:]

    public init(_ providers: [any Provider]) {
        for p in providers { self.providers[p.name] = p }
    }

    public subscript(name: String) -> (any Provider)? { providers[name] }

    public var schemas: [String: ResourceSchema] { providers.mapValues(\.schema) }
}
