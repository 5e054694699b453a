import CredOps
import Foundation

/// The words of an apply's outcome: the messages of the `deploymentResult` document, of the
/// state history and of every view of a report. The engine hands over values; only this file
/// turns them into sentences.
public enum ReportWording {
    /// `Deployment completed successfully in 2 environments` / `Deployment failed in 1 of 2 environments`.
    public static func message(_ report: ApplyReport) -> String {
        let envs = report.environments
        let failed = envs.filter { !$0.success }.count
        if envs.isEmpty { return "No environments selected" }
        if failed == 0 { return "Deployment completed successfully in \(envs.count) environment\(envs.count == 1 ? "" : "s")" }
        return "Deployment failed in \(failed) of \(envs.count) environment\(envs.count == 1 ? "" : "s")"
    }

    /// One environment's message: its problem, its failures, or what was done.
    public static func message(_ env: EnvironmentReport) -> String {
        if let problem = env.problem { return message(problem, environment: EnvironmentName(env.environmentName)) }
        if !env.conflicts.isEmpty {
            let first = env.conflicts.prefix(3).map(conflict).joined(separator: "; ")
            let more = env.conflicts.count > 3 ? "; and \(env.conflicts.count - 3) more" : ""
            let rest = env.failed.isEmpty ? "" : "; \(env.failed.count) of \(env.operations.count) operations failed"
            return "\(env.conflicts.count) credential\(env.conflicts.count == 1 ? "" : "s") not applied: \(first)\(more)\(rest)"
        }
        let failed = env.failed
        let skipped = env.skipped
        let total = env.operations.count
        if !failed.isEmpty {
            let first = failed.prefix(3).map { "\($0.key) \($0.action.rawValue): \(error($0) ?? "failed")" }.joined(separator: "; ")
            let more = failed.count > 3 ? "; and \(failed.count - 3) more" : ""
            return "\(failed.count) of \(total) operations failed: \(first)\(more)"
        }
        if let first = skipped.first {
            return "\(skipped.count) of \(total) operations skipped: \(error(first) ?? "interrupted")"
        }
        let summary = summary(env.changes)
        return summary.isEmpty ? "No changes" : "Deployed successfully: \(summary)"
    }

    /// `'Acme CRM' is the name of 2 credentials on the server (ids a, b) and credops manages
    /// neither: delete or rename one of them there, then apply again`
    public static func conflict(_ c: ReportedConflict) -> String {
        "'\(c.conflict.key)' is the name of \(c.conflict.serverIDs.count) credentials on the server (ids \(c.conflict.serverIDs.joined(separator: ", "))) "
            + "and credops manages none of them: delete or rename all but one there, then apply again"
    }

    /// Why an environment was not applied.
    public static func message(_ problem: EnvironmentProblem, environment: EnvironmentName) -> String {
        switch problem {
        case .notPlanned(let reason): reason
        case .notConnected: "not connected"
        case .refused(let refusals): refusals.map { Wording.refusal($0, environment: environment) }.joined(separator: "; ")
        case .stateNotWritable(let store, let error): "cannot write state (\(store)): \(error)"
        case .intentsNotRecorded(let store, let error): "nothing was sent: the state could not record the planned writes (\(store)): \(error)"
        }
    }

    /// Why an operation failed or was skipped (nil when it was applied).
    public static func error(_ op: OperationResult) -> String? {
        if let failure = op.failure {
            switch failure {
            case .provider(let message): return message
            case .outcomeUnknown(let message): return message + " (outcome unknown; the next run checks it)"
            case .noSecret: return "no secret resolved for \(op.key)"
            case .stateNotWritten(let store, let error):
                return "applied on the server, but the state could not be written (\(store)): \(error); the next run settles it"
            case .notDelivered(let why):
                return "created, but its secret was not delivered: \(why); the next apply replaces it"
                    + (op.action == .replace ? " (the credential it replaces stays until then)" : "")
            }
        }
        switch op.skipReason {
        case .earlierStepFailed(let kind): return "skipped: the \(kind.rawValue) of this credential failed"
        case .interrupted: return "skipped: apply was interrupted"
        case .stateNotWritable(let error): return "skipped: the state cannot be written (\(error))"
        case nil: return nil
        }
    }

    /// An operation's notes, `; `-separated (nil when none).
    public static func note(_ op: OperationResult) -> String? { joined(op.notes) }

    /// Notes worth showing next to an applied operation in progress lines (the secret change
    /// of an update is in its counts already).
    public static func remark(_ op: OperationResult) -> String? { joined(op.notes.filter { $0 != .secretChanged }) }

    private static func joined(_ notes: [OperationNote]) -> String? {
        notes.isEmpty ? nil : notes.map(note).joined(separator: "; ")
    }

    static func note(_ note: OperationNote) -> String {
        switch note {
        case .secretChanged: "password changed"
        case .answerLost(let times, _, .createdAgain): "answer lost \(times)×; not found on read-back, created again"
        case .answerLost(_, let last, .foundCreated): "answer lost (\(last)); found created on read-back"
        case .answerLost(_, let last, .foundDifferentAndUpdated): "answer lost (\(last)); found with other fields on read-back and updated"
        case .delivered(let to, let id, let output):
            (id.map { "created \(TextSafety.escaped(Wording.shortID($0))), " } ?? "") + "delivered to \(TextSafety.escaped(to))"
                + (output.map { " (it said: \(TextSafety.escaped($0)))" } ?? "")
        case .retired(let ids): "deleted " + ids.map { TextSafety.escaped(Wording.shortID($0)) }.joined(separator: ", ")
        case .retiringUntil(let ids, let date):
            "kept " + ids.map { TextSafety.escaped(Wording.shortID($0)) }.joined(separator: ", ") + " until \(Timestamp.format(Int64(date.timeIntervalSince1970 * 1000)))"
        }
    }

    /// `1 created, 1 updated, 1 password changed` (zero counts left out).
    public static func summary(_ c: ReportCounts) -> String {
        let parts: [(Int, String)] = [(c.created, "created"), (c.updated, "updated"), (c.passwordChanged, "password changed"),
                                      (c.granted, "granted"), (c.revoked, "revoked"), (c.deleted, "deleted"), (c.adopted, "adopted"), (c.replaced, "replaced")]
        return parts.filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
    }
}

/// The report document: Apinizer's `deploymentResult` shape, extended but never renamed
/// (PRODUCT.md, Report), as pretty JSON with keys in the documented order.
public enum ReportJSONRenderer {
    public static func render(_ report: ApplyReport) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        return TextSafety.jsonSafe((try? encoder.encode(Document(report))) ?? Data("{}".utf8))
    }

    struct Document: Encodable {
        var success: Bool
        var deploymentResult: DeploymentResult
        var runId: String

        init(_ report: ApplyReport) {
            success = report.success
            deploymentResult = DeploymentResult(success: report.success, message: ReportWording.message(report),
                                                environmentResults: report.environments.map(Environment.init))
            runId = report.runID
        }
    }

    struct DeploymentResult: Encodable {
        var success: Bool
        var message: String
        var environmentResults: [Environment]
    }

    struct Environment: Encodable {
        var environmentName: String
        var success: Bool
        var message: String
        var changes: ReportCounts
        var operations: [Operation]
        /// Only when there are some (servers that assign ids): the documented shape stays.
        var conflicts: [Conflict]?
        var durationMilliseconds: Int?

        init(_ env: EnvironmentReport) {
            environmentName = env.environmentName
            success = env.success
            message = ReportWording.message(env)
            changes = env.changes
            operations = env.operations.map(Operation.init)
            conflicts = env.conflicts.isEmpty ? nil : env.conflicts.map(Conflict.init)
            durationMilliseconds = env.durationMilliseconds
        }
    }

    struct Conflict: Encodable {
        var username: String
        var project: String
        var serverIds: [String]
        var error: String

        init(_ c: ReportedConflict) {
            username = c.conflict.key.rawValue
            project = c.project
            serverIds = c.conflict.serverIDs
            error = ReportWording.conflict(c)
        }
    }

    struct Operation: Encodable {
        var username: String
        var action: ActionKind
        var success: Bool
        var project: String
        var status: OperationResult.Status
        var error: String?
        var grants: [String]?
        var fields: [String]?
        var note: String?

        init(_ op: OperationResult) {
            username = op.key
            action = op.action
            success = op.success
            project = op.project
            status = op.status
            error = ReportWording.error(op)
            grants = op.grants?.map(\.description)
            fields = op.fields
            note = ReportWording.note(op)
        }
    }
}
