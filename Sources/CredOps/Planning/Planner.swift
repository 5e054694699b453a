/// Compares what should be with what is, for one project in one environment. Pure: no I/O.
///
/// One generic diff for every provider: the schema says which fields there are and which are
/// sets; values arrive canonical, so equality is the comparison.
public struct Planner: Sendable {
    public let schema: ResourceSchema

    public init(schema: ResourceSchema) { self.schema = schema }

    /// What the planner needs about one project.
    public struct ProjectInput: Sendable {
        public var desired: DesiredProject
        public var live: [Resource]
        /// Access lists read from the server, for the credentials whose grants matter.
        public var liveGrants: [CredentialKey: [AccessGrant]]
        /// State records of this project.
        public var managed: [CredentialKey: ManagedCredential]
        /// Fingerprints of the declared secrets.
        public var secrets: [CredentialKey: Fingerprint]
        /// What identity matching found (servers that assign ids): declared names it could not
        /// match, other live credentials of a matched name, and records to forget.
        public var conflicts: [KeyConflict]
        public var namesakes: [CredentialKey: [String]]
        public var stale: [CredentialKey: String]
        /// Keys other projects of the environment declare, where the API has no namespaces (one
        /// account lists every project's credentials): never deleted or counted here, and a
        /// record of one here is dropped (the credential moved to the project that declares it).
        public var declaredElsewhere: Set<CredentialKey> = []

        public init(desired: DesiredProject, live: [Resource], liveGrants: [CredentialKey: [AccessGrant]],
                    managed: [CredentialKey: ManagedCredential], secrets: [CredentialKey: Fingerprint],
                    conflicts: [KeyConflict] = [], namesakes: [CredentialKey: [String]] = [:], stale: [CredentialKey: String] = [:]) {
            self.conflicts = conflicts
            self.namesakes = namesakes
            self.stale = stale
            self.desired = desired
            self.live = live
            self.liveGrants = liveGrants
            self.managed = managed
            self.secrets = secrets
        }
    }

    /// Whether the access list of a live credential must be read to plan it.
    public static func needsGrants(declared: DesiredCredential?, managed: ManagedCredential?, prune: PruneMode) -> Bool {
        needsGrants(isDeclared: declared != nil, declaresGrants: !(declared?.grants?.isEmpty ?? true),
                    hasManagedGrants: !(managed?.grants.isEmpty ?? true), prune: prune)
    }

    /// The same decision on plain facts (no copies of whole records on the hot path).
    public static func needsGrants(isDeclared: Bool, declaresGrants: Bool, hasManagedGrants: Bool, prune: PruneMode) -> Bool {
        guard isDeclared else { return false }
        if declaresGrants { return true }
        if hasManagedGrants && prune != .none { return true }
        return prune == .all
    }

    public func plan(_ input: ProjectInput) -> ProjectPlan {
        let desired = input.desired
        var plan = ProjectPlan(project: desired.project, serverProject: desired.serverProject, prune: desired.prune,
                               liveCount: input.live.count + input.namesakes.values.reduce(0) { $0 + $1.count }
                                   + input.conflicts.reduce(0) { $0 + $1.serverIDs.count },
                               conflicts: input.conflicts, namesakes: input.namesakes)
        let conflicted = Set(input.conflicts.map(\.key))
        let elsewhere = input.declaredElsewhere
        // A live name that cannot be put in a path or a state key safely is reported and never
        // acted on: a server that lists `..` must not turn a delete into one of the project.
        var addressable: [Resource] = []
        addressable.reserveCapacity(input.live.count)
        for resource in input.live {
            if let problem = TextSafety.nameProblem(resource.id.rawValue) {
                plan.unaddressable.append(UnaddressableCredential(name: resource.id.rawValue, problem: problem))
            } else {
                addressable.append(resource)
            }
        }
        let live = addressable
        let liveByID = Dictionary(live.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let declaredIDs = Set(desired.credentials.map(\.key))

        func change(_ id: CredentialKey, _ action: Action, reason: ChangeReason? = nil, at location: SourceLocation? = nil) -> Change {
            Change(project: desired.project, serverProject: desired.serverProject, key: id, serverID: liveByID[id]?.serverID,
                   action: action, reason: reason, declaredAt: location)
        }

        for credential in desired.credentials where !conflicted.contains(credential.key) {
            let id = credential.key
            let managed = input.managed[id]
            guard let secret = input.secrets[id] else { continue }
            let declaredGrants = credential.grants ?? []
            guard let live = liveByID[id] else {
                plan.changes.append(change(id, .create(after: credential.resource, secret: secret), at: credential.location))
                if !declaredGrants.isEmpty {
                    plan.changes.append(change(id, .grant(declaredGrants), at: credential.location))
                }
                continue
            }
            var changes: [Change] = []
            let liveGrants = input.liveGrants[id] ?? []
            let recorded = Set(managed?.grants ?? [])
            let liveSet = Set(liveGrants)
            // Declared grants already on the server become managed (recorded) ones.
            let adoptedGrants = declaredGrants.filter { liveSet.contains($0) && !recorded.contains($0) }
            if managed == nil {
                changes.append(change(id, .adopt(current: live, grants: adoptedGrants, credential: true),
                                      reason: input.stale[id].map(ChangeReason.pinnedCredentialGone) ?? .notYetManaged,
                                      at: credential.location))
            } else if !adoptedGrants.isEmpty {
                changes.append(change(id, .adopt(current: live, grants: adoptedGrants, credential: false),
                                      reason: .alreadyGranted, at: credential.location))
            }

            let fields = fieldChanges(live: live, desired: credential.resource)
            let forcedBy = fields.filter { schema.field(named: $0.field)?.isImmutable == true }.map(\.field)
            if !forcedBy.isEmpty {
                // A field that cannot change does: a new credential replaces this one. Its grants
                // go with the old one, so every declared grant is given again.
                changes.append(change(id, .replace(before: live, after: credential.resource, fields: fields, forcedBy: forcedBy,
                                                   secret: secret), at: credential.location))
                if !declaredGrants.isEmpty { changes.append(change(id, .grant(declaredGrants), at: credential.location)) }
                plan.changes += changes
                continue
            }
            let secretState: SecretState?
            if let onServer = live.secretFingerprint {
                // The server says which secret it holds: that, not state, is the truth.
                secretState = onServer.matches(secret) ? nil : .differsOnServer
            } else if let known = managed?.secretFingerprint {
                secretState = known.matches(secret) ? nil : .changedSinceLastApply
            } else {
                secretState = managed == nil ? .notSetByCredops : .neverAppliedByCredops
            }
            if !fields.isEmpty || managed?.pendingRedeploy != nil {
                let reason: ChangeReason? = fields.isEmpty ? .redeploy(managed?.pendingRedeploy ?? "") : secretState.map(ChangeReason.secret)
                changes.append(change(id, .update(before: live, after: credential.resource, fields: fields, secret: secret,
                                                  secretChanged: secretState != nil), reason: reason, at: credential.location))
            } else if let secretState {
                changes.append(change(id, .setSecret(secret), reason: .secret(secretState), at: credential.location))
            }

            let toGrant = declaredGrants.filter { !liveSet.contains($0) }
            if !toGrant.isEmpty { changes.append(change(id, .grant(toGrant), at: credential.location)) }
            let declaredSet = Set(declaredGrants)
            let undeclared = liveGrants.filter { !declaredSet.contains($0) }
            let toRevoke: [AccessGrant]
            switch desired.prune {
            case .all: toRevoke = undeclared
            case .managed: toRevoke = undeclared.filter { recorded.contains($0) }
            case .none: toRevoke = []
            }
            if !toRevoke.isEmpty {
                changes.append(change(id, .revoke(toRevoke), reason: desired.prune == .all ? .notDeclaredPruneAll : .grantNoLongerDeclared,
                                      at: credential.location))
            }
            let leftGrants = undeclared.filter { !toRevoke.contains($0) }
            if !leftGrants.isEmpty { plan.unmanagedGrants[id] = leftGrants }
            if changes.isEmpty { plan.inSync += 1 }
            plan.changes += changes
        }

        // Live credentials nothing declares.
        var deletes: [Change] = []
        for live in live.sorted(by: { $0.id < $1.id }) where !declaredIDs.contains(live.id) && !elsewhere.contains(live.id) {
            let managed = input.managed[live.id] != nil
            switch desired.prune {
            case .managed where managed:
                deletes.append(change(live.id, .delete(before: live), reason: .noLongerDeclared))
            case .all:
                deletes.append(change(live.id, .delete(before: live), reason: managed ? .noLongerDeclared : .notDeclaredPruneAll))
            default:
                plan.leftAlone.append(live.id)
            }
        }
        plan.changes += deletes
        plan.forgotten = (input.managed.keys.filter { (liveByID[$0] == nil || elsewhere.contains($0)) && !declaredIDs.contains($0) }
                          + input.stale.keys.filter { !declaredIDs.contains($0) }).sorted()
        if schema.capabilities.namespace == .none {
            // The account holds every team's credentials: the guard rails count this project's.
            plan.liveCount = live.filter { input.managed[$0.id] != nil || declaredIDs.contains($0.id) }.count
        }
        return plan
    }

    /// Each schema field whose live value differs from the desired one. Desired values are
    /// canonical by construction (the loader makes them so); live ones are made canonical here
    /// only when they differ, so the common case costs one comparison per field.
    public func fieldChanges(live: Resource, desired: Resource) -> [FieldChange] {
        var changes: [FieldChange] = []
        for spec in schema.fields where spec.isDeclarable {
            let after = desired[spec.name] ?? spec.defaultValue
            let raw = live[spec.name] ?? spec.defaultValue
            if raw == after { continue }
            let before = spec.canonical(raw)
            if before != after { changes.append(FieldChange(field: spec.name, before: before, after: after)) }
        }
        return changes
    }
}

/// Options that decide what a plan may contain.
public struct PlanOptions: Sendable {
    /// Deletes in protected environments are allowed.
    public var allowDelete = false
    /// Mass deletes are allowed.
    public var allowMassDelete = false
    /// At most this many deletes per environment (nil: no fixed limit).
    public var maxDeletes: Int?

    public init(allowDelete: Bool = false, allowMassDelete: Bool = false, maxDeletes: Int? = nil) {
        self.allowDelete = allowDelete
        self.allowMassDelete = allowMassDelete
        self.maxDeletes = maxDeletes
    }
}

extension EnvironmentPlan {
    /// The guard rails of PRODUCT.md: deletes in a protected environment need `--allow-delete`;
    /// deleting more than half of a project's live credentials (when more than two), or more
    /// than `--max-deletes`, needs `--allow-mass-delete`.
    public func guardRailRefusals(options: PlanOptions) -> [Refusal] {
        var refusals: [Refusal] = []
        let deletes = counts[.delete]
        if isProtected && deletes > 0 && !options.allowDelete {
            refusals.append(.deletesInProtectedEnvironment(deletes: deletes))
        }
        guard !options.allowMassDelete else { return refusals }
        if let max = options.maxDeletes, deletes > max {
            refusals.append(.moreDeletesThanLimit(deletes: deletes, limit: max))
        }
        for project in projects {
            let n = project.counts[.delete]
            if n > 2 && n * 2 > project.liveCount {
                refusals.append(.massDelete(project: project.project, deletes: n, live: project.liveCount))
            }
        }
        return refusals
    }
}
