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
        /// The token call; `tokenPath` and `body` nil mean the provider's defaults.
        case clientCredentials(clientID: Secret, clientSecret: Secret, tokenPath: String? = nil, body: TokenBodyFormat? = nil)
        case basic(username: String, password: Secret)
        /// An API key in a header of the API's own (`X-API-Key: KEY`).
        case header(name: String, value: Secret)

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
    /// Fingerprints a secret a server returned in a read (namespace, key, secret), the same way
    /// the declared one is fingerprinted, so that the planner can compare the two without the
    /// secret leaving the provider. Set by the engine; nil where nothing is compared.
    public var fingerprintSecret: (@Sendable (ProjectName, CredentialKey, Secret) -> Fingerprint)?

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
        case .header(_, let value): [value]
        }
    }
}

/// Where a credential is on its server: its namespace, its declared key, and the id the
/// server gave it when the server assigns ids (nil when the key is the id, or before a create).
public struct CredentialAddress: Sendable, Hashable, CustomStringConvertible {
    /// The namespace as the server names it (a project; for an API without namespaces, the
    /// fixed name the environment maps every manifest to).
    public var namespace: ProjectName
    /// The declared key (`username`, `name`): how manifests and state name the credential.
    public var key: CredentialKey
    /// The server's id, when it is not the key.
    public var serverID: String?

    public init(namespace: ProjectName, key: CredentialKey, serverID: String? = nil) {
        self.namespace = namespace
        self.key = key
        self.serverID = serverID
    }

    /// The id to put in a request's path: the server's id when it has one, else the key.
    public var id: String { serverID ?? key.rawValue }

    /// `payments/alice` (`payments/alice (id 5f1c…)` when the server's id differs).
    public var description: String {
        let base = "\(namespace)/\(key)"
        guard let serverID, serverID != key.rawValue else { return base }
        return "\(base) (id \(serverID))"
    }
}

/// What a create brought back from the server.
public struct CreatedCredential: Sendable {
    /// The id the server assigned (nil when the key is the id).
    public var serverID: String?
    /// Read-only fields the server filled in (never compared, never sent).
    public var readOnly: [String: FieldValue]
    /// Secrets the server generated and shows once (a client secret): the engine hands them
    /// to their sink and redacts them everywhere; they are never stored.
    public var generated: [String: Secret]
    /// Public values that go to the sink with the generated secrets (`client_id`, the
    /// server's id under the API's own name), named as the API names them.
    public var delivered: [String: String]

    public init(serverID: String? = nil, readOnly: [String: FieldValue] = [:], generated: [String: Secret] = [:],
                delivered: [String: String] = [:]) {
        self.delivered = delivered
        self.serverID = serverID
        self.readOnly = readOnly
        self.generated = generated
    }
}

/// Calls on one environment's server. Every call is one request (plus authentication and
/// retries); errors name the request and what the server said, redacted.
///
/// A credential is addressed by `CredentialAddress`: the key it is declared by, plus the
/// server's id once known. What the server assigns at create comes back as a value; an update
/// receives the field changes as well as the whole desired credential, so that a provider can
/// send a full PUT, a PATCH of the changed fields, or one call per field.
public protocol ProviderSession: Sendable {
    /// Every live credential of a namespace (`Resource.serverID` set when the server assigns ids).
    func list(namespace: ProjectName) async throws(ProviderError) -> [Resource]
    /// The access grants of one credential (providers whose schema has grants).
    func grants(of credential: CredentialAddress) async throws(ProviderError) -> [AccessGrant]
    /// Creates `resource` in `namespace`, with the declared secret when the API takes one.
    func create(_ resource: Resource, in namespace: ProjectName, secret: Secret?) async throws(ProviderError) -> CreatedCredential
    /// Makes the credential hold `resource`'s fields; `changes` are the fields that differ from
    /// the live ones. `secret` is the declared secret when known (an API may need it with every
    /// update).
    func update(_ credential: CredentialAddress, to resource: Resource, changes: [FieldChange],
                secret: Secret?) async throws(ProviderError)
    func setSecret(_ credential: CredentialAddress, secret: Secret) async throws(ProviderError)
    func delete(_ credential: CredentialAddress) async throws(ProviderError)
    func grant(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError)
    func revoke(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError)
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

    /// Every provider, by name.
    public var all: [any Provider] { providers.keys.sorted().compactMap { providers[$0] } }

    /// This registry with `more` added (a name already here stays as it is).
    public func adding(_ more: [any Provider]) -> ProviderRegistry {
        var copy = self
        for p in more where copy.providers[p.name] == nil { copy.providers[p.name] = p }
        return copy
    }

    public var schemas: [String: ResourceSchema] { providers.mapValues(\.schema) }
}
