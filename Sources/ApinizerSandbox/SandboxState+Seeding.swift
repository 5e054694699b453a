import Foundation

extension SandboxState {
    /// Checks seeded (out-of-band) credentials against this catalog and normalises them.
    ///
    /// - Throws: `SandboxError` (`.invalidSeed`) naming `credentials[i]` and the problem.
    func checkedSeedCredentials(_ list: [SandboxCredential]) throws(SandboxError) -> [SandboxCredential] {
        var seen = Set<String>()
        var result: [SandboxCredential] = []
        result.reserveCapacity(list.count)
        for (index, original) in list.enumerated() {
            let place = "credentials[\(index)]"
            var credential = original
            func fail(_ message: String) -> SandboxError { SandboxError(.invalidSeed, "\(place): \(message)") }
            guard !credential.username.isEmpty else { throw fail("username can not be empty") }
            guard seen.insert(credential.username).inserted else { throw fail("username '\(credential.username)' appears twice") }
            guard projectExists(credential.project) else { throw fail("project '\(credential.project)' is not in projects") }
            guard !credential.email.isEmpty, FieldRules.isEmail(credential.email) else { throw fail("email '\(credential.email)' is not an email address") }
            guard !credential.fullName.isEmpty else { throw fail("fullName can not be empty") }
            if let role = credential.roleNameList.first(where: { !roles.contains($0) }) { throw fail("role '\(role)' is not in roles") }
            if let ip = credential.ipList.first(where: { !FieldRules.isIPOrCIDR($0) }) { throw fail("'\(ip)' is not an IP address or CIDR range") }
            if let date = credential.expireDate {
                guard let normalized = ISO8601Timestamp.normalize(date) else { throw fail("expireDate '\(date)' is not an ISO 8601 UTC date-time") }
                credential.expireDate = normalized
            }
            var grants = Set<SandboxAccess>()
            for access in credential.access {
                guard grants.insert(access).inserted else { throw fail("access to '\(access.name)' appears twice") }
                switch access.type {
                case SandboxAccess.apiProxy:
                    guard apiProxies.contains(access.name) else { throw fail("API proxy '\(access.name)' is not in apiProxies") }
                case SandboxAccess.apiProxyGroup:
                    guard apiProxyGroups.contains(access.name) else { throw fail("API proxy group '\(access.name)' is not in apiProxyGroups") }
                default:
                    throw fail("access type '\(access.type)' is not API_PROXY or API_PROXY_GROUP")
                }
            }
            result.append(credential)
        }
        return result
    }

    /// Adds the catalog entries of `seed` that `keys` names (the keys present in the request),
    /// then inserts or replaces its credentials: drift made out of band.
    ///
    /// - Throws: `SandboxError` when a credential does not fit the merged catalog; nothing is
    ///   changed then.
    mutating func merge(_ seed: SandboxSeed, keys: Set<String>) throws(SandboxError) {
        var merged = self
        if keys.contains("projects") { for name in seed.projects { merged.projects.insert(name) } }
        if keys.contains("roles") { for name in seed.roles { merged.roles.insert(name) } }
        if keys.contains("apiProxies") { for name in seed.apiProxies { merged.apiProxies.insert(name) } }
        if keys.contains("apiProxyGroups") { for name in seed.apiProxyGroups { merged.apiProxyGroups.insert(name) } }
        if keys.contains("gateways") { for name in seed.gateways { merged.gateways.insert(name) } }
        if keys.contains("tokens") { for name in seed.tokens { merged.tokens.insert(name) } }
        if keys.contains("clients") { merged.clients.merge(seed.clients) { _, new in new } }
        if keys.contains("tokenTTLSeconds") { merged.tokenTTLSeconds = seed.tokenTTLSeconds }
        var catalog = seed
        catalog.credentials = []
        _ = try catalog.validated()  // empty names, a negative token lifetime
        if keys.contains("credentials") {
            let checked = try merged.checkedSeedCredentials(seed.credentials)
            for credential in checked {
                // A username moving to another project is a replacement: uniqueness holds across projects.
                merged.put(credential)
            }
        }
        self = merged
    }

    /// A state started from `configured`, with what `saved` (the data file) holds: the catalog
    /// is the union of both (the configured seed may have grown), clients and the token lifetime
    /// come from `configured`, the credentials from `saved`.
    static func restoring(configured: SandboxSeed, saved: SandboxSeed) -> SandboxState {
        var seed = configured
        seed.credentials = []
        var state = SandboxState(seed: seed)
        for name in saved.projects { state.projects.insert(name) }
        for name in saved.roles { state.roles.insert(name) }
        for name in saved.apiProxies { state.apiProxies.insert(name) }
        for name in saved.apiProxyGroups { state.apiProxyGroups.insert(name) }
        for name in saved.gateways { state.gateways.insert(name) }
        for name in saved.tokens { state.tokens.insert(name) }
        state.clients = saved.clients.merging(configured.clients) { _, configured in configured }
        for credential in saved.credentials { state.put(credential) }
        return state
    }
}

extension SandboxState {
    /// `POST /__sandbox/seed`: merges the keys the JSON body gives into the state.
    ///
    /// - Throws: 400 `bad_request` for a body that is not a seed, or a seed that does not fit.
    mutating func mergeSeed(body: Data?) throws(APIError) {
        let object = try RequestBody.object(body)
        let seed: SandboxSeed
        do {
            seed = try JSONDecoder().decode(SandboxSeed.self, from: body ?? Data())
        } catch let error as DecodingError {
            throw .badRequest("Invalid seed: \(SandboxSeed.describe(error))")
        } catch {
            throw .badRequest("Invalid seed: \(error)")
        }
        do {
            try merge(seed, keys: Set(object.keys))
        } catch {
            throw .badRequest("Invalid seed: \(error.message)")
        }
    }
}
