/// A credential as the sandbox stores it: the API's fields, plus the project it lives in, its
/// password (write-only on the API, visible in dumps) and its access grants.
///
/// Used for seed data (credentials that exist "out of band"), for the data file and for
/// `/__sandbox/dump`.
public struct SandboxCredential: Sendable, Codable, Equatable {
    /// The project the credential was created in (`admin` for global credentials).
    public var project: String
    /// The identifier, unique across all projects.
    public var username: String
    /// nil when unknown (a seeded credential may leave it out).
    public var password: String?
    /// Required; must look like an email address.
    public var email: String
    /// Required, non-empty.
    public var fullName: String
    /// Optional free text.
    public var description: String?
    /// Names of existing credential roles.
    public var roleNameList: [String]
    /// A disabled credential exists but cannot call the gateways.
    public var enabled: Bool
    /// Single IPs or CIDR ranges; empty means no restriction.
    public var ipList: [String]
    /// `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC, or nil for never.
    public var expireDate: String?
    /// The granted API proxies and groups, in the order they were granted.
    public var access: [SandboxAccess]

    /// A credential with the API's defaults for the fields left out.
    public init(project: String, username: String, password: String? = nil, email: String, fullName: String,
                description: String? = nil, roleNameList: [String] = [], enabled: Bool = true, ipList: [String] = [],
                expireDate: String? = nil, access: [SandboxAccess] = []) {
        self.project = project
        self.username = username
        self.password = password
        self.email = email
        self.fullName = fullName
        self.description = description
        self.roleNameList = roleNameList
        self.enabled = enabled
        self.ipList = ipList
        self.expireDate = expireDate
        self.access = access
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case project, username, password, email, fullName, description, roleNameList, enabled, ipList, expireDate, access
    }

    /// Decodes a credential; `project`, `username`, `email` and `fullName` are required, the rest
    /// default as on the API. Unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "credential")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        project = try c.decode(String.self, forKey: .project)
        username = try c.decode(String.self, forKey: .username)
        password = try c.decodeIfPresent(String.self, forKey: .password)
        email = try c.decode(String.self, forKey: .email)
        fullName = try c.decode(String.self, forKey: .fullName)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        roleNameList = try c.decodeIfPresent([String].self, forKey: .roleNameList) ?? []
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? true
        ipList = try c.decodeIfPresent([String].self, forKey: .ipList) ?? []
        expireDate = try c.decodeIfPresent(String.self, forKey: .expireDate)
        access = try c.decodeIfPresent([SandboxAccess].self, forKey: .access) ?? []
    }

    /// Encodes every field, absent optionals as `null`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(project, forKey: .project)
        try c.encode(username, forKey: .username)
        try c.encode(password, forKey: .password)
        try c.encode(email, forKey: .email)
        try c.encode(fullName, forKey: .fullName)
        try c.encode(description, forKey: .description)
        try c.encode(roleNameList, forKey: .roleNameList)
        try c.encode(enabled, forKey: .enabled)
        try c.encode(ipList, forKey: .ipList)
        try c.encode(expireDate, forKey: .expireDate)
        try c.encode(access, forKey: .access)
    }

    /// The API's list form: the documented fields, password always `null`.
    var listJSON: JSONValue {
        .object(JSONObject([
            (key: "username", value: .string(username)),
            (key: "password", value: .null),
            (key: "email", value: .string(email)),
            (key: "fullName", value: .string(fullName)),
            (key: "description", value: .optional(description)),
            (key: "roleNameList", value: .strings(roleNameList)),
            (key: "enabled", value: .bool(enabled)),
            (key: "ipList", value: .strings(ipList)),
            (key: "expireDate", value: .optional(expireDate)),
        ]))
    }
}
