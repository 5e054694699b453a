import Foundation

/// Compares what should be with what is, for one project in one environment. Pure: no I/O.
///
/// One generic diff for every provider: the schema says which fields there are and which are
/// sets; values arrive canonical, so equality is the comparison.
public struct Planner: Sendable {
    public let schema: ResourceSchema
    /// What a generated secret's age is measured against.
    public let now: Date

    public init(schema: ResourceSchema, now: Date = Date()) {
        self.schema = schema
        self.now = now
    }

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
        /// Credentials whose generated secret is to be replaced now (`credops rotate`).
        public var rotate: Set<CredentialKey> = []
        /// Live credentials that records list as replaced and still to be deleted, by the key
        /// of the record.
        public var retiring: [CredentialKey: [Resource]] = [:]

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
        // The live list itself where every name is fine (the usual case), not a copy of it.
        var live = input.live
        if live.contains(where: { TextSafety.nameProblem($0.id.rawValue) != nil }) {
            live = []
            for resource in input.live {
                if let problem = TextSafety.nameProblem(resource.id.rawValue) {
                    plan.unaddressable.append(UnaddressableCredential(name: resource.id.rawValue, problem: problem))
                } else {
                    live.append(resource)
                }
            }
        }
        // Positions, not copies of the resources: 1.2 MB less per 10,000 credentials.
        let liveByID = FirstByKey(live, key: \.id)
        let declaredIDs = Set(desired.credentials.map(\.key))

        func change(_ id: CredentialKey, _ action: Action, reason: ChangeReason? = nil, at location: SourceLocation? = nil,
                    delivery: Delivery? = nil) -> Change {
            Change(project: desired.project, serverProject: desired.serverProject, key: id, serverID: liveByID[id]?.serverID,
                   action: action, reason: reason, declaredAt: location, delivery: delivery)
        }
        for credential in desired.credentials where !conflicted.contains(credential.key) {
            let id = credential.key
            let managed = input.managed[id]
            let secret = input.secrets[id]
            // Made by the server, or by credops at apply (`generate:`): delivered, never declared.
            let generated = schema.capabilities.secret == .generated || credential.delivery?.secretLength != nil
            // A declared secret that could not be resolved was reported when secrets were read.
            if !generated && secret == nil && schema.capabilities.secret != .none { continue }
            let declaredGrants = credential.grants ?? []
            guard let live = liveByID[id] else {
                plan.changes.append(change(id, .create(after: credential.resource, secret: secret), at: credential.location,
                                           delivery: credential.delivery))
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
                                      reason: input.stale[id].map(ChangeReason.pinnedCredentialGone)
                                          ?? (generated ? .secretNotDeliveredByCredops : .notYetManaged),
                                      at: credential.location, delivery: generated ? credential.delivery : nil))
            } else if !adoptedGrants.isEmpty {
                changes.append(change(id, .adopt(current: live, grants: adoptedGrants, credential: false),
                                      reason: .alreadyGranted, at: credential.location))
            }

            let fields = fieldChanges(live: live, desired: credential.resource)
            let forcedBy = fields.filter { schema.field(named: $0.field)?.isImmutable == true }.map(\.field)
            let renewal = generated ? secretRenewal(credential, live: live, managed: managed, rotate: input.rotate.contains(id)) : nil
            // A secret credops makes goes with every write of an API that takes the whole object
            // (and credops keeps none): where the key is the id, an update or a new password
            // carries a new one; elsewhere a new credential replaces the old without a gap.
            let makesSecret = credential.delivery?.secretLength != nil
            let inPlace = makesSecret && schema.capabilities.identity == .keyIsID
            if !forcedBy.isEmpty || (renewal != nil && !inPlace) || (makesSecret && !inPlace && !fields.isEmpty) {
                // A field that cannot change does, or the generated secret must be renewed: a new
                // credential replaces this one. Its grants go with the old one, so every declared
                // grant is given again.
                changes.append(change(id, .replace(before: live, after: credential.resource, fields: fields, forcedBy: forcedBy,
                                                   secret: secret), reason: forcedBy.isEmpty ? (renewal ?? .fieldsNeedANewSecret) : nil,
                                      at: credential.location, delivery: credential.delivery))
                if !declaredGrants.isEmpty { changes.append(change(id, .grant(declaredGrants), at: credential.location)) }
                plan.changes += changes
                continue
            }
            let secretState: SecretState?
            if generated || secret == nil {
                secretState = nil
            } else if let secret, let onServer = live.secretFingerprint {
                // The server says which secret it holds: that, not state, is the truth.
                secretState = onServer.matches(secret) ? nil : .differsOnServer
            } else if let secret, let known = managed?.secretFingerprint {
                secretState = known.matches(secret) ? nil : .changedSinceLastApply
            } else {
                secretState = managed == nil ? .notSetByCredops : .neverAppliedByCredops
            }
            if inPlace {
                // One credential per key: the new secret is set (with the fields, if they change) and then delivered.
                if !fields.isEmpty || managed?.pendingRedeploy != nil {
                    changes.append(change(id, .update(before: live, after: credential.resource, fields: fields, secret: nil, secretChanged: true),
                                          reason: renewal ?? .fieldsNeedANewSecret, at: credential.location, delivery: credential.delivery))
                } else if let renewal {
                    changes.append(change(id, .setSecret(nil), reason: renewal, at: credential.location, delivery: credential.delivery))
                }
            } else if !fields.isEmpty || managed?.pendingRedeploy != nil {
                let reason: ChangeReason? = fields.isEmpty ? .redeploy(managed?.pendingRedeploy ?? "") : secretState.map(ChangeReason.secret)
                changes.append(change(id, .update(before: live, after: credential.resource, fields: fields, secret: secret,
                                                  secretChanged: secretState != nil), reason: reason, at: credential.location))
            } else if let secretState, let secret {
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
        // Replaced credentials whose time is up are deleted before anything else of their key;
        // the others are shown with when they go. Entries whose credential is gone are dropped.
        var retiringDeletes: [Change] = []
        // A credential replaced again in this plan deletes its due predecessors itself, once its
        // successor is in place.
        let replacing = Set(plan.changes.filter { $0.action.kind == .replace }.map(\.key))
        for (key, record) in input.managed.sorted(by: { $0.key < $1.key }) where !record.retiring.isEmpty && !replacing.contains(key) {
            let live = Dictionary((input.retiring[key] ?? []).compactMap { r in r.serverID.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
            for old in record.retiring {
                guard let resource = live[old.serverID] else {
                    plan.retiredGone[key, default: []].append(old.serverID)
                    continue
                }
                // A credential no longer declared goes with every credential it replaced.
                let unwanted = !declaredIDs.contains(key) && desired.prune != .none
                if unwanted || (old.deleteAfter.map { $0 <= now } ?? false) {
                    retiringDeletes.append(Change(project: desired.project, serverProject: desired.serverProject, key: key, serverID: old.serverID,
                                                  action: .delete(before: resource), reason: .replacedEarlier(current: record.serverID)))
                } else {
                    plan.retiring.append(RetiringNote(key: key, serverID: old.serverID, deleteAfter: old.deleteAfter))
                }
            }
        }
        plan.changes += retiringDeletes + deletes
        plan.retirements = retiringDeletes.count
        plan.forgotten = (input.managed.keys.filter { (liveByID[$0] == nil || elsewhere.contains($0)) && !declaredIDs.contains($0) }
                          + input.stale.keys.filter { !declaredIDs.contains($0) }).sorted()
        if schema.capabilities.namespace == .none {
            // The account holds every team's credentials: the guard rails count this project's.
            plan.liveCount = live.filter { input.managed[$0.id] != nil || declaredIDs.contains($0.id) }.count
        }
        plan.liveCount += input.retiring.values.reduce(0) { $0 + $1.count }
        return plan
    }

    /// Why a credential's generated secret must be replaced now, if it must: its secret never
    /// reached a sink, `credops rotate` asks for it, or it is older than `rotateAfter`. One that
    /// credops did not create is left alone unless rotated on request: whoever made it has its secret.
    func secretRenewal(_ credential: DesiredCredential, live: Resource, managed: ManagedCredential?, rotate: Bool) -> ChangeReason? {
        if rotate { return .rotationRequested }
        // Only what credops knows it made: an adopted credential (or one of unknown origin) keeps its secret.
        guard let managed, let delivery = managed.delivery, delivery != .external else { return nil }
        if delivery == .undelivered { return .secretNeverDelivered }
        // A server that returns secrets shows one changed behind credops' back: its sink is stale.
        if let onServer = live.secretFingerprint, let known = managed.secretFingerprint, !onServer.matches(known) {
            return .secret(.differsOnServer)
        }
        guard let (made, due) = rotation(credential, live: live, managed: managed), now >= due, let after = credential.rotateAfter else { return nil }
        return .rotationDue(ageDays: Int(now.timeIntervalSince(made) / 86_400), afterDays: max(1, after / 86_400))
    }

    /// When a generated secret credops made (delivered or not) was made and when it reaches
    /// `rotateAfter`; nil without `rotateAfter`, for a secret credops did not make, or when its
    /// age is unknown.
    func rotation(_ credential: DesiredCredential, live: Resource, managed: ManagedCredential?) -> (made: Date, due: Date)? {
        guard let after = credential.rotateAfter, let managed, let delivery = managed.delivery, delivery != .external,
              let made = secretCreatedAt(live: live, managed: managed) else { return nil }
        return (made, made.addingTimeInterval(Double(after)))
    }

    /// When the live secret was made: the server's word where it gives one, else state's.
    func secretCreatedAt(live: Resource, managed: ManagedCredential?) -> Date? {
        if let field = schema.createdAtField, case .string(let text)? = live[field], let ms = Timestamp.parse(text) {
            return Date(timeIntervalSince1970: Double(ms) / 1000)
        }
        return managed?.secretCreatedAt
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
    /// Credentials whose generated secret is replaced now, by manifest project (`credops rotate`).
    public var rotate: [ProjectName: Set<CredentialKey>] = [:]
    /// Credentials that expire (or are due for rotation) within this many seconds are listed
    /// with the plan (`credops expiring --within`; plans warn 30 days ahead).
    public var expiryWindow: TimeInterval = 30 * 86_400

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
    /// - Parameter policyLimit: the deletes a policy allows this environment at most, and the
    ///   policy's name (no flag lifts it).
    public func guardRailRefusals(options: PlanOptions, policyLimit: (limit: Int, policy: String)? = nil) -> [Refusal] {
        var refusals: [Refusal] = []
        let deletes = counts[.delete] - projects.reduce(0) { $0 + $1.retirements }
        if isProtected && deletes > 0 && !options.allowDelete {
            refusals.append(.deletesInProtectedEnvironment(deletes: deletes))
        }
        if let rule = policyLimit, deletes > rule.limit {
            refusals.append(.policyDeleteLimit(policy: rule.policy, deletes: deletes, limit: rule.limit))
        }
        guard !options.allowMassDelete else { return refusals }
        if let max = options.maxDeletes, deletes > max {
            refusals.append(.moreDeletesThanLimit(deletes: deletes, limit: max))
        }
        for project in projects {
            let n = project.counts[.delete] - project.retirements
            if n > 2 && n * 2 > project.liveCount {
                refusals.append(.massDelete(project: project.project, deletes: n, live: project.liveCount))
            }
        }
        return refusals
    }
}
