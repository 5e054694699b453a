import Foundation

/// What apply did, as values: one entry per environment, each operation with its typed
/// outcome. `CredOpsRender` words it (the `deploymentResult` document, text, markdown, JUnit);
/// nothing here is prose.
public struct ApplyReport: Sendable {
    /// The run's id (as in the state history).
    public var runID: String
    /// Sorted by environment name.
    public var environments: [EnvironmentReport]

    public init(runID: String, environments: [EnvironmentReport]) {
        self.runID = runID
        self.environments = environments
    }

    public var success: Bool { environments.allSatisfy(\.success) }
}

/// Why an environment was not applied at all (its operations, if any, say the rest).
public enum EnvironmentProblem: Sendable, Hashable {
    /// The plan could not be made: the reason, redacted (unreachable, refused login, state unreadable).
    case notPlanned(String)
    /// The environment has no session (its plan failed before connecting).
    case notConnected
    /// Guard rails stopped it.
    case refused([Refusal])
    /// The run could not be recorded in state; nothing was sent.
    case stateNotWritable(store: String, error: String)
    /// The intents of the planned writes could not be recorded; nothing was sent.
    case intentsNotRecorded(store: String, error: String)
}

/// One environment's outcome.
public struct EnvironmentReport: Sendable {
    public var environmentName: String
    /// Set when the environment was not applied at all.
    public var problem: EnvironmentProblem?
    public var changes: ReportCounts
    public var operations: [OperationResult]
    /// Declared credentials not acted on because several live credentials have their name.
    public var conflicts: [ReportedConflict] = []
    /// How long the environment's apply took.
    public var durationMilliseconds: Int?

    public init(environmentName: String, problem: EnvironmentProblem? = nil, changes: ReportCounts = ReportCounts(),
                operations: [OperationResult] = [], durationMilliseconds: Int? = nil) {
        self.environmentName = environmentName
        self.problem = problem
        self.changes = changes
        self.operations = operations
        self.durationMilliseconds = durationMilliseconds
    }

    /// The same report with its duration set.
    public func with(durationMilliseconds: Int?) -> EnvironmentReport {
        var copy = self
        copy.durationMilliseconds = durationMilliseconds
        return copy
    }

    /// No problem, no conflict, and every operation applied.
    public var success: Bool { problem == nil && conflicts.isEmpty && operations.allSatisfy { $0.status == .applied } }
    public var failed: [OperationResult] { operations.filter { $0.status == .failed } }
    public var skipped: [OperationResult] { operations.filter { $0.status == .skipped } }

    /// Counts the applied operations, in the report's words.
    public init(environmentName: String, results: [OperationResult]) {
        var counts = ReportCounts()
        for r in results where r.status == .applied {
            switch r.action {
            case .create: counts.created += 1
            case .replace: counts.replaced += 1
            case .update:
                counts.updated += 1
                if r.notes.contains(.secretChanged) { counts.passwordChanged += 1 }
            case .secret: counts.passwordChanged += 1
            case .grant: counts.granted += r.grants?.count ?? 1
            case .revoke: counts.revoked += r.grants?.count ?? 1
            case .delete: counts.deleted += 1
            case .adopt: counts.adopted += 1
            }
        }
        self.init(environmentName: environmentName, changes: counts, operations: results)
    }
}

/// A declared credential that was not applied because its name is ambiguous on the server.
public struct ReportedConflict: Sendable, Hashable {
    public var project: String
    public var conflict: KeyConflict

    public init(project: String, conflict: KeyConflict) {
        self.project = project
        self.conflict = conflict
    }
}

extension EnvironmentPlan {
    /// The plan's key conflicts as the report carries them (by server project).
    public var reportedConflicts: [ReportedConflict] {
        projects.flatMap { p in p.conflicts.map { ReportedConflict(project: p.serverProject.rawValue, conflict: $0) } }
    }
}

/// Applied changes by kind, as the report names them.
public struct ReportCounts: Sendable, Encodable, Equatable {
    public var created = 0, updated = 0, passwordChanged = 0, granted = 0, revoked = 0, deleted = 0, adopted = 0
    /// An extension of the documented shape: credentials replaced (deleted and created anew).
    public var replaced = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case created, updated, passwordChanged, granted, revoked, deleted, adopted, replaced }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(created, forKey: .created)
        try c.encode(updated, forKey: .updated)
        try c.encode(passwordChanged, forKey: .passwordChanged)
        try c.encode(granted, forKey: .granted)
        try c.encode(revoked, forKey: .revoked)
        try c.encode(deleted, forKey: .deleted)
        try c.encode(adopted, forKey: .adopted)
        // Only when there are some: the documented object stays as it is for providers
        // without immutable fields.
        if replaced > 0 { try c.encode(replaced, forKey: .replaced) }
    }

    public var stateCounts: ChangeCounts {
        var c = ChangeCounts()
        c.created = created
        c.updated = updated
        c.secretChanged = passwordChanged
        c.granted = granted
        c.revoked = revoked
        c.deleted = deleted
        c.adopted = adopted
        c.replaced = replaced
        return c
    }
}

/// One operation's outcome.
public struct OperationResult: Sendable {
    public enum Status: String, Sendable, Encodable { case applied, failed, skipped }

    public var project: String
    /// The credential's key (the report calls it `username`, as Apinizer's deploymentResult does).
    public var key: String
    public var action: ActionKind
    public var status: Status
    /// Why it failed (set when `status` is `.failed`).
    public var failure: OperationFailure?
    /// Why it was not tried (set when `status` is `.skipped`).
    public var skipReason: SkipReason?
    /// For changes that touch grants: which.
    public var grants: [AccessGrant]?
    /// For updates: the changed fields.
    public var fields: [String]?
    /// What else happened on the way (the secret changed too, an answer was lost).
    public var notes: [OperationNote]

    public var success: Bool { status == .applied }

    public init(project: String, key: String, action: ActionKind, status: Status, failure: OperationFailure? = nil,
                skipReason: SkipReason? = nil, grants: [AccessGrant]? = nil, fields: [String]? = nil, notes: [OperationNote] = []) {
        self.project = project
        self.key = key
        self.action = action
        self.status = status
        self.failure = failure
        self.skipReason = skipReason
        self.grants = grants
        self.fields = fields
        self.notes = notes
    }
}

/// Why an operation failed. Boxed (`indirect`), as is `SkipReason`: every operation's result
/// holds one of each, and few have either (inline they made each result 48 bytes larger).
public indirect enum OperationFailure: Sendable, Hashable {
    /// The provider's error: the request and what the server said, redacted.
    case provider(String)
    /// The answer was lost: whether the server applied the change is unknown, and the next run
    /// checks (the provider's error, redacted).
    case outcomeUnknown(String)
    /// A secret the change needs was not resolved.
    case noSecret
    /// The server applied it, but state could not record it; the next run settles it from the intent.
    case stateNotWritten(store: String, error: String)
    /// The credential was made, but its generated secret did not reach its sink (why,
    /// redacted): state marks it undelivered and the next apply replaces it.
    case notDelivered(String)
}

/// Why an operation was not tried.
public indirect enum SkipReason: Sendable, Hashable {
    /// An earlier step of the same credential failed.
    case earlierStepFailed(ActionKind)
    /// The user asked to stop (Ctrl-C).
    case interrupted
    /// State writes fail, so nothing more is sent (the store's error, redacted).
    case stateNotWritable(String)
}

/// Something that happened on the way to an operation's result.
public enum OperationNote: Sendable, Hashable {
    /// An update that changed the secret too.
    case secretChanged
    /// The answer to a create was lost `times` times (the last error, redacted), and reading
    /// back settled it.
    case answerLost(times: Int, lastError: String, then: LostAnswerResolution)
    /// A generated secret went to its sink (as shown in the plan), with what a command
    /// printed (redacted), and the server's id of the new credential.
    case delivered(to: String, serverID: String?, output: String?)
    /// Credentials this one replaced were deleted (their server ids).
    case retired([String])
    /// Replaced credentials kept until the overlap ends (their server ids, and when).
    case retiringUntil([String], Date)
}

/// How a lost create answer was settled by reading back.
public enum LostAnswerResolution: Sendable, Hashable {
    /// Not found: created again.
    case createdAgain
    /// Found with the declared fields: the create had gone through.
    case foundCreated
    /// Found with other fields: updated to the declared ones.
    case foundDifferentAndUpdated
}
