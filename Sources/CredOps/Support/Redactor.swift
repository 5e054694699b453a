import Foundation

/// Removes secrets from text: every secret of a run, in every form a server may echo it.
///
/// Two strengths, because redaction must not corrupt unrelated text (a password `1` must not
/// turn every `1` of "1 of 2 failed" into `(redacted)`):
/// - `redact(_:)`, for any text credops shows or stores (messages, reports, plans): the values
///   of sensitive JSON keys and form fields, and every secret of at least
///   `minimumReplaceLength` characters.
/// - `serverText(_:)`, for text a server supplied (error codes and descriptions, validation
///   fields, gateway names): stripped of control characters, and every secret replaced
///   whatever its length.
///
/// A secret is found raw and in any mix of the encodings a server may echo it in: percent
/// encoding (either case, `+` for a space), JSON string escapes (`\"`, `\\`, `\/`, `\uXXXX`
/// including surrogate pairs), HTML character references (`&amp;`, `&#39;`, `&#x27;`), and,
/// for long secrets, base64 (standard and URL-safe, at any alignment inside a longer
/// encoded string).
public struct Redactor: Sendable {
    /// Keys whose values are never shown.
    public static let sensitiveKeys: Set<String> = [
        "password", "client_secret", "clientsecret", "access_token", "accesstoken", "refresh_token", "token",
        "secret", "authorization", "api_key", "apikey",
    ]

    /// What replaces a secret.
    public static let marker = "(redacted)"

    /// Secrets shorter than this are replaced only inside server-supplied text (`serverText`):
    /// replacing a short value everywhere would corrupt unrelated text.
    public static let minimumReplaceLength = 6

    private let patterns: Patterns

    /// - Parameter secrets: every secret of the run (passwords, tokens, client secrets, the
    ///   state's database password); empty ones and repeats are ignored.
    public init(secrets: [Secret] = []) {
        patterns = Patterns(secrets.map { Array($0.reveal().utf8) })
    }

    /// True when there is no secret to look for (structural redaction still applies).
    public var isEmpty: Bool { patterns.all.isEmpty }

    /// A redactor for these secrets and those of `other`.
    public func adding(_ secrets: [Secret]) -> Redactor {
        Redactor(patterns: Patterns(patterns.all + secrets.map { Array($0.reveal().utf8) }))
    }

    private init(patterns: Patterns) { self.patterns = patterns }

    /// For text credops composes or shows: sensitive keys' values and long secrets replaced.
    public func redact(_ text: String) -> String {
        let structural = Self.redactJSONValues(text)
        return Self.replace(in: structural, patterns: patterns.long, base64: patterns.base64)
    }

    /// For text a server supplied: control characters replaced (see `TextSafety.stripped`),
    /// sensitive keys' values and every secret, short ones included, replaced.
    public func serverText(_ text: String, limit: Int = 2000) -> String {
        let structural = Self.redactJSONValues(TextSafety.stripped(text, limit: limit))
        return Self.replace(in: structural, patterns: patterns.allIndex, base64: patterns.base64)
    }

    /// Bytes of a document (a report, a saved plan) with long secrets replaced; the document's
    /// structure is untouched because the marker needs no escaping in JSON.
    public func redact(_ data: Data) -> Data {
        guard !patterns.long.isEmpty || !patterns.base64.isEmpty,
              let text = String(data: data, encoding: .utf8) else { return data }
        let result = Self.replace(in: text, patterns: patterns.long, base64: patterns.base64)
        return result == text ? data : Data(result.utf8)
    }

    // MARK: Patterns

    /// The secrets as byte strings, indexed by their first byte.
    struct Patterns: Sendable {
        var all: [[UInt8]]
        var long: Index
        var allIndex: Index
        /// Base64 renderings of long secrets (fixed strings, matched as they are).
        var base64: [[UInt8]]

        init(_ secrets: [[UInt8]]) {
            var seen = Set<[UInt8]>()
            all = secrets.filter { !$0.isEmpty && seen.insert($0).inserted }.sorted { $0.count > $1.count }
            let longOnes = all.filter { String(decoding: $0, as: UTF8.self).count >= Redactor.minimumReplaceLength }
            long = Index(longOnes)
            allIndex = Index(all)
            var b64 = Set<[UInt8]>()
            for secret in longOnes { for form in Self.base64Forms(secret) where form.count >= 8 { b64.insert(form) } }
            base64 = b64.sorted { $0.count > $1.count }
        }

        /// For each alignment inside a longer base64 string, the characters that depend on the
        /// secret's bytes alone; standard and URL-safe alphabets.
        static func base64Forms(_ secret: [UInt8]) -> [[UInt8]] {
            var forms: [[UInt8]] = []
            for k in 0..<3 {
                let encoded = Array(Data([UInt8](repeating: 0, count: k) + secret).base64EncodedString().utf8)
                let first = (8 * k + 5) / 6
                let end = (8 * (k + secret.count)) / 6
                guard end > first else { continue }
                let stable = Array(encoded[first..<min(end, encoded.count)])
                forms.append(stable)
                forms.append(stable.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "-") : $0 == UInt8(ascii: "/") ? UInt8(ascii: "_") : $0 })
            }
            return forms
        }
    }

    struct Index: Sendable {
        var byFirstByte: [[Int]] = Array(repeating: [], count: 256)
        var secrets: [[UInt8]]

        init(_ secrets: [[UInt8]]) {
            self.secrets = secrets
            for (i, s) in secrets.enumerated() { byFirstByte[Int(s[0])].append(i) }
        }

        var isEmpty: Bool { secrets.isEmpty }
    }

    // MARK: Matching

    /// Replaces every occurrence of every pattern, in any mix of encodings, by the marker.
    static func replace(in text: String, patterns: Index, base64: [[UInt8]]) -> String {
        guard !patterns.isEmpty || !base64.isEmpty else { return text }
        let bytes = Array(text.utf8)
        let markerBytes = Array(marker.utf8)
        var out: [UInt8] = []
        var changed = false
        var i = 0
        while i < bytes.count {
            // An existing marker is kept whole, so redacting twice changes nothing.
            if bytes[i] == markerBytes[0], bytes.count - i >= markerBytes.count, Array(bytes[i..<(i + markerBytes.count)]) == markerBytes {
                out += markerBytes
                i += markerBytes.count
                continue
            }
            var matchedEnd: Int?
            // The secret as it is first (a secret may itself hold `%41`, `\n` or `&amp;`, which
            // decoding the text would turn into something else), then in any encoding.
            if !patterns.isEmpty {
                for candidate in patterns.byFirstByte[Int(bytes[i])] {
                    let secret = patterns.secrets[candidate]
                    if bytes.count - i >= secret.count, bytes[i..<(i + secret.count)].elementsEqual(secret) {
                        matchedEnd = i + secret.count
                        break
                    }
                }
            }
            if matchedEnd == nil, !patterns.isEmpty, let (first, afterFirst) = decodeUnit(bytes, at: i) {
                for candidate in patterns.byFirstByte[Int(first[0])] {
                    if let end = match(patterns.secrets[candidate], in: bytes, decodedFirst: first, after: afterFirst) {
                        matchedEnd = max(matchedEnd ?? 0, end)
                        break  // sorted longest first
                    }
                }
            }
            if matchedEnd == nil {
                for form in base64 where bytes.count - i >= form.count && bytes[i] == form[0] {
                    if bytes[i..<(i + form.count)].elementsEqual(form) {
                        matchedEnd = i + form.count
                        break
                    }
                }
            }
            if let end = matchedEnd {
                out += markerBytes
                i = end
                changed = true
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : text
    }

    /// The secret's bytes matched from a unit already decoded; the index after the match.
    private static func match(_ secret: [UInt8], in bytes: [UInt8], decodedFirst: [UInt8], after: Int) -> Int? {
        var s = 0
        var pending = decodedFirst[...]
        var j = after
        while s < secret.count {
            if pending.isEmpty {
                guard let (unit, next) = decodeUnit(bytes, at: j) else { return nil }
                pending = unit[...]
                j = next
            }
            // A raw `+` is a plus, or a space in form encoding.
            guard let c = pending.first, c == secret[s] || (c == UInt8(ascii: "+") && secret[s] == 32) else { return nil }
            pending = pending.dropFirst()
            s += 1
        }
        // A match must end on a unit boundary (not halfway through `%4` of `%41`).
        return pending.isEmpty ? j : nil
    }

    /// One byte or escape at `i`, decoded to the bytes it stands for.
    static func decodeUnit(_ b: [UInt8], at i: Int) -> ([UInt8], Int)? {
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "%"):
            if i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) { return ([h << 4 | l], i + 3) }
        case UInt8(ascii: "+"):
            return ([UInt8(ascii: "+")], i + 1)  // literal plus; a space written as + is handled below
        case UInt8(ascii: "\\"):
            if i + 1 < b.count {
                switch b[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "'"): return ([b[i + 1]], i + 2)
                case UInt8(ascii: "n"): return ([10], i + 2)
                case UInt8(ascii: "r"): return ([13], i + 2)
                case UInt8(ascii: "t"): return ([9], i + 2)
                case UInt8(ascii: "b"): return ([8], i + 2)
                case UInt8(ascii: "f"): return ([12], i + 2)
                case UInt8(ascii: "u"):
                    if let (scalar, next) = unicodeEscape(b, at: i) { return (Array(String(Character(scalar)).utf8), next) }
                default: break
                }
            }
        case UInt8(ascii: "&"):
            if let (scalar, next) = htmlReference(b, at: i) { return (Array(String(Character(scalar)).utf8), next) }
        default:
            break
        }
        return ([b[i]], i + 1)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 65...70: c - 55
        case 97...102: c - 87
        default: nil
        }
    }

    private static func hex4(_ b: [UInt8], _ at: Int) -> UInt32? {
        guard at + 4 <= b.count else { return nil }
        var v: UInt32 = 0
        for k in at..<(at + 4) {
            guard let h = hex(b[k]) else { return nil }
            v = v << 4 | UInt32(h)
        }
        return v
    }

    /// `\uXXXX`, or a surrogate pair `\uD83D\uDE00`.
    private static func unicodeEscape(_ b: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
        guard let high = hex4(b, i + 2) else { return nil }
        if (0xD800...0xDBFF).contains(high), b.count >= i + 12,
           b[i + 6] == UInt8(ascii: "\\"), b[i + 7] == UInt8(ascii: "u"), let low = hex4(b, i + 8), (0xDC00...0xDFFF).contains(low) {
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).map { ($0, i + 12) }
        }
        return Unicode.Scalar(high).map { ($0, i + 6) }
    }

    /// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#39;`, `&#x27;`.
    private static func htmlReference(_ b: [UInt8], at i: Int) -> (Unicode.Scalar, Int)? {
        guard let semicolon = b[i..<min(b.count, i + 12)].firstIndex(of: UInt8(ascii: ";")) else { return nil }
        let name = String(decoding: b[(i + 1)..<semicolon], as: UTF8.self)
        let named: [String: Unicode.Scalar] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'"]
        if let scalar = named[name] { return (scalar, semicolon + 1) }
        if name.hasPrefix("#x") || name.hasPrefix("#X"), let v = UInt32(name.dropFirst(2), radix: 16), let s = Unicode.Scalar(v) {
            return (s, semicolon + 1)
        }
        if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let s = Unicode.Scalar(v) { return (s, semicolon + 1) }
        return nil
    }

    // MARK: Structure

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
                        output += "\"\(marker)\""
                        i = afterValue
                    } else {
                        var k = j
                        while k < text.endIndex, !",}] \n".contains(text[k]) { k = text.index(after: k) }
                        output += k > j ? "\"\(marker)\"" : ""
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
                if end > rest.startIndex { result += marker }
                rest = rest[end...]
            }
        }
        return result + rest
    }
}
