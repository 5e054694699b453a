import CredOps
import Foundation

/// A plan as a stable, versioned JSON document for tools. Never a secret, never a fingerprint.
public enum PlanJSONRenderer {
    /// - Parameter schemas: the providers' schemas by name, for the secret's name in reasons.
    public static func render(_ plan: Plan, schemas: [String: ResourceSchema] = [:]) -> Data {
        let object: [String: Any] = [
            "formatVersion": Plan.formatVersion,
            "createdAt": Timestamp.format(Int64(plan.createdAt.timeIntervalSince1970 * 1000)),
            "hasChanges": plan.hasChanges,
            "hasErrors": plan.hasErrors,
            "summary": counts(plan.counts),
            "environments": plan.environments.map { environment($0, secretName: schemas[$0.provider]?.secretField ?? "secret") },
            "drift": drift(plan),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return TextSafety.jsonSafe(data)
    }

    /// What a scheduled drift check alerts on: credentials whose live values or grants differ
    /// from the manifests (field by field), and what exists on the servers that nobody declares.
    static func drift(_ plan: Plan) -> [String: Any] {
        var credentials: [[String: Any]] = []
        var unmanaged: [[String: String]] = []
        var unmanagedGrants: [[String: Any]] = []
        for env in plan.environments {
            for project in env.projects {
                for (id, changes) in Dictionary(grouping: project.changes, by: \.key).sorted(by: { $0.key < $1.key }) {
                    var entry: [String: Any] = ["environment": env.environment.rawValue, "project": project.project.rawValue,
                                                "username": id.rawValue, "actions": changes.map(\.action.kind.rawValue)]
                    var fields: [String] = []
                    for change in changes {
                        switch change.action {
                        case .update(_, _, let changed, _, let passwordChanged):
                            fields += changed.map(\.field)
                            if passwordChanged { fields.append("password") }
                        case .setSecret: fields.append("password")
                        case .replace(_, _, let changed, let forcedBy, _):
                            fields += changed.map(\.field)
                            entry["forcesReplacement"] = forcedBy
                        case .grant(let g): entry["grantsMissing"] = g.map(grant)
                        case .revoke(let g): entry["grantsExtra"] = g.map(grant)
                        case .create: entry["missing"] = true
                        case .delete: entry["undeclared"] = true
                        case .adopt: break
                        }
                    }
                    entry["fields"] = fields
                    credentials.append(entry)
                }
                for id in project.leftAlone {
                    unmanaged.append(["environment": env.environment.rawValue, "project": project.project.rawValue, "username": id.rawValue])
                }
                for (id, grants) in project.unmanagedGrants.sorted(by: { $0.key < $1.key }) {
                    unmanagedGrants.append(["environment": env.environment.rawValue, "project": project.project.rawValue,
                                            "username": id.rawValue, "grants": grants.map(grant)])
                }
            }
        }
        return ["credentials": credentials, "unmanagedCredentials": unmanaged, "unmanagedGrants": unmanagedGrants,
                "hasDrift": !credentials.isEmpty]
    }

    static func counts(_ c: PlanCounts) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: ActionKind.allCases.map { ($0.rawValue, c[$0]) })
    }

    static func environment(_ env: EnvironmentPlan, secretName: String) -> [String: Any] {
        [
            "name": env.environment.rawValue,
            "provider": env.provider,
            "endpoint": env.endpoint,
            "protected": env.isProtected,
            "hasChanges": env.hasChanges,
            "failure": env.failure as Any? ?? NSNull(),
            "refusals": Wording.refusals(env),
            "summary": counts(env.counts),
            "projects": env.projects.map { project($0, secretName: secretName) },
            "expiring": (env.expiring ?? []).map { item -> [String: Any] in
                ["project": item.project.rawValue, "name": item.key.rawValue, "kind": item.kind.rawValue, "due": Timestamp.format(item.due),
                 "daysLeft": item.daysLeft]
            },
        ]
    }

    static func project(_ p: ProjectPlan, secretName: String) -> [String: Any] {
        [
            "project": p.project.rawValue,
            "serverProject": p.serverProject.rawValue,
            "prune": p.prune.rawValue,
            "liveCount": p.liveCount,
            "inSync": p.inSync,
            "changes": p.changes.map { change($0, secretName: secretName) },
            "unmanaged": p.leftAlone.map(\.rawValue),
            "unaddressable": p.unaddressable.map { ["name": $0.name, "problem": $0.problem] },
            "conflicts": p.conflicts.map { ["username": $0.key.rawValue, "serverIds": $0.serverIDs] as [String: Any] },
            "namesakes": Dictionary(uniqueKeysWithValues: p.namesakes.map { ($0.key.rawValue, $0.value) }),
            "unmanagedGrants": Dictionary(uniqueKeysWithValues: p.unmanagedGrants.map { ($0.key.rawValue, $0.value.map(grant)) }),
            "retiring": p.retiring.map { note -> [String: Any] in
                ["username": note.key.rawValue, "serverId": note.serverID,
                 "deleteAfter": note.deleteAfter.map { Timestamp.format(Int64($0.timeIntervalSince1970 * 1000)) } as Any? ?? NSNull()]
            },
        ]
    }

    static func change(_ c: Change, secretName: String) -> [String: Any] {
        var o: [String: Any] = ["username": c.key.rawValue, "action": c.action.kind.rawValue]
        // An update says which of its parts the reason is about; a password change is about the secret only.
        if let reason = c.reason { o["reason"] = Wording.reason(reason, secretName: c.action.kind == .update ? secretName : nil) }
        if let at = c.declaredAt { o["declaredAt"] = at.description }
        if let id = c.serverID { o["serverId"] = id }
        if let delivery = c.delivery {
            o["deliver"] = ["to": delivery.shown, "overlapSeconds": delivery.overlapSeconds] as [String: Any]
        }
        switch c.action {
        case .create(let after, _):
            o["after"] = fields(after)
        case .replace(let before, let after, let changed, let forcedBy, _):
            o["fields"] = changed.map { ["field": $0.field, "before": value($0.before), "after": value($0.after)] }
            o["forcedBy"] = forcedBy
            o["before"] = fields(before)
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
        case .setSecret:
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
