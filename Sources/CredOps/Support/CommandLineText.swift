import Foundation

/// A command line as it may be stored (run history, lock holders) and shown: the password of
/// any URL (`postgres://u:PASSWORD@host`), `password=` query values, and the values of options
/// that carry secrets (`--token T`, `--client-secret=S`) replaced by `(redacted)`.
public enum CommandLineText {
    /// Option names (without dashes) whose value is a secret: any that names a token,
    /// password, secret or key.
    public static func carriesSecret(_ option: String) -> Bool {
        let name = option.lowercased()
        // Flags (`--allow-...`, `--no-...`) take no value; paths are not secrets.
        if name.hasPrefix("allow") || name.hasPrefix("no-") { return false }
        if ["root", "file", "dir", "directory", "path"].contains(where: { name.hasSuffix($0) }) { return false }
        return ["token", "password", "passwd", "secret", "key", "credential"].contains { name.contains($0) }
    }

    /// A command line stored earlier as one string, redacted as `redacted(_:)` does (older
    /// versions stored it as typed).
    public static func redacted(storedCommand: String) -> String {
        redacted(storedCommand.split(separator: " ", omittingEmptySubsequences: false).map(String.init), limit: 400)
    }

    /// `credops apply ... --state postgres://u:(redacted)@db/credops`, at most `limit` characters.
    public static func redacted(_ arguments: [String], limit: Int = 300) -> String {
        var out: [String] = []
        var hideNext = false
        for argument in arguments {
            if hideNext {
                out.append(Redactor.marker)
                hideNext = false
                continue
            }
            if argument.hasPrefix("-"), !argument.hasPrefix("---") {
                let body = argument.drop { $0 == "-" }
                if let equals = body.firstIndex(of: "=") {
                    let name = body[..<equals]
                    if carriesSecret(String(name)) {
                        out.append(String(argument.prefix(argument.count - body.count)) + name + "=" + Redactor.marker)
                        continue
                    }
                } else if carriesSecret(String(body)) {
                    hideNext = true
                }
            }
            out.append(TextSafety.escaped(redactedURLs(argument)))
        }
        let text = out.joined(separator: " ")
        return text.count > limit ? String(text.prefix(limit)) + "…" : text
    }

    /// `text` with the password of every `scheme://user:password@` replaced, and the values of
    /// `password=`-like query parameters.
    public static func redactedURLs(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            // The authority ends at the first '/', '?' or '#'; user-info ends at its last '@'.
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result += authority[..<colon] + ":" + Redactor.marker + "@"
                rest = rest[authority.index(after: at)...]
            }
        }
        return Redactor.redactJSONValues(result + rest)
    }

    /// The passwords written in URLs of `text` (percent-decoded as well as raw), so that
    /// output can be redacted of them.
    public static func urlPasswords(_ text: String) -> [Secret] {
        var secrets: [Secret] = []
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                let raw = String(authority[authority.index(after: colon)..<at])
                if !raw.isEmpty {
                    secrets.append(Secret(raw))
                    if let decoded = raw.removingPercentEncoding, decoded != raw { secrets.append(Secret(decoded)) }
                }
            }
        }
        return secrets
    }
}
