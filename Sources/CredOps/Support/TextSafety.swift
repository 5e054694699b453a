import Foundation

/// Rules for text that crosses a trust boundary: names that go into URL paths and state keys,
/// and text shown on a terminal that came from a server or a file.
public enum TextSafety {
    /// True for characters a terminal or a YAML reader acts on rather than shows: C0 controls
    /// (tab and line breaks included), DEL, C1 controls, the Unicode line and paragraph
    /// separators, and the invisible format characters (bidi embeddings, overrides and isolates,
    /// which can make a line read differently from what it holds; zero-width spaces and
    /// joiners; tag characters; the BOM).
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x2028, 0x2029: return true
        case 0x20...0x7E, 0xA0...0xAC, 0xAE...0x5FF: return false  // the common case, quickly
        default:
            // Every format character: bidi marks, zero-width spaces and joiners, tags, the
            // BOM. Invisible, so `svc` and `svc\u{200B}` would read alike.
            // And the noncharacters (U+FFFE, U+FFFF, U+FDD0...): no YAML reader accepts
            // them raw (found by fuzz-export-roundtrip in an export's header comment).
            return scalar.properties.generalCategory == .format || scalar.properties.isNoncharacterCodePoint
        }
    }

    /// The text with every unsafe character written as a visible escape (`\u{1B}`, `\n`), so
    /// that server-supplied text cannot move the cursor, recolour, retitle or clear a terminal,
    /// or break a line where a reviewer does not see one. Safe text comes back unchanged.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard isUnsafe(scalar) else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return out
    }

    /// Server-supplied text for a message: unsafe characters replaced by U+FFFD, and cut to
    /// `limit` characters (a server may answer megabytes of error text).
    public static func stripped(_ text: String, limit: Int = 2000) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                out += "…"
                break
            }
            out.unicodeScalars.append(isUnsafe(scalar) ? "\u{FFFD}" : scalar)
            count += 1
        }
        return out
    }

    /// Why `name` cannot name a project, credential or grant, or nil when it can.
    ///
    /// A name goes into URL paths, state keys and terminal lines: it must not be empty, be `.`
    /// or `..` (a directory step in a path), hold a control character (a NUL ends a C string,
    /// so `svc\0evil` would be stored as `svc`), or carry invisible white space around it.
    public static func nameProblem(_ name: String) -> String? {
        guard let first = name.unicodeScalars.first, let last = name.unicodeScalars.last else { return "is empty" }
        if name == "." || name == ".." { return "is '\(name)', which a URL path takes for a directory step" }
        if name.unicodeScalars.contains(where: isUnsafe) {
            return "holds a control or invisible character (\(escaped(String(name.unicodeScalars.first(where: isUnsafe)!))))"
        }
        if first.properties.isWhitespace || last.properties.isWhitespace { return "has white space at its start or end" }
        return nil
    }
}

extension TextSafety {
    /// The SGR codes credops' own text styles use; any other escape sequence is data.
    static let ownStyleCodes: Set<String> = ["0", "1", "2", "31", "32", "33", "35", "36"]

    /// A last line of defence for text written to a terminal: every unsafe character is
    /// escaped as in `escaped(_:)`, except line feeds and tabs and the colour codes credops
    /// itself writes (`ESC [ 31 m` and the like). Renderers escape data already; this catches
    /// anything one of them missed, so no server can move the cursor, clear lines, conceal
    /// text or set a window title through credops.
    public static func forTerminal(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        guard scalars.contains(where: { isUnsafe($0) && $0 != "\n" && $0 != "\t" }) else { return text }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            let scalar = scalars[i]
            if scalar == "\u{1B}", i + 1 < scalars.count, scalars[i + 1] == "[" {
                var j = i + 2
                var code = ""
                while j < scalars.count, j - i < 8, ("0"..."9").contains(scalars[j]) {
                    code.unicodeScalars.append(scalars[j])
                    j += 1
                }
                if j < scalars.count, scalars[j] == "m", ownStyleCodes.contains(code) {
                    out.append(contentsOf: scalars[i...j])
                    i = j + 1
                    continue
                }
            }
            if isUnsafe(scalar) && scalar != "\n" && scalar != "\t" {
                out.append(contentsOf: escaped(String(scalar)).unicodeScalars)
            } else {
                out.append(scalar)
            }
            i += 1
        }
        return String(out)
    }

    /// JSON text with every unsafe character that JSON allows raw (C1 controls, DEL, the line
    /// separators, bidi marks) written as a `\uXXXX` escape, so that a document printed to a
    /// terminal is as inert as its text form. Such characters only occur inside strings (JSON
    /// structure is ASCII), where the escape means the same character.
    public static func jsonSafe(_ data: Data) -> Data {
        guard let text = String(data: data, encoding: .utf8),
              text.unicodeScalars.contains(where: { isUnsafe($0) && $0.value >= 0x7F }) else { return data }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) && scalar.value >= 0x7F {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return Data(out.utf8)
    }
}
