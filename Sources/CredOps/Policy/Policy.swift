import Foundation

/// A rule a team sets on what its manifests may declare (`kind: Policies`, in `policies/`
/// beside `environments/`): checked by `validate`, `plan` and `apply` for every environment,
/// provider and project it selects, each failure located at the credential, project or
/// environment file that breaks it. An `error` rule stops plan and apply; a `warn` rule is shown.
public struct Policy: Sendable {
    public enum Level: String, Sendable { case error, warn }

    public var name: String
    public var location: SourceLocation
    public var level: Level
    /// Which environments, providers and projects it applies to (empty: all).
    public var environments: NamePatterns
    public var providers: NamePatterns
    public var projects: NamePatterns
    /// Fields every credential must declare with a value (`[ipList, expireDate]`).
    public var require: [String]
    /// The expiry must be set and at most this many seconds away.
    public var maxLifetime: Int?
    /// Values a field may not hold (`roleNameList: [ADMIN]`).
    public var forbid: [(field: String, values: [String])]
    /// Generated secrets must declare `rotateAfter` of at most this many seconds.
    public var maxRotateAfter: Int?
    /// The prune modes a project may use.
    public var prune: [PruneMode]?
    /// Deletes one plan may hold per environment at most (not lifted by --allow-mass-delete).
    public var maxDeletes: Int?
    /// Hosts the environment's URL may name (`*.example.com`, `10.0.0.5`).
    public var allowedHosts: NamePatterns?

    public init(name: String, location: SourceLocation, level: Level = .error, environments: NamePatterns = NamePatterns(),
                providers: NamePatterns = NamePatterns(), projects: NamePatterns = NamePatterns(), require: [String] = [],
                maxLifetime: Int? = nil, forbid: [(field: String, values: [String])] = [], maxRotateAfter: Int? = nil,
                prune: [PruneMode]? = nil, maxDeletes: Int? = nil, allowedHosts: NamePatterns? = nil) {
        self.name = name
        self.location = location
        self.level = level
        self.environments = environments
        self.providers = providers
        self.projects = projects
        self.require = require
        self.maxLifetime = maxLifetime
        self.forbid = forbid
        self.maxRotateAfter = maxRotateAfter
        self.prune = prune
        self.maxDeletes = maxDeletes
        self.allowedHosts = allowedHosts
    }

    /// True when the policy covers this environment and provider.
    public func applies(to environment: EnvironmentConfig) -> Bool {
        environments.matches(environment.name.rawValue) && providers.matches(environment.provider)
    }
}

/// Glob patterns (`prod*`, `?a`, `!admin`) that select names: a name is selected when no
/// `!` pattern matches it and, if any plain pattern is given, one of those does. No pattern
/// selects every name.
public struct NamePatterns: Sendable, Equatable {
    public var include: [String]
    public var exclude: [String]

    public init(_ patterns: [String] = []) {
        include = patterns.filter { !$0.hasPrefix("!") }
        exclude = patterns.filter { $0.hasPrefix("!") }.map { String($0.dropFirst()) }
    }

    public func matches(_ name: String) -> Bool {
        if exclude.contains(where: { Self.glob($0, name) }) { return false }
        return include.isEmpty || include.contains { Self.glob($0, name) }
    }

    /// `*` any run of characters, `?` one character, anything else itself (case-sensitive).
    static func glob(_ pattern: String, _ name: String) -> Bool {
        let p = Array(pattern), n = Array(name)
        // Iterative matching with one backtrack point: linear in practice, never exponential.
        var (i, j) = (0, 0)
        var star: Int?
        var mark = 0
        while j < n.count {
            if i < p.count && (p[i] == "?" || p[i] == n[j]) {
                i += 1
                j += 1
            } else if i < p.count && p[i] == "*" {
                star = i
                mark = j
                i += 1
            } else if let s = star {
                i = s + 1
                mark += 1
                j = mark
            } else {
                return false
            }
        }
        while i < p.count && p[i] == "*" { i += 1 }
        return i == p.count
    }
}
