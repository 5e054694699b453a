import Foundation

/// What apply would do, per environment: a value computed by the planner and rendered by the
/// CLI (text, JSON, markdown). It never holds a secret, only secret fingerprints.
public struct Plan: Sendable {
    /// Version of the JSON form; bumped on incompatible changes.
    /// 2: server ids on changes and live credentials, key conflicts and namesakes.
    /// 3: generated secrets: deliveries, optional secret fingerprints, retiring credentials.
    public static let formatVersion = 3

    public var environments: [EnvironmentPlan]
    public var createdAt: Date

    public init(environments: [EnvironmentPlan], createdAt: Date = Date()) {
        self.environments = environments
        self.createdAt = createdAt
    }

    public var hasChanges: Bool { environments.contains { $0.hasChanges } }
    /// An environment could not be planned, or a guard rail refused it.
    /// An environment could not be planned, was refused, or has a credential it cannot tell apart.
    public var hasErrors: Bool {
        environments.contains { $0.failure != nil || !$0.refusals.isEmpty || $0.projects.contains { !$0.conflicts.isEmpty } }
    }

    public var counts: PlanCounts { environments.reduce(PlanCounts()) { $0 + $1.counts } }
}

/// The plan for one environment.
public struct EnvironmentPlan: Sendable, Codable {
    public var environment: EnvironmentName
    public var provider: String
    /// Where the provider is described, when a file describes it (`profile providers/leadexec.yaml`).
    public var providerSource: String?
    public var endpoint: String
    public var isProtected: Bool
    /// Sorted by project.
    public var projects: [ProjectPlan]
    /// Why the environment could not be planned (unreachable, refused login, unknown project).
    public var failure: String?
    /// Guard rails that stop apply (mass delete, deletes in a protected environment).
    public var refusals: [Refusal]
    /// Live credentials that expire or are due for rotation within the plan's expiry window,
    /// soonest first (nil: none).
    public var expiring: [ExpiringCredential]?
    /// Digest of the live state and credops state the plan was computed from (saved plans).
    public var liveDigest: String?
    /// Digest of the declared secrets' fingerprints (saved plans).
    public var secretsDigest: String?

    public init(environment: EnvironmentName, provider: String, endpoint: String, isProtected: Bool,
                projects: [ProjectPlan] = [], failure: String? = nil, refusals: [Refusal] = []) {
        self.environment = environment
        self.provider = provider
        self.endpoint = endpoint
        self.isProtected = isProtected
        self.projects = projects
        self.failure = failure
        self.refusals = refusals
    }

    public var changes: [Change] { projects.flatMap(\.changes) }
    public var hasChanges: Bool { projects.contains { !$0.changes.isEmpty } }
    public var counts: PlanCounts { projects.reduce(PlanCounts()) { $0 + $1.counts } }
}

/// The plan for one project in one environment.
public struct ProjectPlan: Sendable, Codable {
    /// As the manifests name it.
    public var project: ProjectName
    /// As the server names it.
    public var serverProject: ProjectName
    public var prune: PruneMode
    /// In order: each credential's changes (adopt, create, update, secret, grant, revoke) by
    /// username, then the deletes.
    public var changes: [Change]
    /// Live credentials nothing declares and that are not deleted (unmanaged, or prune: none).
    public var leftAlone: [CredentialKey]
    /// Live grants of declared credentials that credops did not give and does not revoke.
    public var unmanagedGrants: [CredentialKey: [AccessGrant]]
    /// Declared credentials that need nothing.
    public var inSync: Int
    /// Live credentials of the project before any change.
    public var liveCount: Int
    /// Managed credentials gone from the server and no longer declared: apply drops them from state.
    public var forgotten: [CredentialKey]
    /// Live credentials whose names cannot be used safely in a request path or the state
    /// (`.`, `..`, control characters): never acted on, only reported.
    public var unaddressable: [UnaddressableCredential]
    /// Declared credentials whose name several live credentials have, none known to credops
    /// (servers that assign ids): not acted on; apply reports each as failed.
    public var conflicts: [KeyConflict]
    /// Ids of other live credentials that share a name with one credops works with: left alone.
    public var namesakes: [CredentialKey: [String]]
    /// Replaced credentials kept until their time (a rotation's overlap, or until a new secret
    /// is delivered).
    public var retiring: [RetiringNote] = []
    /// How many of the deletes are of replaced credentials (the second half of a reviewed
    /// replace, not a removal): the delete guard rails do not count them.
    public var retirements = 0
    /// Replaced credentials gone from the server: apply drops them from their records.
    public var retiredGone: [CredentialKey: [String]] = [:]

    public init(project: ProjectName, serverProject: ProjectName, prune: PruneMode, changes: [Change] = [], leftAlone: [CredentialKey] = [],
                unmanagedGrants: [CredentialKey: [AccessGrant]] = [:], inSync: Int = 0, liveCount: Int = 0, forgotten: [CredentialKey] = [],
                unaddressable: [UnaddressableCredential] = [], conflicts: [KeyConflict] = [], namesakes: [CredentialKey: [String]] = [:]) {
        self.conflicts = conflicts
        self.namesakes = namesakes
        self.project = project
        self.serverProject = serverProject
        self.prune = prune
        self.changes = changes
        self.leftAlone = leftAlone
        self.unmanagedGrants = unmanagedGrants
        self.inSync = inSync
        self.liveCount = liveCount
        self.forgotten = forgotten
        self.unaddressable = unaddressable
    }

    public var counts: PlanCounts {
        var c = PlanCounts()
        for change in changes { c.add(change.action.kind) }
        return c
    }
}

/// A replaced credential still on the server, and when it goes.
public struct RetiringNote: Sendable, Codable, Hashable {
    public var key: CredentialKey
    public var serverID: String
    /// nil: kept until a new secret is delivered.
    public var deleteAfter: Date?

    public init(key: CredentialKey, serverID: String, deleteAfter: Date?) {
        self.key = key
        self.serverID = serverID
        self.deleteAfter = deleteAfter
    }
}

/// A live credential credops will not touch because its name is not safe to use.
public struct UnaddressableCredential: Sendable, Codable, Hashable {
    /// The name as the server gave it (shown escaped).
    public var name: String
    /// Why (`is '..', which a URL path takes for a directory step`).
    public var problem: String

    public init(name: String, problem: String) {
        self.name = name
        self.problem = problem
    }
}

/// One step of a plan: one action on one credential.
public struct Change: Sendable, Codable {
    public var project: ProjectName
    public var serverProject: ProjectName
    public var key: CredentialKey
    /// The server's id of the live credential, for APIs that assign ids (nil for a create).
    public var serverID: String?
    public var action: Action
    /// Why, for people (the renderers word it). Never decides anything.
    public var reason: ChangeReason?
    /// Where the credential is declared, for messages.
    public var declaredAt: SourceLocation?
    /// Where the secret a create or replace makes goes, when the server generates it.
    public var delivery: Delivery?

    public init(project: ProjectName, serverProject: ProjectName, key: CredentialKey, serverID: String? = nil, action: Action,
                reason: ChangeReason? = nil, declaredAt: SourceLocation? = nil, delivery: Delivery? = nil) {
        self.delivery = delivery
        self.project = project
        self.serverProject = serverProject
        self.key = key
        self.serverID = serverID
        self.action = action
        self.reason = reason
        self.declaredAt = declaredAt
    }
}

/// Why a change is planned, as a value: the renderers word it. It explains; it never decides.
/// Boxed (`indirect`): every change holds one, and most have none.
public indirect enum ChangeReason: Sendable, Hashable, Codable {
    /// Adopt: the credential exists on the server and credops does not manage it yet.
    case notYetManaged
    /// Adopt: the credential credops managed under this name (its id given) is gone from the
    /// server, and this live one, another of the same name, takes its place.
    case pinnedCredentialGone(String)
    /// Adopt: declared grants the server already holds.
    case alreadyGranted
    /// The secret is sent because of what credops knows of it.
    case secret(SecretState)
    /// Sent again because the server stored it but did not deploy it (its message, redacted).
    case redeploy(String)
    /// Delete: managed by credops and no longer declared.
    case noLongerDeclared
    /// Delete or revoke: not declared, and the project prunes everything undeclared.
    case notDeclaredPruneAll
    /// Revoke: given by credops and no longer declared.
    case grantNoLongerDeclared
    /// Replace: the server generated this credential's secret, and no sink took it.
    case secretNeverDelivered
    /// Replace: the generated secret is `ageDays` old, and the manifest says to replace it after `afterDays`.
    case rotationDue(ageDays: Int, afterDays: Int)
    /// Replace: asked for with `credops rotate`.
    case rotationRequested
    /// Replace or update: fields change, and the API takes them only with the secret, which
    /// credops made and did not keep: a new one is made and delivered.
    case fieldsNeedANewSecret
    /// Adopt: the server generated the secret for whoever made the credential; credops has not
    /// delivered it and leaves the credential alone until it is rotated.
    case secretNotDeliveredByCredops
    /// Delete: an earlier replace made `current` in its place, and this one's time is up.
    case replacedEarlier(current: String?)
}

/// What credops knows of a credential's secret when it plans to send it.
public enum SecretState: String, Sendable, Hashable, Codable {
    /// The declared secret differs from the one credops applied last.
    case changedSinceLastApply
    /// The credential is not managed yet: credops never set its secret.
    case notSetByCredops
    /// Managed, but no secret of credops' is on record (adopted, or a write whose outcome was unknown).
    case neverAppliedByCredops
    /// The server returns its secret, and it is not the declared one (changed out of band).
    case differsOnServer
}

/// What apply does to one credential. The type says what exists: a create has no "before".
///
/// The cases that carry credentials are `indirect`: a plan of 10,000 changes per environment
/// keeps each payload once, in a box its copies share, instead of 144 bytes inline in every
/// copy of every change (grants and secrets are small and stay inline).
public enum Action: Sendable {
    /// Start managing a live credential (and/or live grants that are declared); state only.
    indirect case adopt(current: Resource, grants: [AccessGrant], credential: Bool)
    /// `secret` is nil when the server generates it (then the change names its delivery).
    indirect case create(after: Resource, secret: Fingerprint?)
    /// A new credential in place of the live one, because a field that cannot change does (or
    /// its generated secret must be replaced): where the key is the server's id the live one is
    /// deleted first, else the new one is created (and its secret delivered) first; then its
    /// grants are given again. `fields` are every changed field; `forcedBy` names the immutable
    /// ones among them.
    indirect case replace(before: Resource, after: Resource, fields: [FieldChange], forcedBy: [String], secret: Fingerprint?)
    /// Every field is sent (the API needs them all, the secret too).
    /// `secret` is nil when the server generates it (nothing of it is sent).
    indirect case update(before: Resource, after: Resource, fields: [FieldChange], secret: Fingerprint?, secretChanged: Bool)
    /// nil: credops makes the secret at apply (`generate:`) and delivers it.
    indirect case setSecret(Fingerprint?)
    case grant([AccessGrant])
    case revoke([AccessGrant])
    indirect case delete(before: Resource)

    public var kind: ActionKind {
        switch self {
        case .adopt: .adopt
        case .create: .create
        case .replace: .replace
        case .update: .update
        case .setSecret: .secret
        case .grant: .grant
        case .revoke: .revoke
        case .delete: .delete
        }
    }

    /// The credential as this action makes it (create, replace, update), if it sends one.
    public var desired: Resource? {
        switch self {
        case .create(let after, _), .replace(_, let after, _, _, _), .update(_, let after, _, _, _): after
        default: nil
        }
    }

    /// The fingerprint of the secret this action applies, if it sends one.
    public var secretFingerprint: Fingerprint? {
        switch self {
        case .create(_, let fp), .replace(_, _, _, _, let fp), .update(_, _, _, let fp, _), .setSecret(let fp): fp
        default: nil
        }
    }
}

/// The closed set of action kinds, with their words in reports.
public enum ActionKind: String, Sendable, Codable, CaseIterable, Comparable {
    /// `secret` is written `password` in reports, plans and state, the word those documents use.
    case adopt, create, replace, update, secret = "password", grant, revoke, delete

    /// The order within one credential: adopt → create or replace → update → secret → grant → revoke.
    var rank: Int {
        switch self {
        case .adopt: 0
        case .create: 1
        case .replace: 2
        case .update: 3
        case .secret: 4
        case .grant: 5
        case .revoke: 6
        case .delete: 7
        }
    }

    public static func < (lhs: ActionKind, rhs: ActionKind) -> Bool { lhs.rank < rhs.rank }

    /// Changes the server (adopt only writes state).
    public var writesToServer: Bool { self != .adopt }
}

/// One field that changes: its value before and after.
public struct FieldChange: Sendable, Hashable, Codable {
    public var field: String
    public var before: FieldValue
    public var after: FieldValue

    public init(field: String, before: FieldValue, after: FieldValue) {
        self.field = field
        self.before = before
        self.after = after
    }
}

/// How many changes of each kind a plan holds, keyed by kind: a new action kind needs no new
/// property here, nor in any renderer that lists `ActionKind.allCases`.
public struct PlanCounts: Sendable, Equatable {
    private var byKind: [ActionKind: Int] = [:]

    public init() {}

    public mutating func add(_ kind: ActionKind, _ n: Int = 1) { byKind[kind, default: 0] += n }

    public subscript(kind: ActionKind) -> Int { byKind[kind] ?? 0 }

    public var total: Int { byKind.values.reduce(0, +) }

    public static func + (a: PlanCounts, b: PlanCounts) -> PlanCounts {
        var r = a
        for (kind, n) in b.byKind { r.add(kind, n) }
        return r
    }
}
