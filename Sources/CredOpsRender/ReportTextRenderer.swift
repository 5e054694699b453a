import CredOps

/// The end of an apply for people: one line per environment, failures with their reasons, and
/// a last line that says what happened.
public struct ReportTextRenderer: Sendable {
    public var style: TextStyle

    public init(style: TextStyle) { self.style = style }

    public func render(_ report: ApplyReport, reportFile: String?) -> String {
        var out: [String] = [""]
        for env in report.environments {
            if env.success {
                out.append("\(style.green("✓")) \(shown(env.environmentName)): \(shown(ReportWording.message(env)))")
            } else {
                let failed = env.failed
                let headline = failed.isEmpty && env.conflicts.isEmpty ? shown(ReportWording.message(env))
                    : env.conflicts.isEmpty ? "\(failed.count) of \(env.operations.count) operations failed"
                    : "\(env.conflicts.count) credential\(env.conflicts.count == 1 ? "" : "s") not applied" + (failed.isEmpty ? "" : ", \(failed.count) of \(env.operations.count) operations failed")
                out.append("\(style.red("✗")) \(shown(env.environmentName)): \(headline)")
                for conflict in env.conflicts.prefix(20) {
                    out.append("    \(shown(conflict.conflict.key.rawValue)): \(shown(ReportWording.conflict(conflict)))")
                }
                for op in failed.prefix(20) {
                    out.append("    \(shown(op.key)) \(op.action.rawValue): \(shown(ReportWording.error(op) ?? "failed"))")
                }
                if failed.count > 20 { out.append("    ... and \(failed.count - 20) more (see the report)") }
                let skipped = env.skipped.count
                if skipped > 0 { out.append("    \(skipped) operation\(skipped == 1 ? "" : "s") skipped") }
            }
        }
        out.append("")
        let envs = report.environments
        let failed = envs.filter { !$0.success }.count
        var last = failed == 0
            ? "Apply complete in \(envs.count) environment\(envs.count == 1 ? "" : "s")."
            : "\(failed) of \(envs.count) environment\(envs.count == 1 ? "" : "s") failed."
        if let reportFile { last += " Report written to \(reportFile)." }
        out.append(last)
        return out.joined(separator: "\n")
    }
}
