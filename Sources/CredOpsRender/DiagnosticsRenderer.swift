import CredOps

/// Diagnostics as `path:line:col: error: message` lines and a closing summary.
public enum DiagnosticsRenderer {
    public static func lines(_ diagnostics: [Diagnostic], style: TextStyle = .plain) -> [String] {
        diagnostics.map { d in
            let place = d.location.map { "\($0): " } ?? d.address.map { "\($0): " } ?? ""
            let severity: String
            switch d.severity {
            case .error: severity = style.red("error:")
            case .warning: severity = style.yellow("warning:")
            case .note: severity = style.dim("note:")
            }
            return "\(shown(place))\(severity) \(shown(d.message))"
        }
    }

    /// `4 errors in 2 files; nothing was sent to any environment.`
    public static func summary(_ diagnostics: [Diagnostic]) -> String {
        let errors = diagnostics.filter(\.isError)
        let files = Set(errors.compactMap { $0.location?.file ?? $0.address })
        let count = "\(errors.count) error\(errors.count == 1 ? "" : "s")"
        let where_ = files.isEmpty ? "" : " in \(files.count) file\(files.count == 1 ? "" : "s")"
        return "\(count)\(where_); nothing was sent to any environment."
    }
}
