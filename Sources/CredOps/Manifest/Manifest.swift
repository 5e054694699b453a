/// What happens to live credentials that no manifest declares.
public enum PruneMode: String, Sendable, Codable, CaseIterable {
    /// Delete what credops created or adopted and is no longer declared (the default).
    case managed
    /// Delete every undeclared credential of the project.
    case all
    /// Delete nothing.
    case none
}

/// One `kind: CredentialSet` document: the credentials of one project.
public struct Manifest: Sendable {
    public var file: String
    public var location: SourceLocation
    public var provider: String
    public var project: ProjectName
    public var projectLocation: SourceLocation
    /// The environments this manifest applies to; nil means every environment of its provider.
    public var environments: [Located<EnvironmentName>]?
    public var prune: PruneMode
    /// Where `prune` is written; nil when the default applies.
    public var pruneLocation: SourceLocation?
    public var credentials: [ManifestCredential]
    /// The manifest's `deliver:` and `rotateAfter:`, for credentials that name none.
    public var delivery: DeclaredDelivery?
    public var rotateAfter: Located<Int>?
    public var overlap: Located<Int>?

    /// True when the manifest applies to `environment`.
    public func applies(to environment: EnvironmentName) -> Bool {
        environments?.contains { $0.value == environment } ?? true
    }
}

/// A credential as declared, before the per-environment view is built.
public struct ManifestCredential: Sendable {
    /// The declared key (the schema's identifier field: `username`, `name`).
    public var key: CredentialKey
    public var location: SourceLocation
    public var values: CredentialValues
    /// Restriction to some environments; nil means wherever the manifest applies.
    public var environments: [Located<EnvironmentName>]?
    public var overrides: [EnvironmentName: CredentialValues]
    public var overrideLocations: [EnvironmentName: SourceLocation]
    /// Where the generated secret goes (nil: the manifest's default).
    public var delivery: DeclaredDelivery?
    /// Seconds after which the generated secret is replaced (nil: the manifest's default).
    public var rotateAfter: Located<Int>?
    /// Seconds a replaced credential is kept after its successor is delivered (nil: the manifest's default).
    public var overlap: Located<Int>?

    public func applies(to environment: EnvironmentName) -> Bool {
        environments?.contains { $0.value == environment } ?? true
    }
}

/// Field values, password and grants declared in one place (the credential or one override).
public struct CredentialValues: Sendable {
    /// Declared fields only, canonical.
    public var fields = FieldMap()
    public var password: SecretReference?
    /// `password: { generate: { length: N } }`: credops makes the secret (N characters) and
    /// delivers it; nil when the secret is a reference (or not given here).
    public var generateLength: Int?
    /// The password key is present (even if its value was refused), so no "missing password" follows.
    public var passwordDeclared = false
    /// nil when the `access` key is absent.
    public var grants: [AccessGrant]?
    public var grantsLocation: SourceLocation?

    public init() {}

    /// `other` laid over `self`: what `other` declares wins.
    public func overlaid(with other: CredentialValues) -> CredentialValues {
        var result = self
        for (k, v) in other.fields { result.fields[k] = v }
        if let p = other.password {
            result.password = p
            result.generateLength = nil
        }
        if let n = other.generateLength {
            result.generateLength = n
            result.password = nil
        }
        if other.passwordDeclared { result.passwordDeclared = true }
        if let g = other.grants {
            result.grants = g
            result.grantsLocation = other.grantsLocation
        }
        return result
    }
}

/// A value with the place it was written.
public struct Located<Value: Sendable>: Sendable {
    public var value: Value
    public var location: SourceLocation

    public init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}
