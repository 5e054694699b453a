/// Which live credential is which declared one, for servers that assign ids and allow two
/// credentials of one name (LeadConduit). Pure: the plan uses what it returns.
///
/// A credential is matched by its key (its name), and pinned by the id state remembers once
/// credops created or adopted it. Two live credentials of a declared name with neither pinned
/// is a conflict for that credential, reported with both ids and never resolved by a guess.
/// Where the key is the server's id, names are unique and everything passes through.
public struct IdentityMatcher: Sendable {
    public let identity: ProviderCapabilities.Identity

    public init(identity: ProviderCapabilities.Identity) { self.identity = identity }

    public struct Match: Sendable {
        /// One live credential per key: the one the plan works with.
        public var live: [Resource]
        /// State records that still describe a live credential (or that have no id yet).
        public var managed: [CredentialKey: ManagedCredential]
        /// Declared keys held by several live credentials, none pinned by state.
        public var conflicts: [KeyConflict]
        /// Records whose pinned credential is gone from the server while another credential
        /// has its name, with the id that is gone: the plan says so, and state forgets the
        /// record unless the name is still declared.
        public var stale: [CredentialKey: String]
        /// Live credentials that a record lists as replaced and still to be deleted: never
        /// matched, never namesakes.
        public var retiring: [CredentialKey: [Resource]] = [:]
        /// Other live credentials that share a matched (or undeclared) key: left alone (as
        /// the server listed them, for settling interrupted creates).
        public var namesakeResources: [CredentialKey: [Resource]] = [:]

        /// The namesakes' ids.
        public var namesakes: [CredentialKey: [String]] { namesakeResources.mapValues { $0.compactMap(\.serverID) } }
    }

    public func match(live: [Resource], managed: [CredentialKey: ManagedCredential], declared: Set<CredentialKey>) -> Match {
        guard identity == .serverAssigned else {
            return Match(live: live, managed: managed, conflicts: [], stale: [:])
        }
        var result = Match(live: [], managed: managed, conflicts: [], stale: [:])
        var retiringIDs: [String: CredentialKey] = [:]
        for record in managed.values { for old in record.retiring { retiringIDs[old.serverID] = record.key } }
        var byKey: [CredentialKey: [Resource]] = [:]
        var order: [CredentialKey] = []
        for resource in live {
            if let id = resource.serverID, let owner = retiringIDs[id] {
                result.retiring[owner, default: []].append(resource)
                continue
            }
            if byKey[resource.id] == nil { order.append(resource.id) }
            byKey[resource.id, default: []].append(resource)
        }
        for key in order {
            let group = byKey[key]!
            if let pin = managed[key]?.serverID {
                if let pinned = group.first(where: { $0.serverID == pin }) {
                    result.live.append(pinned)
                    let others = group.filter { $0.serverID != pin }
                    if !others.isEmpty { result.namesakeResources[key] = others }
                    continue
                }
                // Ours is gone; what has its name now is another credential, not ours.
                result.managed[key] = nil
                result.stale[key] = pin
            }
            if group.count == 1 {
                result.live.append(group[0])
            } else if declared.contains(key) {
                result.conflicts.append(KeyConflict(key: key, serverIDs: group.compactMap(\.serverID)))
            } else {
                result.namesakeResources[key] = group
            }
        }
        return result
    }
}

/// A declared credential whose name several live credentials have, none of them known to
/// credops: it is not acted on until one is removed or renamed on the server.
public struct KeyConflict: Sendable, Codable, Hashable {
    public var key: CredentialKey
    /// The ids of the live credentials with that name, in the server's order.
    public var serverIDs: [String]

    public init(key: CredentialKey, serverIDs: [String]) {
        self.key = key
        self.serverIDs = serverIDs
    }
}
