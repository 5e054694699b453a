import CredOps
import Foundation

/// A plan as a stable, versioned JSON document for tools. Never a secret, never a fingerprint.
public enum PlanJSONRenderer {
    public static func render(_ plan: Plan) -> Data {
        let object: [String: Any] = [
            "formatVersion": Plan.formatVersion,
            "createdAt": Timestamp.format(Int64(plan.createdAt.timeIntervalSince1970 * 1000)),
            "hasChanges": plan.hasChanges,
            "hasErrors": plan.hasErrors,
            "summary": counts(plan.counts),
            "environments": plan.environments.map(environment),
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    static func counts(_ c: PlanCounts) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: ActionKind.allCases.map { ($0.rawValue, c[$0]) })
    }

    static func environment(_ env: EnvironmentPlan) -> [String: Any] {
        [
            "name": env.environment.rawValue,
            "provider": env.provider,
            "endpoint": env.endpoint,
            "protected": env.isProtected,
            "hasChanges": env.hasChanges,
            "failure": env.failure as Any? ?? NSNull(),
            "refusals": env.refusals,
            "summary": counts(env.counts),
            "projects": env.projects.map(project),
        ]
    }

    static func project(_ p: ProjectPlan) -> [String: Any] {
        [
            "project": p.project.rawValue,
            "serverProject": p.serverProject.rawValue,
            "prune": p.prune.rawValue,
            "liveCount": p.liveCount,
            "inSync": p.inSync,
            "changes": p.changes.map(change),
            "unmanaged": p.leftAlone.map(\.rawValue),
            "unmanagedGrants": Dictionary(uniqueKeysWithValues: p.unmanagedGrants.map { ($0.key.rawValue, $0.value.map(grant)) }),
        ]
    }

    static func change(_ c: Change) -> [String: Any] {
        var o: [String: Any] = ["username": c.username.rawValue, "action": c.action.kind.rawValue]
        if let reason = c.reason { o["reason"] = reason }
        if let at = c.declaredAt { o["declaredAt"] = at.description }
        switch c.action {
        case .create(let after, _):
            o["after"] = fields(after)
        case .update(let before, let after, let changed, _, let passwordChanged):
            o["fields"] = changed.map { ["field": $0.field, "before": value($0.before), "after": value($0.after)] }
            o["before"] = fields(before)
            o["after"] = fields(after)
            o["passwordChanged"] = passwordChanged
        case .grant(let g), .revoke(let g):
            o["grants"] = g.map(grant)
        case .delete(let before):
            o["before"] = fields(before)
        case .adopt(_, let g, let credential):
            o["grants"] = g.map(grant)
            o["credential"] = credential
        case .setPassword:
            break
        }
        return o
    }

    static func grant(_ g: AccessGrant) -> [String: String] { ["type": g.type, "name": g.name] }

    static func fields(_ r: Resource) -> [String: Any] { r.fields.mapValues(value) }

    static func value(_ v: FieldValue) -> Any {
        switch v {
        case .string(let s): s
        case .bool(let b): b
        case .set(let items): items
        case .instant(let ms): ms.map(Timestamp.format) as Any? ?? NSNull()
        }
    }
}
