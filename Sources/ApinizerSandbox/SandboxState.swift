/// Everything the emulated manager holds: its catalog, who may call it, and the credentials.
///
/// A value type so that the engine can hand a snapshot to the data-file writer cheaply; the
/// credential calls are in `SandboxState+Credentials.swift` and `SandboxState+Access.swift`.
struct SandboxState: Sendable {
    /// One stored credential and its creation order (lists keep that order).
    struct Entry: Sendable {
        var sequence: Int
        var credential: SandboxCredential
    }

    var projects: OrderedNames
    var roles: OrderedNames
    var apiProxies: OrderedNames
    var apiProxyGroups: OrderedNames
    var gateways: OrderedNames
    var tokens: OrderedNames
    var clients: [String: String]
    var tokenTTLSeconds: Int
    /// By username: usernames are unique across all projects.
    var credentials: [String: Entry] = [:]
    var nextSequence = 0

    /// A state holding `seed`, which must have passed `SandboxSeed.validated(against:)`.
    init(seed: SandboxSeed) {
        projects = OrderedNames(seed.projects)
        roles = OrderedNames(seed.roles)
        apiProxies = OrderedNames(seed.apiProxies)
        apiProxyGroups = OrderedNames(seed.apiProxyGroups)
        gateways = OrderedNames(seed.gateways)
        tokens = OrderedNames(seed.tokens)
        clients = seed.clients
        tokenTTLSeconds = seed.tokenTTLSeconds
        for credential in seed.credentials { put(credential) }
    }

    /// The whole state as a seed, credentials in creation order: the data file and the dump.
    var seed: SandboxSeed {
        SandboxSeed(projects: projects.names, roles: roles.names, apiProxies: apiProxies.names,
                    apiProxyGroups: apiProxyGroups.names, gateways: gateways.names, tokens: tokens.names,
                    clients: clients, tokenTTLSeconds: tokenTTLSeconds,
                    credentials: orderedCredentials { _ in true })
    }

    /// True for a seeded project and for `admin`, which always exists.
    func projectExists(_ project: String) -> Bool {
        project == SandboxSeed.adminProject || projects.contains(project)
    }

    /// The credential `username` as seen through `project`: a credential of another project is
    /// not visible, except through `admin`, which sees every credential.
    func credential(_ username: String, through project: String) -> SandboxCredential? {
        guard let entry = credentials[username] else { return nil }
        guard project == SandboxSeed.adminProject || entry.credential.project == project else { return nil }
        return entry.credential
    }

    /// The credentials visible through `project`, in creation order.
    func credentials(through project: String) -> [SandboxCredential] {
        if project == SandboxSeed.adminProject { return orderedCredentials { _ in true } }
        return orderedCredentials { $0.project == project }
    }

    /// Inserts `credential`, or replaces the one with its username (keeping its place in lists).
    mutating func put(_ credential: SandboxCredential) {
        if var entry = credentials[credential.username] {
            entry.credential = credential
            credentials[credential.username] = entry
        } else {
            credentials[credential.username] = Entry(sequence: nextSequence, credential: credential)
            nextSequence += 1
        }
    }

    private func orderedCredentials(where include: (SandboxCredential) -> Bool) -> [SandboxCredential] {
        credentials.values.filter { include($0.credential) }.sorted { $0.sequence < $1.sequence }.map(\.credential)
    }
}
