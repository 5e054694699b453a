import Foundation

/// Canary secrets and where they must never turn up: each canary in every form a leak could
/// take (raw, percent- and form-encoded, JSON-escaped, HTML-escaped, base64 at any alignment).
public enum Canary {
    /// The forms of `secret` to look for.
    public static func forms(_ secret: String) -> Set<String> {
        var forms: Set<String> = [secret]
        let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        if let strict = secret.addingPercentEncoding(withAllowedCharacters: unreserved) {
            forms.insert(strict)
            forms.insert(strict.lowercased())
            forms.insert(strict.replacingOccurrences(of: "%20", with: "+"))
        }
        if let query = secret.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) { forms.insert(query) }
        if let json = try? JSONSerialization.data(withJSONObject: [secret], options: [.fragmentsAllowed]) {
            let text = String(decoding: json, as: UTF8.self)
            forms.insert(String(text.dropFirst(2).dropLast(2)))
        }
        var escaped = ""
        for scalar in secret.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "/": escaped += "\\/"
            default: escaped += scalar.isASCII ? String(scalar) : String(format: "\\u%04x", scalar.value)
            }
        }
        forms.insert(escaped)
        forms.insert(secret.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;"))
        // HTML numeric references, as escapers that write every special character by number do.
        var numeric = ""
        for scalar in secret.unicodeScalars {
            numeric += "&<>\"'".unicodeScalars.contains(scalar) || !scalar.isASCII ? "&#\(scalar.value);" : String(scalar)
        }
        forms.insert(numeric)
        let bytes = Array(secret.utf8)
        for k in 0..<3 {
            let encoded = Array(Data([UInt8](repeating: 0, count: k) + bytes).base64EncodedString().utf8)
            let first = (8 * k + 5) / 6, end = (8 * (k + bytes.count)) / 6
            if end - first >= 4 { forms.insert(String(decoding: encoded[first..<min(end, encoded.count)], as: UTF8.self)) }
        }
        return forms.filter { !$0.isEmpty }
    }

    /// `place: canary as form` for every occurrence of every canary's forms in `documents`.
    public static func hits(_ canaries: [String], in documents: [String: Data]) -> [String] {
        var found: [String] = []
        let patterns = canaries.flatMap { canary in forms(canary).map { (canary, $0) } }
        for (place, data) in documents.sorted(by: { $0.key < $1.key }) {
            for (canary, form) in patterns where data.range(of: Data(form.utf8)) != nil {
                found.append("\(place): \(canary.debugDescription) as \(form.debugDescription)")
            }
        }
        return found
    }

    /// Every regular file below `directory`, by path relative to it.
    public static func files(under directory: String) -> [String: Data] {
        var result: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [:] }
        while let relative = enumerator.nextObject() as? String {
            let full = (directory as NSString).appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let data = FileManager.default.contents(atPath: full) else { continue }
            result[relative] = data
        }
        return result
    }
}
