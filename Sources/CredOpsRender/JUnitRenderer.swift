import CredOps

/// An apply report as JUnit XML for CI dashboards: one test case per environment; a failed
/// environment is a failure with its message and the failed operations.
public enum JUnitRenderer {
    public static func render(_ report: ApplyReport) -> String {
        let envs = report.environments
        let failures = envs.filter { !$0.success }.count
        let total = envs.reduce(0.0) { $0 + Double($1.durationMilliseconds ?? 0) / 1000 }
        var out = [#"<?xml version="1.0" encoding="UTF-8"?>"#]
        out.append(#"<testsuites name="credops apply" tests="\#(envs.count)" failures="\#(failures)" errors="0" time="\#(seconds(total))">"#)
        out.append(#"  <testsuite name="credops apply" tests="\#(envs.count)" failures="\#(failures)" errors="0" skipped="0" time="\#(seconds(total))">"#)
        for env in envs {
            let time = seconds(Double(env.durationMilliseconds ?? 0) / 1000)
            out.append(#"    <testcase classname="credops.apply" name="\#(escape(env.environmentName))" time="\#(time)">"#)
            let message = ReportWording.message(env)
            if env.success {
                out.append("      <system-out>\(escape(message))</system-out>")
            } else {
                let details = env.operations.filter { $0.status != .applied }.map { op -> String in
                    let reason = ReportWording.error(op) ?? op.status.rawValue
                    return "\(op.project)/\(op.key) \(op.action.rawValue) " + (op.status == .failed ? "failed: \(reason)" : reason)
                }.joined(separator: "\n")
                out.append(#"      <failure message="\#(escape(message))" type="DeploymentFailed">\#(escape(details.isEmpty ? message : details))</failure>"#)
            }
            out.append("    </testcase>")
        }
        out.append("  </testsuite>")
        out.append("</testsuites>")
        return out.joined(separator: "\n")
    }

    static func seconds(_ s: Double) -> String { String(format: "%.3f", s) }

    static func escape(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
            default:
                // Characters XML 1.0 does not allow are dropped.
                if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) { continue }
                // C1 controls, line separators and bidi marks: as character references, inert.
                if TextSafety.isUnsafe(scalar) {
                    out += "&#x" + String(scalar.value, radix: 16, uppercase: true) + ";"
                    continue
                }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
