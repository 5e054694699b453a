import CredOps

/// A plan for people: one block per environment and project, one line per change with its
/// marker (`+ ~ ± - ·`), the changed fields old → new, and a summary line.
public struct PlanTextRenderer: Sendable {
    public var style: TextStyle
    public var schemas: [String: ResourceSchema]

    public init(style: TextStyle, schemas: [String: ResourceSchema]) {
        self.style = style
        self.schemas = schemas
    }

    public func render(_ plan: Plan) -> String {
        var out: [String] = []
        for env in plan.environments {
            out += renderEnvironment(env)
            out.append("")
        }
        out.append(summary(plan))
        return out.joined(separator: "\n")
    }

    func renderEnvironment(_ env: EnvironmentPlan) -> [String] {
        var out: [String] = []
        let head = "\(style.bold(env.environment.rawValue)) · \(env.provider)\(env.providerSource.map { " (\(shown($0)))" } ?? "")\(env.isProtected ? " · protected" : "")"
        if let failure = env.failure {
            out.append(head)
            out.append("  \(style.red("✗")) cannot plan: \(shown(failure))")
            return out
        }
        if env.projects.isEmpty {
            out.append(head)
            out.append("  no projects declared for this environment")
        }
        for project in env.projects {
            let renamed = project.serverProject != project.project ? " (\(project.serverProject.shown) on the server)" : ""
            out.append("\(head) · project \(project.project.shown)\(renamed)")
            out += renderProject(project, schema: schemas[env.provider])
        }
        for refusal in Wording.refusals(env) {
            out.append("  \(style.red("✗ refused:")) \(refusal)")
        }
        for item in env.expiring ?? [] {
            let when = ExpiryRenderer.when(item)
            out.append("  \(style.yellow("!")) \(shown(item.key.rawValue)) \(ExpiryRenderer.what(item)) (\(when))"
                       + (item.project != env.projects.first?.project || env.projects.count > 1 ? style.dim(" · project \(shown(item.project.rawValue))") : "")
                       + (item.kind == .rotationDue && !item.isPast ? style.dim(" · the apply after that replaces it") : ""))
        }
        return out
    }

    func renderProject(_ project: ProjectPlan, schema: ResourceSchema?) -> [String] {
        var out: [String] = []
        let width = min(28, max(12, (project.changes.map(\.key.shown.count) + project.leftAlone.map(\.shown.count)).max() ?? 12))
        // `-/+` is three columns wide; other markers are padded to it only when a replace is there.
        let markerWidth = project.changes.contains { $0.action.kind == .replace } ? 3 : 1
        let pad = String(repeating: " ", count: markerWidth - 1)
        let indent = String(repeating: " ", count: 4 + markerWidth - 1 + width + 1 + 10)
        for change in project.changes {
            let (marker, word) = Self.marker(change.action.kind)
            let colored = colorize(marker, change.action.kind)
            let lead = "  \(colored)\(marker.count < markerWidth ? pad : "") \(change.key.shown.padded(width)) \(word.padded(9))"
            let details = self.details(change, schema: schema)
            out.append(lead + (details.first.map { " " + $0 } ?? ""))
            for line in details.dropFirst() { out.append(indent + line) }
        }
        for (id, grants) in project.unmanagedGrants.sorted(by: { $0.key < $1.key }) {
            out.append("  \(style.dim("·"))\(pad) \(id.shown.padded(width)) \(style.dim("grants not given by credops, left alone: " + grants.map(\.shown).joined(separator: ", ")))")
        }
        for id in project.leftAlone {
            out.append("  \(style.dim("·"))\(pad) \(id.shown.padded(width)) \(style.dim(project.prune == .none ? "not declared, left alone (prune: none)" : "unmanaged, left alone"))")
        }
        for conflict in project.conflicts {
            out.append("  \(style.red("✗"))\(pad) \(conflict.key.shown.padded(width)) \(style.red("not planned: \(conflict.serverIDs.count) credentials on the server have this name (ids \(conflict.serverIDs.map(shown).joined(separator: ", "))) and credops manages none of them; delete or rename all but one there"))")
        }
        for (key, ids) in project.namesakes.sorted(by: { $0.key < $1.key }) {
            out.append("  \(style.dim("·"))\(pad) \(key.shown.padded(width)) \(style.dim("also on the server under this name, not managed, left alone: id \(ids.map(shown).joined(separator: ", "))"))")
        }
        for note in project.retiring {
            let when = note.deleteAfter.map { "deleted after \(Timestamp.format(Int64($0.timeIntervalSince1970 * 1000)))" }
                ?? "kept until a new secret is delivered"
            out.append("  \(style.dim("·"))\(pad) \(note.key.shown.padded(width)) \(style.dim("replaced, retiring: id \(shown(note.serverID)), \(when)"))")
        }
        for unsafe in project.unaddressable {
            out.append("  \(style.yellow("!"))\(pad) \(shown(unsafe.name).padded(width)) \(style.yellow("left alone: the name \(shown(unsafe.problem)); credops never sends it in a request"))")
        }
        if project.changes.isEmpty {
            out.append("  no changes (\(project.inSync) credential\(project.inSync == 1 ? "" : "s") in sync)")
        }
        return out
    }

    static func marker(_ kind: ActionKind) -> (String, String) {
        switch kind {
        case .create: ("+", "create")
        case .replace: ("-/+", "replace")
        case .grant: ("+", "grant")
        case .update: ("~", "update")
        case .secret: ("±", "password")
        case .revoke: ("-", "revoke")
        case .delete: ("-", "delete")
        case .adopt: ("=", "adopt")
        }
    }

    private func colorize(_ marker: String, _ kind: ActionKind) -> String {
        switch kind {
        case .create, .grant: style.green(marker)
        case .update: style.yellow(marker)
        case .replace: style.red("-/") + style.green("+")
        case .secret: style.magenta(marker)
        case .revoke, .delete: style.red(marker)
        case .adopt: style.cyan(marker)
        }
    }

    /// The text after the action word; the first element goes on the change's line.
    func details(_ change: Change, schema: ResourceSchema?) -> [String] {
        switch change.action {
        case .create(let after, _):
            let summary = (schema?.fields.filter(\.isSummary) ?? []).compactMap { spec -> String? in
                guard let value = after[spec.name], value != spec.defaultValue else { return nil }
                return "\(spec.name) \(Self.short(value))"
            }
            var line = summary.joined(separator: " · ")
            if let delivery = change.delivery { line += (line.isEmpty ? "" : " ") + "→ deliver \(TextSafety.escaped(delivery.shown))" }
            return [line]
        case .replace(_, _, let fields, let forcedBy, _):
            // Each field that forces the replace says so, as Terraform's "forces replacement".
            var lines = fields.map { Self.fieldLine($0) + (forcedBy.contains($0.field) ? " (\($0.field) cannot change)" : "") }
            if let reason = change.reason, forcedBy.isEmpty { lines.insert(Wording.reason(reason), at: 0) }
            if let delivery = change.delivery {
                let overlap = delivery.overlapSeconds > 0 ? "; the old one stays \(DurationText.short(delivery.overlapSeconds)) more" : ""
                lines.append(schema?.capabilities.identity == .keyIsID
                    ? "new one delivered to \(TextSafety.escaped(delivery.shown)); the old one is deleted first (one credential per \(schema?.identifierField ?? "key"))"
                    : "new one delivered to \(TextSafety.escaped(delivery.shown)) before the old is deleted\(overlap)")
            }
            return lines
        case .update(_, _, let fields, _, let passwordChanged):
            var lines = fields.map(Self.fieldLine)
            if passwordChanged {
                let state: String = if case .secret(let s)? = change.reason { Wording.secret(s) } else { "changed" }
                lines.append("\(schema?.secretField ?? "secret"): \(state)")
            }
            if lines.isEmpty { lines.append(change.reason.map { Wording.reason($0) } ?? "sent again") }
            if let delivery = change.delivery {
                lines.append("new \(schema?.secretField ?? "secret") made by credops, set, then delivered to \(TextSafety.escaped(delivery.shown)) "
                             + "(the old one stops working when the new one is set)")
            }
            return lines
        case .setSecret:
            var lines = [change.reason.map { Wording.reason($0) } ?? Wording.secret(.changedSinceLastApply)]
            if let delivery = change.delivery {
                lines.append("new one made by credops, set, then delivered to \(TextSafety.escaped(delivery.shown)) "
                             + "(the old one stops working when the new one is set)")
            }
            return lines
        case .grant(let grants), .revoke(let grants):
            return grants.map(\.shown)
        case .delete:
            return [change.reason.map { Wording.reason($0) } ?? ""]
        case .adopt(_, let grants, let credential):
            var text = credential ? "exists on the server; credops will manage it" : "already on the server; credops will manage"
            if !grants.isEmpty { text += (credential ? " and its grants " : " grants ") + grants.map(\.shown).joined(separator: ", ") }
            if case .secretNotDeliveredByCredops? = change.reason { return [text, Wording.reason(.secretNotDeliveredByCredops)] }
            return [text]
        }
    }

    /// `enabled: true → false`, `ipList: +10.1.0.0/16 −10.2.0.0/16`.
    static func fieldLine(_ change: FieldChange) -> String {
        if case .set(let before) = change.before, case .set(let after) = change.after {
            let added = after.filter { !before.contains($0) }.map { "+" + shown($0) }
            let removed = before.filter { !after.contains($0) }.map { "−" + shown($0) }
            return "\(change.field): " + (added + removed).joined(separator: " ")
        }
        return "\(change.field): \(change.before.display) → \(change.after.display)"
    }

    static func short(_ value: FieldValue) -> String {
        switch value {
        case .set(let items): return items.map(shown).joined(separator: ",")
        case .instant(let ms?): return Timestamp.formatDate(ms)
        default: return value.display
        }
    }

    /// `Plan: 1 to create, 1 to update, ... in 1 of 2 environments.`
    public func summary(_ plan: Plan) -> String {
        let c = plan.counts
        let changed = plan.environments.filter(\.hasChanges).count
        let failed = plan.environments.filter { $0.failure != nil }.count
        var text: String
        if c.total == 0 {
            text = "No changes. "
            let ok = plan.environments.count - failed
            text += ok == 1 ? "1 environment is in sync with the manifests." : "\(ok) environments are in sync with the manifests."
        } else {
            text = "Plan: " + Wording.planned(c, all: true) + ", in \(changed) of \(plan.environments.count) environment\(plan.environments.count == 1 ? "" : "s")."
        }
        if failed > 0 { text += " " + style.red("\(failed) environment\(failed == 1 ? "" : "s") could not be planned.") }
        let refused = plan.environments.filter { !$0.refusals.isEmpty }.count
        if refused > 0 { text += " " + style.red("Refused in \(refused) environment\(refused == 1 ? "" : "s") (see above).") }
        return text
    }
}
