/// Everything loaded from disk for a run: manifests and environment files, checked.
public struct Inputs: Sendable {
    public var manifests: [Manifest]
    /// Sorted by name.
    public var environments: [EnvironmentConfig]
    /// Every file read, with a SHA-256 of its bytes, for saved plans.
    public var files: [InputFile]
    /// Files under the given paths that are not credops manifests (e.g. CI pipelines).
    public var skippedFiles: [String]
    /// The policies (`policies/`) manifests are checked against.
    public var policies: [Policy] = []

    public func environment(named name: EnvironmentName) -> EnvironmentConfig? {
        environments.first { $0.name == name }
    }

    /// Distinct projects and the number of credentials declared, for summaries.
    public var projectCount: Int { Set(manifests.map { "\($0.provider)/\($0.project)" }).count }
    public var credentialCount: Int { manifests.reduce(0) { $0 + $1.credentials.count } }
}

/// A file that went into a run.
public struct InputFile: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable { case manifest, environment, profile, policy }
    public var path: String
    public var kind: Kind
    public var sha256: String
}
