import Foundation

/// Removes secrets from text that came from elsewhere (a server's error description).
///
/// Redaction goes by structure first: JSON inside the text has the values of sensitive keys
/// replaced, whatever they are. Then known secret values are replaced where they stand as a
/// whole word, so that a password `1` does not turn every `1` of a message into `(redacted)`.
public struct Redactor: Sendable {
    /// Keys whose values are never shown.
    public static let sensitiveKeys: Set<String> = [
        "password", "client_secret", "clientsecret", "access_token", "accesstoken", "refresh_token", "token",
        "secret", "authorization", "api_key", "apikey",
    ]

    private let secrets: [String]

    public init(secrets: [Secret] = []) {
        self.secrets = secrets.map { $0.reveal() }.filter { !$0.isEmpty }.sorted { $0.count > $1.count }
    }

    public func redact(_ text: String) -> String {
        var result = Self.redactJSONValues(text)
        for secret in secrets { result = Self.replaceWholeWord(secret, in: result) }
        return result
    }

    /// Replaces `"key": "value"` and `key=value` for sensitive keys.
    static func redactJSONValues(_ text: String) -> String {
        var output = ""
        var i = text.startIndex
        while i < text.endIndex {
            if text[i] == "\"", let (key, afterKey) = readQuoted(text, from: i) {
                output += text[i..<afterKey]
                i = afterKey
                var j = i
                while j < text.endIndex, text[j] == " " { j = text.index(after: j) }
                if Self.sensitiveKeys.contains(key.lowercased()), j < text.endIndex, text[j] == ":" {
                    output += text[i...j]
                    j = text.index(after: j)
                    while j < text.endIndex, text[j] == " " { output.append(" "); j = text.index(after: j) }
                    if j < text.endIndex, text[j] == "\"", let (_, afterValue) = readQuoted(text, from: j) {
                        output += "\"(redacted)\""
                        i = afterValue
                    } else {
                        var k = j
                        while k < text.endIndex, !",}] \n".contains(text[k]) { k = text.index(after: k) }
                        output += k > j ? "\"(redacted)\"" : ""
                        i = k
                    }
                }
                continue
            }
            output.append(text[i])
            i = text.index(after: i)
        }
        // Form-encoded or query-like `password=...`.
        for key in ["password", "client_secret", "access_token", "token"] {
            output = replaceFormValue(key, in: output)
        }
        return output
    }

    private static func readQuoted(_ text: String, from start: String.Index) -> (String, String.Index)? {
        var value = ""
        var i = text.index(after: start)
        while i < text.endIndex {
            let c = text[i]
            if c == "\\" {
                i = text.index(after: i)
                guard i < text.endIndex else { return nil }
                value.append(text[i])
            } else if c == "\"" {
                return (value, text.index(after: i))
            } else {
                value.append(c)
            }
            i = text.index(after: i)
        }
        return nil
    }

    private static func replaceFormValue(_ key: String, in text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let range = rest.range(of: key + "=", options: .caseInsensitive) {
            let before = rest[..<range.lowerBound]
            let boundary = before.last.map { !$0.isLetter && !$0.isNumber && $0 != "_" } ?? true
            result += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            if boundary {
                let end = rest.firstIndex { $0 == "&" || $0 == " " || $0 == "\n" || $0 == "\"" || $0 == "," } ?? rest.endIndex
                if end > rest.startIndex { result += "(redacted)" }
                rest = rest[end...]
            }
        }
        return result + rest
    }

    /// Secrets shorter than this are redacted by structure only: replacing a short value
    /// everywhere would corrupt unrelated text (a password `1` in "1 of 2 failed").
    static let minimumReplaceLength = 6

    static func replaceWholeWord(_ secret: String, in text: String) -> String {
        guard secret.count >= minimumReplaceLength else { return text }
        return text.replacingOccurrences(of: secret, with: "(redacted)")
    }
}
