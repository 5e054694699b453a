import CredOps
import Foundation

/// `credops expiring` in its three formats: the credentials that expire or are due for
/// rotation within the window, soonest first, and the environments that could not be read.
public struct ExpiryRenderer {
    public let style: TextStyle
    /// The window, in seconds (for the summary line and the JSON document).
    public let window: Int

    public init(style: TextStyle, window: Int) {
        self.style = style
        self.window = window
    }

    /// `staging  payments  refund-tester  expires 2026-12-31  in 30 days`, one line each.
    public func text(_ items: [ExpiringCredential], failures: [(EnvironmentName, String)]) -> String {
        var out: [String] = []
        let widths = [items.map { shown($0.environment.rawValue).count }.max() ?? 0, items.map { shown($0.project.rawValue).count }.max() ?? 0,
                      items.map { shown($0.key.rawValue).count }.max() ?? 0, items.map { Self.what($0).count }.max() ?? 0]
        for item in items {
            let what = Self.what(item)
            let when = Self.when(item)
            out.append("\(shown(item.environment.rawValue).padded(widths[0]))   \(shown(item.project.rawValue).padded(widths[1]))   "
                       + "\(shown(item.key.rawValue).padded(widths[2]))   \(what.padded(widths[3]))   \(item.isPast ? style.red(when) : style.yellow(when))"
                       + (item.kind == .rotationDue ? style.dim("  (secret \(item.ageDays ?? 0) days old, rotateAfter \(item.rotateAfterDays ?? 0)d)") : ""))
        }
        for (environment, failure) in failures {
            out.append("\(style.red("✗")) \(shown(environment.rawValue)): cannot read: \(shown(failure))")
        }
        out.append(summary(items, failures: failures.count))
        return out.joined(separator: "\n")
    }

    /// `2 credentials expire within 30 days (1 already expired).`
    public func summary(_ items: [ExpiringCredential], failures: Int) -> String {
        let within = DurationText.long(window)
        var line: String
        let n = items.count
        let s = n == 1 ? "" : "s"
        if items.isEmpty {
            line = "No credential expires or is due for rotation within \(within)."
        } else if items.allSatisfy({ $0.kind == .expires }) {
            line = "\(n) credential\(s) expire\(n == 1 ? "s" : "") within \(within)"
        } else if items.allSatisfy({ $0.kind == .rotationDue }) {
            line = "\(n) generated secret\(s) \(n == 1 ? "is" : "are") due for rotation within \(within)"
        } else {
            line = "\(n) credential\(s) expire or are due for rotation within \(within)"
        }
        let past = items.filter(\.isPast).count
        if !items.isEmpty { line += past > 0 ? " (\(past) already past)." : "." }
        if failures > 0 { line += " \(failures) environment\(failures == 1 ? "" : "s") could not be read." }
        return line
    }

    /// A stable JSON document: `{formatVersion, within, credentials: [...], failures: [...]}`.
    public func json(_ items: [ExpiringCredential], failures: [(EnvironmentName, String)], at now: Date) -> Data {
        let object: [String: Any] = [
            "formatVersion": 1,
            "checkedAt": Timestamp.format(Int64(now.timeIntervalSince1970 * 1000)),
            "withinSeconds": window,
            "credentials": items.map { item -> [String: Any] in
                var entry: [String: Any] = [
                    "environment": item.environment.rawValue, "project": item.project.rawValue, "name": item.key.rawValue,
                    "kind": item.kind.rawValue, "due": Timestamp.format(item.due), "daysLeft": item.daysLeft, "past": item.isPast,
                ]
                if let age = item.ageDays { entry["secretAgeDays"] = age }
                if let after = item.rotateAfterDays { entry["rotateAfterDays"] = after }
                return entry
            },
            "failures": failures.map { ["environment": $0.0.rawValue, "message": $0.1] },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return TextSafety.jsonSafe(data)
    }

    /// A table for an issue or a chat message.
    public func markdown(_ items: [ExpiringCredential], failures: [(EnvironmentName, String)]) -> String {
        var out = ["### Credentials expiring within \(DurationText.long(window))", ""]
        if !items.isEmpty {
            out.append("| environment | project | credential | | when |")
            out.append("|---|---|---|---|---|")
            for item in items {
                out.append("| \(Self.cell(item.environment.rawValue)) | \(Self.cell(item.project.rawValue)) | "
                           + "\(Self.cell(item.key.rawValue)) | \(Self.what(item)) | \(item.isPast ? "**\(Self.when(item))**" : Self.when(item)) |")
            }
            out.append("")
        }
        for (environment, failure) in failures {
            out.append("- ✗ \(MarkdownRenderer.code(environment.rawValue)): cannot read: \(MarkdownRenderer.code(failure))")
        }
        if !failures.isEmpty { out.append("") }
        out.append(summary(items, failures: failures.count))
        return out.joined(separator: "\n")
    }

    /// A name in a table cell: a code span whose `|` cannot end the cell.
    static func cell(_ text: String) -> String { MarkdownRenderer.code(text).replacingOccurrences(of: "|", with: "\\|") }

    /// `expires 2026-12-31`, `expired 2026-11-20`, `rotate by 2027-01-05`, `rotation due 2026-11-20`.
    public static func what(_ item: ExpiringCredential) -> String {
        let day = String(Timestamp.format(item.due).prefix(10))
        switch (item.kind, item.isPast) {
        case (.expires, false): return "expires \(day)"
        case (.expires, true): return "expired \(day)"
        case (.rotationDue, false): return "rotate by \(day)"
        case (.rotationDue, true): return "rotation due \(day)"
        }
    }

    /// `in 30 days`, `today`, `11 days ago`.
    public static func when(_ item: ExpiringCredential) -> String {
        switch item.daysLeft {
        case 0: return "today"
        case 1: return "in 1 day"
        case 2...: return "in \(item.daysLeft) days"
        case -1: return "1 day ago"
        default: return "\(-item.daysLeft) days ago"
        }
    }
}
