import Foundation

/// What apply did, in the shape of Apinizer's `deploymentResult`, extended but never renamed.
public struct ApplyReport: Sendable, Encodable {
    public var success: Bool
    public var deploymentResult: DeploymentResult
    /// Extension: the run's id (as in the state history).
    public var runID: String

    public struct DeploymentResult: Sendable, Encodable {
        public var success: Bool
        public var message: String
        public var environmentResults: [EnvironmentReport]
    }

    public init(runID: String, environments: [EnvironmentReport]) {
        self.runID = runID
        let failed = environments.filter { !$0.success }
        let success = failed.isEmpty
        let message: String
        if environments.isEmpty {
            message = "No environments selected"
        } else if success {
            message = "Deployment completed successfully in \(environments.count) environment\(environments.count == 1 ? "" : "s")"
        } else {
            message = "Deployment failed in \(failed.count) of \(environments.count) environment\(environments.count == 1 ? "" : "s")"
        }
        self.success = success
        self.deploymentResult = DeploymentResult(success: success, message: message, environmentResults: environments)
    }

    enum CodingKeys: String, CodingKey { case success, deploymentResult, runID = "runId" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(success, forKey: .success)
        try c.encode(deploymentResult, forKey: .deploymentResult)
        try c.encode(runID, forKey: .runID)
    }

    /// Pretty JSON with keys in the documented order.
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return TextSafety.jsonSafe((try? encoder.encode(self)) ?? Data("{}".utf8))
    }
}

/// One environment's outcome.
public struct EnvironmentReport: Sendable, Encodable {
    public var environmentName: String
    public var success: Bool
    public var message: String
    public var changes: ReportCounts
    public var operations: [OperationResult]
    /// How long the environment's apply took (extension).
    public var durationMilliseconds: Int?

    enum CodingKeys: String, CodingKey { case environmentName, success, message, changes, operations, durationMilliseconds }

    public init(environmentName: String, success: Bool, message: String, changes: ReportCounts = ReportCounts(), operations: [OperationResult] = [],
                durationMilliseconds: Int? = nil) {
        self.environmentName = environmentName
        self.success = success
        self.message = message
        self.changes = changes
        self.operations = operations
        self.durationMilliseconds = durationMilliseconds
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(environmentName, forKey: .environmentName)
        try c.encode(success, forKey: .success)
        try c.encode(message, forKey: .message)
        try c.encode(changes, forKey: .changes)
        try c.encode(operations, forKey: .operations)
        try c.encodeIfPresent(durationMilliseconds, forKey: .durationMilliseconds)
    }
}

/// Applied changes by kind, as the report names them.
public struct ReportCounts: Sendable, Encodable, Equatable {
    public var created = 0, updated = 0, passwordChanged = 0, granted = 0, revoked = 0, deleted = 0, adopted = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case created, updated, passwordChanged, granted, revoked, deleted, adopted }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(created, forKey: .created)
        try c.encode(updated, forKey: .updated)
        try c.encode(passwordChanged, forKey: .passwordChanged)
        try c.encode(granted, forKey: .granted)
        try c.encode(revoked, forKey: .revoked)
        try c.encode(deleted, forKey: .deleted)
        try c.encode(adopted, forKey: .adopted)
    }

    /// `1 created, 1 updated, 1 password changed` (zero counts left out).
    public var summary: String {
        let parts: [(Int, String)] = [(created, "created"), (updated, "updated"), (passwordChanged, "password changed"),
                                      (granted, "granted"), (revoked, "revoked"), (deleted, "deleted"), (adopted, "adopted")]
        return parts.filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }

    public var stateCounts: ChangeCounts {
        var c = ChangeCounts()
        c.created = created
        c.updated = updated
        c.passwordChanged = passwordChanged
        c.granted = granted
        c.revoked = revoked
        c.deleted = deleted
        c.adopted = adopted
        return c
    }
}

/// One operation's outcome.
public struct OperationResult: Sendable, Encodable {
    public enum Status: String, Sendable, Encodable { case applied, failed, skipped }

    public var project: String
    public var username: String
    public var action: ActionKind
    public var status: Status
    /// Why it failed (the server's error, redacted) or why it was skipped.
    public var error: String?
    /// For changes that touch grants: which.
    public var grants: [AccessGrant]?
    /// For updates: the changed fields.
    public var fields: [String]?
    /// Extra notes, e.g. "answer lost; found created on read-back".
    public var note: String?

    public var success: Bool { status == .applied }

    enum CodingKeys: String, CodingKey { case project, username, action, success, status, error, grants, fields, note }

    public init(project: String, username: String, action: ActionKind, status: Status, error: String? = nil,
                grants: [AccessGrant]? = nil, fields: [String]? = nil, note: String? = nil) {
        self.project = project
        self.username = username
        self.action = action
        self.status = status
        self.error = error
        self.grants = grants
        self.fields = fields
        self.note = note
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(username, forKey: .username)
        try c.encode(action, forKey: .action)
        try c.encode(success, forKey: .success)
        try c.encode(project, forKey: .project)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encodeIfPresent(grants.map { $0.map(\.description) }, forKey: .grants)
        try c.encodeIfPresent(fields, forKey: .fields)
        try c.encodeIfPresent(note, forKey: .note)
    }
}
