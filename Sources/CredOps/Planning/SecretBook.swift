
/// The resolved secrets of one environment: its auth and every declared password, with the
/// fingerprints plans use. Built before any request, so that a missing secret stops the run
/// before anything changes.
public struct SecretBook: Sendable {
    public var auth: Connection.Credentials?
    /// By project and name: the two names, not one joined text allocated per credential.
    private var secrets: [ProjectCredential: (Secret, Fingerprint)] = [:]

    public init(auth: Connection.Credentials?) { self.auth = auth }

    private static func key(_ project: ProjectName, _ id: CredentialKey) -> ProjectCredential { ProjectCredential(project: project, key: id) }

    mutating func reserveCapacity(_ n: Int) { secrets.reserveCapacity(n) }

    mutating func add(project: ProjectName, id: CredentialKey, secret: Secret, fingerprint: Fingerprint) {
        secrets[Self.key(project, id)] = (secret, fingerprint)
    }

    /// The secret declared for a credential (by the server's namespace).
    public func secret(project: ProjectName, id: CredentialKey) -> Secret? { secrets[Self.key(project, id)]?.0 }

    public func fingerprint(project: ProjectName, id: CredentialKey) -> Fingerprint? { secrets[Self.key(project, id)]?.1 }

    /// Every secret in the book, for redaction.
    public var allSecrets: [Secret] {
        var result = secrets.values.map(\.0)
        switch auth {
        case .bearer(let t)?: result.append(t)
        case .clientCredentials(_, let s, _, _)?: result.append(s)  // the id is a login name
        case .basic(_, let p)?, .header(_, let p)?: result.append(p)
        case nil: break
        }
        return result
    }

    /// The HMAC context of a password: environment, server project and username.
    public static func fingerprintContext(environment: EnvironmentName, project: ProjectName, id: CredentialKey) -> String {
        "\(environment.rawValue)\u{0}\(project.rawValue)\u{0}\(id.rawValue)"
    }

    /// A credential's secret fingerprinted as state keeps it: the declared one, and one a
    /// server returned, are compared this way.
    public static func fingerprint(_ secret: Secret, key: FingerprintKey, environment: EnvironmentName, project: ProjectName,
                                   id: CredentialKey) -> Fingerprint {
        secret.fingerprint(key: key, context: fingerprintContext(environment: environment, project: project, id: id))
    }
}

extension SecretResolver {
    /// Resolves the auth and every password `desired` needs, reporting every missing one (and
    /// warning about secret files others can read).
    public func book(for desired: DesiredEnvironment, key: FingerprintKey) -> (SecretBook, [Diagnostic]) {
        var problems: [Diagnostic] = []
        let env = desired.environment
        let (auth, authProblems) = self.auth(for: env)
        problems += authProblems
        var book = SecretBook(auth: auth)
        book.reserveCapacity(desired.projects.reduce(0) { $0 + $1.credentials.count })
        var resolved: [String: (secret: Secret, warnings: [Diagnostic])] = [:]
        for project in desired.projects {
            for credential in project.credentials {
                guard let reference = credential.secret,
                      let secret = value(reference, environment: env, problems: &problems, resolved: &resolved) else { continue }
                book.add(project: project.serverProject, id: credential.key, secret: secret,
                         fingerprint: SecretBook.fingerprint(secret, key: key, environment: env.name, project: project.serverProject,
                                                             id: credential.key))
            }
        }
        return (book, problems)
    }

    /// The environment's auth with its secrets resolved; nil without auth or when a secret is
    /// missing (then the diagnostics say which). Tokens go into a header, so control
    /// characters in them are refused.
    public func auth(for env: EnvironmentConfig) -> (Connection.Credentials?, [Diagnostic]) {
        var problems: [Diagnostic] = []
        switch env.auth {
        case .bearer(let ref)?:
            return (value(ref, use: .header, environment: env, problems: &problems).map(Connection.Credentials.bearer), problems)
        case .oauth2(let idRef, let secretRef, let tokenPath, let body)?:
            let id = value(idRef, use: .body, environment: env, problems: &problems)
            let secret = value(secretRef, use: .body, environment: env, problems: &problems)
            if let id, let secret { return (.clientCredentials(clientID: id, clientSecret: secret, tokenPath: tokenPath, body: body), problems) }
            return (nil, problems)
        case .basic(let username, let ref)?:
            // Base64 in a header: any byte is safe once encoded, but a line break in a
            // password is a copy-paste accident worth refusing like a token's.
            return (value(ref, use: .header, environment: env, problems: &problems).map { .basic(username: username, password: $0) }, problems)
        case .apiKey(let ref)?:
            return (value(ref, use: .header, environment: env, problems: &problems)
                .map { .basic(username: Connection.Credentials.apiKeyUser, password: $0) }, problems)
        case nil:
            return (nil, problems)
        }
    }

    /// A password's value. One variable or file that thousands of credentials name is read
    /// once, and its value held once (not once per credential); its warnings are still given
    /// at every place that names it. Failures are not kept: each place reports its own.
    private func value(_ ref: SecretReference, environment env: EnvironmentConfig, problems: inout [Diagnostic],
                       resolved: inout [String: (secret: Secret, warnings: [Diagnostic])]) -> Secret? {
        let source: String
        switch ref.source {
        case .environment(let name): source = "env\u{0}" + name
        case .file(_, let resolvedPath): source = "file\u{0}" + resolvedPath
        case .literal: return value(ref, use: .body, environment: env, problems: &problems)
        }
        if let known = resolved[source] {
            problems += known.warnings.map { warning in
                var here = warning
                here.location = ref.location
                return here
            }
            return known.secret
        }
        let before = problems.count
        guard let secret = value(ref, use: .body, environment: env, problems: &problems) else { return nil }
        resolved[source] = (secret, Array(problems[before...]))
        return secret
    }

    private func value(_ ref: SecretReference, use: SecretUse, environment env: EnvironmentConfig, problems: inout [Diagnostic]) -> Secret? {
        var warnings: [String] = []
        defer { problems += warnings.map { .warning($0, at: ref.location, address: env.name.rawValue) } }
        do {
            return try self.resolve(ref, use: use, warnings: &warnings)
        } catch {
            problems.append(.error("\(error)", at: ref.location, address: env.name.rawValue))
            return nil
        }
    }
}
