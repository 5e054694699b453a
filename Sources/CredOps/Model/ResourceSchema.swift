/// What a provider's credentials look like: their fields, which are sets, which are secret, and
/// which access types exist. The manifest loader and the planner are driven by it, so a new
/// provider brings a schema instead of a new diff.
public struct ResourceSchema: Sendable {
    /// The field that names a credential (`username`). Never changes; a new name is a new credential.
    public var identifierField: String
    /// The write-only secret field (`password`): declared by reference, never read back.
    public var secretField: String
    /// Every other field, in the order the server documents them (and plans show them).
    public var fields: [FieldSpec]
    /// The key under which access grants are declared (`access`), and their allowed types.
    public var grantsField: String
    public var grantTypes: [String]
    /// True when identifiers are unique across the whole server, not only within a project
    /// (Apinizer: usernames are global), so two projects cannot declare the same one.
    public var identifiersAreGlobal: Bool
    /// What the API can do, declared: the engine never assumes a namespace, grants or a secret.
    public var capabilities: ProviderCapabilities
    /// What the provider's built-in emulator takes under `sandbox:` in an environment file.
    public var emulatorSettings: [EmulatorSettingSpec]
    /// Bounds on the length of the key (UTF-16 code units), checked when manifests load.
    public var identifierLength: ClosedRange<Int>?
    /// The read-only field holding when the server made the credential (ISO 8601), which a
    /// generated secret's age is counted from.
    public var createdAtField: String?
    /// The instant field after which the server stops accepting the credential (Apinizer's
    /// `expireDate`), watched by `credops expiring` and warned about by plans.
    public var expiryField: String?
    /// The kinds of auth environment files may use with this provider (`bearer`, `basic`,
    /// `apiKey`, `oauth2`); nil: any.
    public var authKinds: [String]?

    /// - Parameter grantTypes: empty when the API has no grants; then a manifest may not declare any.
    public init(identifierField: String, secretField: String, fields: [FieldSpec], grantsField: String, grantTypes: [String],
                identifiersAreGlobal: Bool, capabilities: ProviderCapabilities = ProviderCapabilities(),
                emulatorSettings: [EmulatorSettingSpec] = [], identifierLength: ClosedRange<Int>? = nil, createdAtField: String? = nil) {
        self.createdAtField = createdAtField
        self.identifiersAreGlobal = identifiersAreGlobal
        self.capabilities = capabilities
        self.emulatorSettings = emulatorSettings
        self.identifierLength = identifierLength
        let grants = grantTypes.isEmpty ? [] : [grantsField]
        let secret = capabilities.secret.isDeclared ? [secretField] : []
        // A declared secret may be one credops generates (`{ generate: ... }`), delivered too.
        let delivery = capabilities.secret == .none ? [] : Self.deliveryKeys
        self.credentialKeys = [identifierField] + secret + fields.map(\.name) + grants + delivery + ["environments", "overrides"]
        self.overrideKeys = secret + fields.map(\.name) + grants
        self.identifierField = identifierField
        self.secretField = secretField
        self.fields = fields
        self.grantsField = grantsField
        self.grantTypes = grantTypes
    }

    public func field(named name: String) -> FieldSpec? { fields.first { $0.name == name } }

    /// True when credentials can be given access to things on the server.
    public var hasGrants: Bool { !grantTypes.isEmpty }

    /// The fields a manifest may declare and a plan compares, in order.
    public var declarableFields: [FieldSpec] { fields.filter(\.isDeclarable) }

    /// The keys that say where a generated secret goes and when it is replaced.
    public static let deliveryKeys = ["deliver", "rotateAfter", "overlap"]

    /// Every key a credential entry may hold (computed once: it is checked for every credential).
    public let credentialKeys: [String]
    /// Every key an override may hold.
    public let overrideKeys: [String]
}

/// What a provider's API can do, declared by the provider (as Terraform's schema declares
/// `Computed` or `RequiresReplace`), so that the loader, planner and applier follow data, never
/// an `if provider ==`.
public struct ProviderCapabilities: Sendable, Equatable {
    public enum Namespace: Sendable, Equatable {
        /// Credentials live in one space per account (LeadConduit): a manifest's `project` is
        /// credops' own grouping, and `prune: all` is refused (it would delete other teams'
        /// credentials).
        case none
        /// Named spaces (Apinizer projects, LeadVibe units). `pruneAllRefused` names those whose
        /// listing returns more than their own credentials, where `prune: all` is refused too.
        case named(pruneAllRefused: Set<String> = [])
    }

    /// How the credential's secret behaves.
    public enum SecretMode: Sendable, Equatable {
        /// Declared in the manifest, never readable (Apinizer): compared by fingerprint.
        case declaredWriteOnly
        /// Declared, and returned by reads (LeadConduit): compared by HMAC, never shown or kept.
        case declaredReadable
        /// Generated by the server and shown once (LeadVibe): delivered, never declared.
        case generated
        /// No secret.
        case none

        /// A manifest declares the secret (by reference).
        public var isDeclared: Bool { self == .declaredWriteOnly || self == .declaredReadable }
    }

    /// How a credential is addressed on the server.
    public enum Identity: Sendable, Equatable {
        /// The declared key is the server's id (Apinizer usernames): a replace deletes first.
        case keyIsID
        /// The server assigns an id at create (LeadConduit, LeadVibe); the key is matched.
        case serverAssigned
    }

    public var namespace: Namespace
    public var secret: SecretMode
    public var identity: Identity
    /// A project that `projects:` does not map goes to the server's default namespace (LeadVibe's
    /// default unit), not to one of its own name: two such projects would share it.
    public var unmappedProjectsShareDefault: Bool

    public init(namespace: Namespace = .named(), secret: SecretMode = .declaredWriteOnly, identity: Identity = .keyIsID,
                unmappedProjectsShareDefault: Bool = false) {
        self.unmappedProjectsShareDefault = unmappedProjectsShareDefault
        self.namespace = namespace
        self.secret = secret
        self.identity = identity
    }
}

/// One field of a credential.
public struct FieldSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        /// Text; YAML 1.1 words like `no` or `0777` stay text.
        case string
        /// Only `true` or `false`.
        case bool
        /// A list compared as a set.
        case stringSet
        /// A strict ISO 8601 instant, or null for "never".
        case instant
    }

    /// Extra checks on the text of a value (or of each element of a set).
    public enum Format: Sendable, Equatable {
        case any
        case email
        /// A single IP address or a CIDR range, IPv4 or IPv6; kept in canonical form.
        case ipOrCIDR
    }

    public var name: String
    public var kind: Kind
    public var format: Format
    /// Must be given in the manifest.
    public var isRequired: Bool
    /// Must not be empty text when given.
    public var isNonEmpty: Bool
    /// The value when the manifest leaves the field out (and the value a server's `null` means).
    public var defaultValue: FieldValue
    /// Shown on the one-line summary of a create.
    public var isSummary: Bool
    /// Bounds on the length of text (of each element of a set), in UTF-16 code units: what the
    /// JavaScript and Java servers behind most of these APIs count.
    public var minLength: Int?
    public var maxLength: Int?
    /// The only values allowed (of text, or of each element of a set); nil: any.
    public var oneOf: [String]?
    /// The server cannot change it once set: a new value means a new credential (a replace).
    public var isImmutable: Bool
    /// Set by the server (`created_at`): a manifest may not declare it, and plans ignore it.
    public var isReadOnly: Bool

    public init(_ name: String, _ kind: Kind, format: Format = .any, required: Bool = false, nonEmpty: Bool = false,
                default defaultValue: FieldValue, summary: Bool = false, minLength: Int? = nil, maxLength: Int? = nil,
                oneOf: [String]? = nil, immutable: Bool = false, readOnly: Bool = false) {
        self.name = name
        self.kind = kind
        self.format = format
        self.isRequired = required
        self.isNonEmpty = nonEmpty
        self.defaultValue = defaultValue
        self.isSummary = summary
        self.minLength = minLength
        self.maxLength = maxLength
        self.oneOf = oneOf
        self.isImmutable = immutable
        self.isReadOnly = readOnly
    }

    /// Fields a manifest declares and a plan compares (all but the read-only ones).
    public var isDeclarable: Bool { !isReadOnly }

    /// Brings a value into the form used for comparison (canonical IPs; sorted sets).
    public func canonical(_ value: FieldValue) -> FieldValue {
        switch (format, value) {
        case (.ipOrCIDR, .set(let items)):
            return .setOf(items.map { IPRange.parse($0)?.description ?? $0 })
        case (.ipOrCIDR, .string(let s)):
            return .string(IPRange.parse(s)?.description ?? s)
        case (_, .set(let items)):
            return .setOf(items)
        default:
            return value
        }
    }
}

/// A credential as a provider sees it: its identifier and its readable field values.
/// The password is not here: it is write-only and lives in `Secret`.
public struct Resource: Hashable, Sendable, Codable {
    /// The key the credential is declared by (for most APIs also the server's id).
    public var id: CredentialKey
    /// Values by field name, canonical (see `FieldSpec.canonical`).
    public var fields: FieldMap
    /// The id a server assigned, for a live credential of an API that assigns ids.
    public var serverID: String?
    /// For an API that returns secrets in reads (LeadConduit): the fingerprint of the live
    /// secret, made by the provider through `Connection.fingerprintSecret` the moment it read
    /// it. The secret itself never leaves the provider.
    public var secretFingerprint: Fingerprint? {
        get { fingerprintBox?.value }
        set { fingerprintBox = newValue.map(FingerprintBox.init) }
    }

    /// Boxed: most resources have none, and a plan holds tens of thousands of resources
    /// (inline, it made each 24 bytes larger).
    private var fingerprintBox: FingerprintBox?

    private final class FingerprintBox: Hashable, Sendable {
        let value: Fingerprint
        init(_ value: Fingerprint) { self.value = value }
        static func == (a: FingerprintBox, b: FingerprintBox) -> Bool { a.value == b.value }
        func hash(into hasher: inout Hasher) { hasher.combine(value) }
    }

    public init(id: CredentialKey, fields: FieldMap, serverID: String? = nil, secretFingerprint: Fingerprint? = nil) {
        self.id = id
        self.fields = fields
        self.serverID = serverID
        self.secretFingerprint = secretFingerprint
    }

    private enum CodingKeys: String, CodingKey { case id, fields, serverID, secretFingerprint }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(CredentialKey.self, forKey: .id), fields: try c.decode(FieldMap.self, forKey: .fields),
                  serverID: try c.decodeIfPresent(String.self, forKey: .serverID),
                  secretFingerprint: try c.decodeIfPresent(Fingerprint.self, forKey: .secretFingerprint))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(fields, forKey: .fields)
        try c.encodeIfPresent(serverID, forKey: .serverID)
        try c.encodeIfPresent(secretFingerprint, forKey: .secretFingerprint)
    }

    public init(id: CredentialKey, fields: [String: FieldValue], serverID: String? = nil) {
        self.init(id: id, fields: FieldMap(fields), serverID: serverID)
    }

    public subscript(field: String) -> FieldValue? {
        get { fields[field] }
        set { fields[field] = newValue }
    }
}

/// Access of a credential to something on the server (Apinizer: an API proxy or a proxy group).
public struct AccessGrant: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
    /// `API_PROXY`, `API_PROXY_GROUP`, ... as the provider names them.
    public var type: String
    public var name: String

    public init(type: String, name: String) {
        self.type = type
        self.name = name
    }

    public static func < (lhs: AccessGrant, rhs: AccessGrant) -> Bool { (lhs.type, lhs.name) < (rhs.type, rhs.name) }

    public var description: String { "\(type) \(name)" }
}
