import Foundation

/// Removes secrets from text: every secret of a run, in every form a server may echo it.
///
/// Two strengths, because redaction must not corrupt unrelated text (a password `1` must not
/// turn every `1` of "1 of 2 failed" into `(redacted)`), nor change what credops shows of data
/// (`"password": 3` in a JSON summary, `token=abc` in a description):
/// - `redact(_:)`, for any text credops shows or stores (messages, reports, plans, exports):
///   every secret of at least `minimumReplaceLength` characters, nothing else.
/// - `serverText(_:)`, for text a server supplied (error codes and descriptions, validation
///   fields, gateway names): every secret whatever its length, runs of five or more characters
///   of a long secret (a secret split over two fields), and the values of sensitive JSON keys
///   and form fields; then control characters replaced and the text cut to a length.
///
/// A secret is found raw and in any mix of the encodings a server may echo it in: percent
/// encoding (either case, twice applied, `+` for a space), JSON and C string escapes (`\"`,
/// `\/`, `\uXXXX` including surrogate pairs, `\xNN`), HTML character references; and, for long
/// secrets, upper and lower case, Unicode normalisation forms C and D, hex, and base64
/// (standard and URL-safe, at any alignment inside a longer encoded string).
///
/// Matching walks a sorted list of the secrets' byte strings, narrowing the candidates one
/// decoded byte at a time: the cost per position of the text is the length of the longest
/// partial match times log(number of secrets), however many secrets share a prefix.
public struct Redactor: Sendable {
    /// Keys whose values are never shown (in server text).
    public static let sensitiveKeys: Set<String> = [
        "password", "client_secret", "clientsecret", "access_token", "accesstoken", "refresh_token", "token",
        "secret", "authorization", "api_key", "apikey",
    ]

    /// What replaces a secret.
    public static let marker = "(redacted)"

    /// Secrets shorter than this are replaced only inside server-supplied text (`serverText`):
    /// replacing a short value everywhere would corrupt unrelated text.
    public static let minimumReplaceLength = 6

    /// Fragments of at least this many bytes of a long secret are redacted in server text.
    static let fragmentLength = 5

    /// The secrets in layers: the run's many passwords in one, and each later addition (an
    /// access token) in a small one of its own, so that adding a secret never prepares the
    /// thousands already known again.
    private let layers: [Patterns]
    /// Every secret known, to tell a new one from a repeat.
    private let known: Set<[UInt8]>

    /// - Parameter secrets: every secret of the run (passwords, tokens, client secrets, the
    ///   state's database password); empty ones and repeats are ignored.
    public init(secrets: [Secret] = []) {
        let patterns = Patterns(secrets.map { Array($0.reveal().utf8) })
        layers = [patterns]
        known = Set(patterns.secrets)
    }

    private init(layers: [Patterns], known: Set<[UInt8]>) {
        self.layers = layers
        self.known = known
    }

    /// True when there is no secret to look for (structural redaction still applies to server text).
    public var isEmpty: Bool { known.isEmpty }

    /// A redactor for these secrets and those of `secrets`; itself when it knows them all.
    public func adding(_ secrets: [Secret]) -> Redactor {
        var seen = Set<[UInt8]>()
        let new = secrets.map { Array($0.reveal().utf8) }.filter { !$0.isEmpty && !known.contains($0) && seen.insert($0).inserted }
        guard !new.isEmpty else { return self }
        // Layers merge like a binary counter: a layer is merged with the one before it when that
        // one is at most twice its size. A thousand secrets added one by one (a server's
        // generated secrets) then cost O(n log n) preparation in O(log n) layers; merging
        // everything whenever there were many layers cost O(n²) (half of a 1,000-credential
        // apply's CPU).
        var merged = layers + [Patterns(new)]
        while merged.count >= 2, merged[merged.count - 2].secrets.count <= 2 * merged[merged.count - 1].secrets.count {
            let last = merged.removeLast()
            let before = merged.removeLast()
            merged.append(Patterns(before.secrets + last.secrets))
        }
        return Redactor(layers: merged, known: known.union(new))
    }

    /// For text credops composes, shows or writes: long secrets replaced, nothing else touched.
    public func redact(_ text: String) -> String {
        layers.reduce(text) { Self.replace(in: $0, long: $1.long, short: nil, fragments: nil) }
    }

    /// For text a server supplied (see the type's documentation).
    public func serverText(_ text: String, limit: Int = 2000) -> String {
        // Secrets first, on the text as it came (a secret may hold a tab), cut to a size that
        // bounds the work but far above `limit`, so no secret is cut in half before it is found.
        let bounded = text.utf8.count > 64 * 1024 ? String(decoding: Array(text.utf8.prefix(64 * 1024)), as: UTF8.self) : text
        let found = layers.reduce(bounded) { Self.replace(in: $0, long: $1.long, short: $1.all, fragments: $1.fragments) }
        return TextSafety.stripped(Self.redactJSONValues(found), limit: limit)
    }

    /// Bytes of a document (a report, a saved plan) with long secrets replaced; the document's
    /// structure is untouched because the marker needs no escaping in JSON.
    public func redact(_ data: Data) -> Data {
        guard layers.contains(where: { !$0.long.isEmpty }), let text = String(data: data, encoding: .utf8) else { return data }
        let result = redact(text)
        return result == text ? data : Data(result.utf8)
    }

    // MARK: Patterns

    struct Patterns: Sendable {
        /// Every secret as given, without repeats.
        var secrets: [[UInt8]]
        /// Long secrets and their variant forms, sorted.
        var long: SortedPatterns
        /// Every secret, short ones included (and the long ones' forms), sorted.
        var all: SortedPatterns
        /// Every run of `fragmentLength` bytes of a long secret, packed.
        var fragments: Set<UInt64>

        init(_ given: [[UInt8]]) {
            var seen = Set<[UInt8]>()
            secrets = given.filter { !$0.isEmpty && seen.insert($0).inserted }
            var longForms: [[UInt8]] = []
            var fragments = Set<UInt64>()
            for secret in secrets where String(decoding: secret, as: UTF8.self).count >= Redactor.minimumReplaceLength {
                longForms += Self.forms(secret)
                if secret.count >= Redactor.fragmentLength {
                    for start in 0...(secret.count - Redactor.fragmentLength) {
                        fragments.insert(Self.pack(secret[start..<(start + Redactor.fragmentLength)]))
                    }
                }
            }
            long = SortedPatterns(longForms)
            all = SortedPatterns(longForms + secrets.flatMap { [$0] + Self.spaceAsPlus($0) })
            self.fragments = fragments
        }

        static func pack(_ bytes: ArraySlice<UInt8>) -> UInt64 {
            bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }

        /// The secret with a space written as `+` (form encoding), when it has a space.
        static func spaceAsPlus(_ secret: [UInt8]) -> [[UInt8]] {
            secret.contains(32) ? [secret.map { $0 == 32 ? UInt8(ascii: "+") : $0 }] : []
        }

        /// A long secret as it is and as a server may have changed it before echoing.
        static func forms(_ secret: [UInt8]) -> [[UInt8]] {
            let text = String(decoding: secret, as: UTF8.self)
            var forms: [[UInt8]] = [secret] + spaceAsPlus(secret)
            var variants = [text.uppercased(), text.lowercased()]
            // Normal forms differ only for text beyond ASCII.
            if secret.contains(where: { $0 >= 0x80 }) {
                variants += [text.precomposedStringWithCanonicalMapping, text.decomposedStringWithCanonicalMapping]
            }
            for variant in variants { forms.append(Array(variant.utf8)) }
            forms.append(Array(Hex.encode(secret).utf8))
            forms.append(Array(Hex.encode(secret).uppercased().utf8))
            forms += base64Forms(secret).filter { $0.count >= 8 }
            return forms
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

    /// Byte strings sorted lexicographically (a prefix before its extensions), without repeats.
    struct SortedPatterns: Sendable {
        var items: [[UInt8]]
        /// For each first byte, the range of items starting with it: most positions of a text
        /// end there, without a search.
        var firstByte: [Range<Int>]

        init(_ items: [[UInt8]]) {
            self.items = Array(Set(items.filter { !$0.isEmpty })).sorted { $0.lexicographicallyPrecedes($1) }
            var ranges = [Range<Int>](repeating: 0..<0, count: 256)
            var start = 0
            while start < self.items.count {
                let byte = self.items[start][0]
                var end = start
                while end < self.items.count && self.items[end][0] == byte { end += 1 }
                ranges[Int(byte)] = start..<end
                start = end
            }
            firstByte = ranges
        }

        var isEmpty: Bool { items.isEmpty }

        /// The first index in `lo..<hi` whose byte at `depth` is at least `byte` (every item
        /// there is longer than `depth`).
        func lowerBound(_ byte: UInt8, depth: Int, _ lo: Int, _ hi: Int) -> Int {
            var lo = lo, hi = hi
            while lo < hi {
                let mid = (lo + hi) / 2
                if items[mid][depth] < byte { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        func upperBound(_ byte: UInt8, depth: Int, _ lo: Int, _ hi: Int) -> Int {
            var lo = lo, hi = hi
            while lo < hi {
                let mid = (lo + hi) / 2
                if items[mid][depth] <= byte { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        /// The end of the longest item matched at `start`, reading the text raw or decoding
        /// escapes; matches end only where a unit of the text ends.
        func longestMatch(in b: [UInt8], at start: Int, decoding: Bool) -> Int? {
            // Without an escape at `start`, the first byte is the text's own: look it up.
            let escaped = decoding && (b[start] == UInt8(ascii: "%") || b[start] == UInt8(ascii: "\\") || b[start] == UInt8(ascii: "&"))
            if !escaped && firstByte[Int(b[start])].isEmpty { return nil }
            var lo = 0, hi = items.count, depth = 0, j = start
            var best: Int?
            while lo < hi {
                if items[lo].count == depth {
                    best = j
                    lo += 1
                    if lo >= hi { break }
                }
                guard j < b.count else { break }
                let unit: ArraySlice<UInt8>
                let next: Int
                if decoding, let (decoded, after) = Redactor.decodeUnit(b, at: j) {
                    unit = decoded[...]
                    next = after
                } else {
                    unit = b[j...j]
                    next = j + 1
                }
                for (k, byte) in unit.enumerated() {
                    // An item ending inside a multi-byte unit is no match: drop it.
                    if k > 0 { while lo < hi && items[lo].count == depth { lo += 1 } }
                    guard lo < hi else { return best }
                    let newLo = lowerBound(byte, depth: depth, lo, hi)
                    hi = upperBound(byte, depth: depth, newLo, hi)
                    lo = newLo
                    depth += 1
                    guard lo < hi else { return best }
                }
                j = next
            }
            return best
        }
    }

    // MARK: Matching

    /// Replaces every occurrence of every pattern, raw or in any mix of encodings, and, when
    /// `fragments` is given, every run of `fragmentLength`-byte pieces of long secrets.
    static func replace(in text: String, long: SortedPatterns, short: SortedPatterns?, fragments: Set<UInt64>?) -> String {
        let patterns = short ?? long
        guard !patterns.isEmpty else { return text }
        let bytes = Array(text.utf8)
        let markerBytes = Array(marker.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var changed = false
        var i = 0
        while i < bytes.count {
            // An existing marker is kept whole, so redacting twice changes nothing.
            if bytes[i] == markerBytes[0], bytes.count - i >= markerBytes.count, bytes[i..<(i + markerBytes.count)].elementsEqual(markerBytes) {
                out += markerBytes
                i += markerBytes.count
                continue
            }
            var end = patterns.longestMatch(in: bytes, at: i, decoding: false)
            if let decoded = patterns.longestMatch(in: bytes, at: i, decoding: true) { end = max(end ?? 0, decoded) }
            if end == nil, let fragments, bytes.count - i >= fragmentLength,
               fragments.contains(Patterns.pack(bytes[i..<(i + fragmentLength)])) {
                // A piece of a long secret: take the whole run of such pieces.
                var e = i + fragmentLength
                while e < bytes.count, fragments.contains(Patterns.pack(bytes[(e + 1 - fragmentLength)...e])) { e += 1 }
                end = e
            }
            if let end, end > i {
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

    /// One escape at `i` decoded to the bytes it stands for; nil when `i` holds no escape.
    static func decodeUnit(_ b: [UInt8], at i: Int) -> ([UInt8], Int)? {
        guard i < b.count else { return nil }
        switch b[i] {
        case UInt8(ascii: "%"):
            guard i + 2 < b.count, let h = hex(b[i + 1]), let l = hex(b[i + 2]) else { return nil }
            let byte = h << 4 | l
            // Encoded twice: `%2541` is `%41` is `A`.
            if byte == UInt8(ascii: "%"), i + 4 < b.count, let h2 = hex(b[i + 3]), let l2 = hex(b[i + 4]) { return ([h2 << 4 | l2], i + 5) }
            return ([byte], i + 3)
        case UInt8(ascii: "\\"):
            guard i + 1 < b.count else { return nil }
            switch b[i + 1] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "'"): return ([b[i + 1]], i + 2)
            case UInt8(ascii: "n"): return ([10], i + 2)
            case UInt8(ascii: "r"): return ([13], i + 2)
            case UInt8(ascii: "t"): return ([9], i + 2)
            case UInt8(ascii: "b"): return ([8], i + 2)
            case UInt8(ascii: "f"): return ([12], i + 2)
            case UInt8(ascii: "x"):
                guard i + 3 < b.count, let h = hex(b[i + 2]), let l = hex(b[i + 3]) else { return nil }
                return ([h << 4 | l], i + 4)
            case UInt8(ascii: "u"):
                guard let (scalar, next) = unicodeEscape(b, at: i) else { return nil }
                return (Array(String(Character(scalar)).utf8), next)
            default: return nil
            }
        case UInt8(ascii: "&"):
            guard let (scalar, next) = htmlReference(b, at: i) else { return nil }
            return (Array(String(Character(scalar)).utf8), next)
        default:
            return nil
        }
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
