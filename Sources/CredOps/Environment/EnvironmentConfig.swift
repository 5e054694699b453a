/// One target server and how to reach it, from `environments/NAME.yaml`.
public struct EnvironmentConfig: Sendable {
    public var name: EnvironmentName
    public var file: String
    public var location: SourceLocation
    public var provider: String
    public var endpoint: Endpoint
    public var endpointLocation: SourceLocation
    public var auth: AuthConfig?
    /// Manifest project name → the project's name on this server.
    public var projects: [ProjectName: ProjectName] = [:]
    /// Requests in flight to this environment at most.
    public var concurrency: Int = 8
    public var timeoutSeconds: Int = 30
    public var connectTimeoutSeconds: Int = 10
    /// Apply needs `--confirm-environment NAME`, and deletes need `--allow-delete`.
    public var isProtected = false
    public var tls = TLSSettings()
    public var allowInsecureHTTP = false
    public var retry = RetrySettings()
    /// The `sandbox:` settings of a `sandbox://` environment, for its provider's emulator.
    public var emulator: EmulatorSettings?

    /// The name `project` has on this server (renamed by `projects:` or the same).
    public func serverProject(for project: ProjectName) -> ProjectName {
        projects[project] ?? project
    }

    public init(name: EnvironmentName, file: String, location: SourceLocation, provider: String,
                endpoint: Endpoint, endpointLocation: SourceLocation) {
        self.name = name
        self.file = file
        self.location = location
        self.provider = provider
        self.endpoint = endpoint
        self.endpointLocation = endpointLocation
    }
}

/// Where an environment's server is.
public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// A real server: `https://host[:port][/base]`, without a trailing slash.
    case url(String)
    /// The built-in emulator, started in-process: `sandbox://NAME`.
    case sandbox(String)

    public var description: String {
        switch self {
        case .url(let u): u
        case .sandbox(let n): "sandbox://\(n)"
        }
    }
}

/// How credops authenticates to an environment.
public enum AuthConfig: Sendable {
    /// A personal API access token sent as `Authorization: Bearer`.
    case bearer(SecretReference)
    /// The client-credentials token call; the token is cached and renewed. `tokenPath`
    /// overrides the provider's default; `body` is how the call sends the client's login (nil:
    /// the provider's default, form for most).
    case oauth2(clientID: SecretReference, clientSecret: SecretReference, tokenPath: String? = nil, body: TokenBodyFormat? = nil)
    /// HTTP Basic with a user name and a password.
    case basic(username: String, password: SecretReference)
    /// An API key sent as the HTTP Basic password with the fixed user `API` (LeadConduit;
    /// servers of this kind ignore the user name).
    case apiKey(SecretReference)
}

extension AuthConfig {
    /// The kind as files name it: `bearer`, `oauth2`, `basic` or `apiKey`.
    public var kind: String {
        switch self {
        case .bearer: "bearer"
        case .oauth2: "oauth2"
        case .basic: "basic"
        case .apiKey: "apiKey"
        }
    }

    /// Where the secret a server refused came from, for messages: `env LEADVIBE_TOKEN
    /// (environments/lv.yaml:3:28)`. For a client login, the client secret's source.
    public var secretSource: String {
        switch self {
        case .apiKey(let reference), .bearer(let reference), .basic(_, let reference), .oauth2(_, let reference, _, _):
            reference.description + (reference.location.map { " (\($0))" } ?? "")
        }
    }
}

/// How a client-credentials token call sends its fields.
public enum TokenBodyFormat: String, Sendable, Equatable, CaseIterable {
    /// `application/x-www-form-urlencoded` (RFC 6749; Apinizer).
    case form
    /// A JSON object (LeadExec-style APIs).
    case json
}

/// TLS settings; verification is on unless `insecureSkipVerify` says otherwise.
public struct TLSSettings: Sendable, Equatable {
    /// Extra CA certificates (PEM), resolved against the environment file's directory.
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var insecureSkipVerify = false

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, insecureSkipVerify: Bool = false) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.insecureSkipVerify = insecureSkipVerify
    }
}

/// How requests are retried; the defaults are RELIABILITY.md's.
public struct RetrySettings: Sendable, Equatable {
    public var maxRetries = 4
    public var initialBackoffMilliseconds = 200
    public var maxBackoffMilliseconds = 10_000
    /// `Retry-After` and `retry_after` are honoured up to this many seconds.
    public var retryAfterCapSeconds = 60
    /// The header that says how long to wait (a provider profile may name another).
    public var retryAfterHeader = "Retry-After"

    public init() {}
}
