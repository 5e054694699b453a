import CredOps

/// The words for the engine's values that every renderer shares: counts of planned changes and
/// guard-rail refusals. One place, so that text, markdown and JSON say the same thing.
public enum Wording {
    /// `3 to create`, `1 password`, `2 grants`.
    public static func planned(_ kind: ActionKind, _ n: Int) -> String {
        switch kind {
        case .adopt: "\(n) to adopt"
        case .create: "\(n) to create"
        case .replace: "\(n) to replace"
        case .update: "\(n) to update"
        case .secret: "\(n) password\(n == 1 ? "" : "s")"
        case .grant: "\(n) grant\(n == 1 ? "" : "s")"
        case .revoke: "\(n) revoke\(n == 1 ? "" : "s")"
        case .delete: "\(n) to delete"
        }
    }

    /// The kinds a plan's summary line names even when none is planned (the rest only when some are).
    static let alwaysListed: Set<ActionKind> = [.create, .update, .secret, .grant, .revoke, .delete]

    /// `1 to create, 0 to update, ...` in action order; with `all: false` only the kinds present.
    public static func planned(_ counts: PlanCounts, all: Bool) -> String {
        ActionKind.allCases.sorted()
            .filter { counts[$0] > 0 || (all && alwaysListed.contains($0)) }
            .map { planned($0, counts[$0]) }
            .joined(separator: ", ")
    }

    /// What stops apply, and which flag lifts it.
    public static func refusal(_ refusal: Refusal, environment: EnvironmentName) -> String {
        let env = TextSafety.escaped(environment.rawValue)
        switch refusal {
        case .deletesInProtectedEnvironment(let deletes):
            return "\(env) is protected: \(deletes) delete\(deletes == 1 ? "" : "s") planned; pass --allow-delete to allow them"
        case .moreDeletesThanLimit(let deletes, let limit):
            return "\(env): \(deletes) deletes planned, more than --max-deletes \(limit); pass --allow-mass-delete if that is intended"
        case .massDelete(let project, let deletes, let live):
            return "\(env): \(deletes) of \(live) credentials of project \(TextSafety.escaped(project.rawValue)) would be deleted (more than half); check the manifests, or pass --allow-mass-delete if that is intended"
        case .policyDeleteLimit(let policy, let deletes, let limit):
            return "\(env): \(deletes) deletes planned, more than policy \(TextSafety.escaped(policy)) allows (maxDeletes: \(limit)); no flag lifts it: delete in smaller steps, or change the policy in review"
        }
    }

    /// Why a change is planned: `managed by credops, no longer declared`. Secret states are
    /// worded without the secret's name (`changed since the last apply`); `secretName` puts it
    /// in front where the line does not say it already.
    public static func reason(_ reason: ChangeReason, secretName: String? = nil) -> String {
        switch reason {
        case .notYetManaged: return "exists on the server, not yet managed by credops"
        case .pinnedCredentialGone(let id):
            return "the credential credops managed under this name (id \(TextSafety.escaped(id))) is gone from the server; this one has its name"
        case .alreadyGranted: return "already granted on the server"
        case .secret(let state): return (secretName.map { $0 + " " } ?? "") + secret(state)
        case .redeploy(let message): return "redeploy: \(TextSafety.escaped(message))"
        case .noLongerDeclared: return "managed by credops, no longer declared"
        case .notDeclaredPruneAll: return "not declared (prune: all)"
        case .grantNoLongerDeclared: return "granted by credops, no longer declared"
        case .secretNeverDelivered: return "secret never delivered"
        case .rotationDue(let age, let after): return "secret \(age) day\(age == 1 ? "" : "s") old, rotate after \(after)d"
        case .rotationRequested: return "rotation requested"
        case .fieldsNeedANewSecret: return "fields change, and the API takes them only with the secret: a new one is made and delivered"
        case .secretNotDeliveredByCredops:
            return "exists on the server; its secret was generated for whoever made it, so credops delivers nothing and leaves it alone (replace it with credops rotate)"
        case .replacedEarlier(let current):
            return "replaced" + (current.map { " by \(TextSafety.escaped(Wording.shortID($0)))" } ?? "") + "; its overlap is over"
        }
    }

    /// `sec_9a1f…`: enough of a server id to tell it apart in a line.
    public static func shortID(_ id: String) -> String {
        id.count > 10 ? String(id.prefix(8)) + "…" : id
    }

    public static func secret(_ state: SecretState) -> String {
        switch state {
        case .changedSinceLastApply: "changed since the last apply"
        case .differsOnServer: "differs from the one on the server (changed there)"
        case .notSetByCredops: "not set by credops yet"
        case .neverAppliedByCredops: "never applied by credops"
        }
    }

    /// Every refusal of an environment, one per element.
    public static func refusals(_ env: EnvironmentPlan) -> [String] {
        env.refusals.map { refusal($0, environment: env.environment) }
    }
}
