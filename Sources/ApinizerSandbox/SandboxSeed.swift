/// Seed data of a sandbox: the catalog (projects, roles, API proxies and groups, gateway
/// environments), who may call it (bearer tokens, client-credentials logins) and credentials that
/// exist before any client call (as if made out of band).
///
/// Read from YAML (`sandbox serve --seed`, `sandbox:` in an environment file) or JSON (the data
/// file, `POST /__sandbox/seed`) with the keys of PRODUCT.md. A key left out takes its value
/// from `SandboxSeed.default`; an unknown key is an error.
public struct SandboxSeed: Sendable, Codable, Equatable {
    /// Project names. `admin` (the global project) always exists, listed or not.
    public var projects: [String]
    /// Credential role names a credential's `roleNameList` may use.
    public var roles: [String]
    /// API proxy names that can be granted (`API_PROXY`).
    public var apiProxies: [String]
    /// API proxy group names that can be granted (`API_PROXY_GROUP`).
    public var apiProxyGroups: [String]
    /// Gateway environment names, listed in every write's deployment result.
    public var gateways: [String]
    /// Accepted bearer tokens (personal API access tokens: they never expire).
    public var tokens: [String]
    /// client_id → client_secret logins for `POST /apiops/auth/token`.
    public var clients: [String: String]
    /// Lifetime of tokens issued by the token call; 0 makes them expire at once.
    public var tokenTTLSeconds: Int
    /// Credentials present from the start.
    public var credentials: [SandboxCredential]

    /// The name of the global project.
    public static let adminProject = "admin"

    /// The seed used when none is given: the catalog of PRODUCT.md's example, one-hour tokens,
    /// no credentials, and no token or login at all: who may call a sandbox is always given
    /// explicitly (`--token`, a random token, or `tokens:`/`clients:` in a seed), never built in.
    public static let `default` = SandboxSeed()

    /// A seed; every parameter defaults to the value of `SandboxSeed.default`.
    public init(projects: [String] = ["MyProject", "payments", "admin"],
                roles: [String] = ["API_USER", "DEVELOPER", "ADMIN"],
                apiProxies: [String] = ["MyAPI", "PaymentAPI"],
                apiProxyGroups: [String] = ["MyAPIGroup"],
                gateways: [String] = ["production", "staging"],
                tokens: [String] = [],
                clients: [String: String] = [:],
                tokenTTLSeconds: Int = 3600,
                credentials: [SandboxCredential] = []) {
        self.projects = projects
        self.roles = roles
        self.apiProxies = apiProxies
        self.apiProxyGroups = apiProxyGroups
        self.gateways = gateways
        self.tokens = tokens
        self.clients = clients
        self.tokenTTLSeconds = tokenTTLSeconds
        self.credentials = credentials
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case projects, roles, apiProxies, apiProxyGroups, gateways, tokens, clients, tokenTTLSeconds, credentials
    }

    /// Decodes a seed; a missing key takes the default's value, an unknown key is an error.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "the seed")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SandboxSeed()
        projects = try c.decodeIfPresent([String].self, forKey: .projects) ?? d.projects
        roles = try c.decodeIfPresent([String].self, forKey: .roles) ?? d.roles
        apiProxies = try c.decodeIfPresent([String].self, forKey: .apiProxies) ?? d.apiProxies
        apiProxyGroups = try c.decodeIfPresent([String].self, forKey: .apiProxyGroups) ?? d.apiProxyGroups
        gateways = try c.decodeIfPresent([String].self, forKey: .gateways) ?? d.gateways
        tokens = try c.decodeIfPresent([String].self, forKey: .tokens) ?? d.tokens
        clients = try c.decodeIfPresent([String: String].self, forKey: .clients) ?? d.clients
        tokenTTLSeconds = try c.decodeIfPresent(Int.self, forKey: .tokenTTLSeconds) ?? d.tokenTTLSeconds
        credentials = try c.decodeIfPresent([SandboxCredential].self, forKey: .credentials) ?? d.credentials
    }
}
