import CredOps

/// Plans and reports for pull-request comments: one collapsible section per environment with a
/// diff-style list of changes, a warning line when anything is deleted, and a footer with the
/// counts. Kept under a size limit (GitHub comments take 65,536 characters) by shortening the
/// longest lists cleanly, never mid-line or mid-block.
public struct MarkdownRenderer: Sendable {
    public var schemas: [String: ResourceSchema]
    /// The most characters a rendering may have.
    public var limit: Int

    public init(schemas: [String: ResourceSchema], limit: Int = 60_000) {
        self.schemas = schemas
        self.limit = limit
    }

    // MARK: Plans

    public func render(_ plan: Plan) -> String {
        // Shorten until it fits: each pass allows fewer change lines per environment.
        var maxLines = Int.max
        while true {
            let text = renderPlan(plan, maxLines: maxLines)
            if text.count <= limit || maxLines == 0 { return text }
            let longest = plan.environments.map { lines(for: $0).count }.max() ?? 0
            maxLines = maxLines == Int.max ? max(0, longest / 2) : maxLines / 2
        }
    }

    private func renderPlan(_ plan: Plan, maxLines: Int) -> String {
        let changing = plan.environments.filter(\.hasChanges).count
        let failed = plan.environments.filter { $0.failure != nil }.count
        var out = ["### credops plan: \(changing) of \(plan.environments.count) environment\(plan.environments.count == 1 ? "" : "s") change", ""]
        var warnings: [String] = []
        for env in plan.environments {
            let name = Self.html(env.environment.rawValue)
            if let failure = env.failure {
                out.append("**\(name)**: ❌ could not be planned: \(Self.code(failure))")
                out.append("")
                continue
            }
            let c = env.counts
            if c.total == 0 {
                out.append("**\(name)**: no changes")
                out.append("")
            } else {
                let deleting = c[.delete] > 0 ? " ⚠️" : ""
                out.append("<details><summary><b>\(name)</b>: \(Self.summary(c))\(deleting)</summary>")
                out.append("")
                out.append("```diff")
                let all = lines(for: env)
                out += all.prefix(maxLines)
                if all.count > maxLines {
                    out.append("# … \(all.count - maxLines) more lines; run `credops plan` or see the saved plan for all of them")
                }
                out.append("```")
                out.append("</details>")
                out.append("")
            }
            if c[.delete] > 0 {
                warnings.append("> ⚠️ \(c[.delete]) credential\(c[.delete] == 1 ? "" : "s") will be deleted in \(name).")
            }
            for refusal in Wording.refusals(env) { warnings.append("> ⛔ \(Self.code(refusal))") }
            for conflict in env.projects.flatMap(\.conflicts) {
                warnings.append("> ⛔ \(Self.code(conflict.key.rawValue)) in \(name) is the name of \(conflict.serverIDs.count) credentials on the server (\(Self.code(conflict.serverIDs.joined(separator: ", ")))) and credops manages none of them: not planned until all but one are deleted or renamed there.")
            }
            let unsafe = env.projects.flatMap(\.unaddressable)
            if !unsafe.isEmpty {
                warnings.append("> ⚠️ \(unsafe.count) live credential\(unsafe.count == 1 ? "" : "s") in \(name) \(unsafe.count == 1 ? "has a name" : "have names") credops cannot use safely (\(Self.code(unsafe.prefix(5).map { "\($0.name): \($0.problem)" }.joined(separator: "; ")))); left alone.")
            }
        }
        if !warnings.isEmpty {
            out += warnings
            out.append("")
        }
        let without = plan.environments.count - changing - failed
        out.append("\(plan.environments.count) environment\(plan.environments.count == 1 ? "" : "s") · \(changing) with changes · \(without) without · \(failed) failed")
        return out.joined(separator: "\n")
    }

    /// The diff lines of one environment: `+ name  create`, `~ name  field: old → new`, ...
    func lines(for env: EnvironmentPlan) -> [String] {
        let text = PlanTextRenderer(style: .plain, schemas: schemas)
        var out: [String] = []
        let multiProject = env.projects.filter { !$0.changes.isEmpty }.count > 1
        for project in env.projects where !project.changes.isEmpty {
            if multiProject { out.append(Self.fence("# project \(project.project.shown)")) }
            let width = min(28, max(12, project.changes.map(\.key.shown.count).max() ?? 12))
            for change in project.changes {
                // In a diff block only + and - are coloured; ~, ± and = read as neutral lines.
                let (lead, word) = PlanTextRenderer.marker(change.action.kind)
                let details = text.details(change, schema: schemas[env.provider])
                let prefix = "\(lead) \(change.key.shown.padded(width)) \(word.padded(9))"
                out.append(Self.fence(prefix + (details.first.map { " " + $0 } ?? "")))
                let indent = String(repeating: " ", count: prefix.count + 1)
                for line in details.dropFirst() { out.append(Self.fence(indent + line)) }
            }
        }
        return out
    }

    // MARK: Reports

    public func render(_ report: ApplyReport) -> String {
        var out = ["### credops apply: \(ReportWording.message(report))", ""]
        for env in report.environments {
            let name = Self.html(env.environmentName)
            let failed = env.failed
            if env.success {
                // A success message is credops' own count of changes, never a server's words.
                out.append("**\(name)**: ✅ \(Self.html(ReportWording.message(env)))")
                out.append("")
                continue
            }
            if env.operations.isEmpty {
                out.append("**\(name)**: ❌ \(Self.code(ReportWording.message(env)))")
                out.append("")
                continue
            }
            out.append("<details><summary><b>\(name)</b>: ❌ \(failed.count) of \(env.operations.count) operations failed</summary>")
            out.append("")
            out.append("```")
            for op in failed.prefix(50) { out.append(Self.fence("\(shown(op.key)) \(op.action.rawValue): \(shown(ReportWording.error(op) ?? "failed"))")) }
            if failed.count > 50 { out.append("… \(failed.count - 50) more in the report") }
            out.append("```")
            out.append("</details>")
            out.append("")
        }
        let envs = report.environments
        let failed = envs.filter { !$0.success }.count
        out.append("\(envs.count) environment\(envs.count == 1 ? "" : "s") · \(envs.count - failed) succeeded · \(failed) failed")
        var text = out.joined(separator: "\n")
        if text.count > limit { text = String(text.prefix(limit - 80)) + "\n```\n</details>\n\n(shortened; see the report file)" }
        return text
    }

    // MARK: Text helpers

    static func summary(_ c: PlanCounts) -> String {
        Wording.planned(c, all: false)
    }

    /// Text safe inside HTML tags (summary lines), control characters escaped.
    static func html(_ s: String) -> String {
        shown(s).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Text that may come from a server, as an inline code span: nothing in it is markdown or
    /// HTML there (no links, images, mentions or tags), and it cannot end the span early.
    static func code(_ s: String) -> String {
        "`" + shown(s).replacingOccurrences(of: "`", with: "'") + "`"
    }

    /// A line inside a fenced block must not close the fence.
    static func fence(_ s: String) -> String { shown(s).replacingOccurrences(of: "```", with: "'''") }
}
