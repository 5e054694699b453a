/// Reads composed YAML into typed values for one file, collecting every problem with its
/// position instead of stopping at the first.
///
/// The rules are the strict ones users of a credentials tool need: YAML 1.1 words stay text in
/// string fields, booleans are only `true`/`false`, numbers are plain digits, and a key nobody
/// reads is an error with a suggestion.
public final class NodeReader {
    /// The path shown in messages (as the user named it).
    public let file: String
    public private(set) var diagnostics: [Diagnostic] = []

    public init(file: String) { self.file = file }

    public func location(_ node: YAMLNode) -> SourceLocation {
        SourceLocation(file: file, line: node.line, column: node.column)
    }

    public func error(_ message: String, at node: YAMLNode) {
        diagnostics.append(.error(message, at: location(node)))
    }

    /// An error at a place read earlier (kept as a location, not a node).
    public func error(_ message: String, at location: SourceLocation) {
        diagnostics.append(.error(message, at: location))
    }

    public func warning(_ message: String, at node: YAMLNode) {
        diagnostics.append(.warning(message, at: location(node)))
    }

    public func error(_ message: String, line: Int, column: Int) {
        diagnostics.append(.error(message, at: SourceLocation(file: file, line: line, column: column)))
    }

    // MARK: Mappings

    /// The entries of a mapping, merge keys (`<<: *base`) applied and duplicate keys reported.
    /// Returns nil (after reporting) when `node` is not a mapping.
    public func mapping(_ node: YAMLNode, what: String) -> Mapping? {
        guard case .mapping(let pairs) = node.content else {
            if case .scalar(let s) = node.content, s.isNull {
                error("\(what) is empty; expected a mapping", at: node)
            } else {
                error("\(what) must be a mapping (key: value), found \(node.kindDescription)", at: node)
            }
            return nil
        }
        var entries: [Mapping.Entry] = []
        entries.reserveCapacity(pairs.count)
        // Duplicates are looked for among the entries so far: mappings have a dozen keys, where
        // comparing beats hashing; large ones switch to a dictionary.
        var seen = SeenKeys()
        var merged: [Mapping.Entry] = []
        for pair in pairs {
            guard let keyScalar = pair.key.scalar, pair.key.tag == nil || pair.key.tag == Self.strTag else {
                error("keys in \(what) must be plain strings", at: pair.key)
                continue
            }
            let key = keyScalar.value
            if key == "<<" && keyScalar.style == .plain {
                merged.append(contentsOf: mergeSources(pair.value, what: what))
                continue
            }
            if let first = seen.find(key, in: entries) {
                error("duplicate key '\(key)' in \(what) (first at line \(first.line), column \(first.column)); remove one of them", at: pair.key)
                continue
            }
            entries.append(Mapping.Entry(key: key, keyNode: pair.key, value: pair.value))
            seen.added(entries)
        }
        // Explicit keys win over merged ones, as YAML's merge key specifies.
        for entry in merged where seen.find(entry.key, in: entries) == nil {
            entries.append(entry)
            seen.added(entries)
        }
        return Mapping(node: node, entries: entries, what: what)
    }

    private func mergeSources(_ node: YAMLNode, what: String) -> [Mapping.Entry] {
        switch node.content {
        case .mapping:
            return mapping(node, what: "the merged mapping")?.entries ?? []
        case .sequence(let items):
            var result: [Mapping.Entry] = []
            var keys = Set<String>()
            for item in items {
                for entry in mapping(item, what: "a merged mapping")?.entries ?? [] where keys.insert(entry.key).inserted {
                    result.append(entry)
                }
            }
            return result
        case .scalar:
            error("the merge key << in \(what) needs a mapping or a list of mappings", at: node)
            return []
        }
    }

    /// Reports every key of `mapping` not in `allowed`, with the closest allowed key as a hint.
    public func rejectUnknownKeys(_ mapping: Mapping, allowed: [String]) {
        for entry in mapping.entries where !allowed.contains(entry.key) {
            var message = "unknown key '\(entry.key)' in \(mapping.what)"
            if let suggestion = Suggestion.closest(to: entry.key, among: allowed) {
                message += " (did you mean '\(suggestion)'?)"
            } else {
                message += "; expected one of: \(allowed.joined(separator: ", "))"
            }
            error(message, at: entry.keyNode)
        }
    }

    // MARK: Scalars

    static let strTag = "tag:yaml.org,2002:str"
    static let boolTag = "tag:yaml.org,2002:bool"
    static let intTag = "tag:yaml.org,2002:int"
    static let nullTag = "tag:yaml.org,2002:null"

    /// True when the node is YAML null (plain `null`, `~`, or nothing).
    public func isNull(_ node: YAMLNode) -> Bool {
        if node.tag == Self.nullTag { return true }
        guard node.tag == nil, let s = node.scalar else { return false }
        return s.isNull
    }

    /// A text value, taken literally whatever it looks like (`no`, `on`, `0777`, `1e3` stay text).
    public func string(_ node: YAMLNode, field: String) -> String? {
        guard let s = node.scalar else {
            error("\(field) must be a string, found \(node.kindDescription)", at: node)
            return nil
        }
        if let tag = node.tag, tag != Self.strTag {
            error("\(field) must be a string; the tag \(Self.shortTag(tag)) is not accepted here", at: node)
            return nil
        }
        if s.isNull && node.tag == nil {
            error("\(field) must be a string, found null; quote it (\"\") if you mean empty text", at: node)
            return nil
        }
        return s.value
    }

    /// `true` or `false`, nothing else: `yes`, `on`, `1` and quoted words are refused.
    public func bool(_ node: YAMLNode, field: String) -> Bool? {
        if let s = node.scalar, s.style == .plain, node.tag == nil || node.tag == Self.boolTag {
            if s.value == "true" { return true }
            if s.value == "false" { return false }
            let lower = s.value.lowercased()
            if ["yes", "no", "on", "off", "y", "n", "true", "false"].contains(lower) {
                error("\(field) must be true or false, found '\(s.value)' (YAML 1.1 booleans are not accepted)", at: node)
                return nil
            }
        }
        error("\(field) must be true or false, found \(node.kindDescription)", at: node)
        return nil
    }

    /// A whole number in `range`, written in plain decimal digits.
    public func integer(_ node: YAMLNode, field: String, range: ClosedRange<Int>) -> Int? {
        guard let s = node.scalar, s.style == .plain, node.tag == nil || node.tag == Self.intTag,
              !s.value.isEmpty, s.value.allSatisfy(\.isASCIIDigit), let value = Int(s.value),
              !(s.value.count > 1 && s.value.first == "0")
        else {
            error("\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound), found \(node.kindDescription)", at: node)
            return nil
        }
        guard range.contains(value) else {
            error("\(field) must be from \(range.lowerBound) to \(range.upperBound), found \(value)", at: node)
            return nil
        }
        return value
    }

    /// A list of text values.
    /// `90d`, `12h`, `30m`, `45s` (or a bare number of seconds) within `range` seconds.
    public func duration(_ node: YAMLNode, field: String, range: ClosedRange<Int>) -> Int? {
        guard let text = node.scalar?.value, !isNull(node) else {
            error("\(field) must be a duration such as 90d, 12h or 30m", at: node)
            return nil
        }
        guard let seconds = DurationText.seconds(text) else {
            error("\(field) must be a duration such as 90d, 12h or 30m, found '\(TextSafety.escaped(String(text.prefix(40))))'", at: node)
            return nil
        }
        guard range.contains(seconds) else {
            error("\(field) must be between \(DurationText.short(range.lowerBound)) and \(DurationText.short(range.upperBound)), found \(text)", at: node)
            return nil
        }
        return seconds
    }

    /// `FIELD must be one of A, B, found 'X' (did you mean 'A'?)` at `node`.
    public func oneOf(_ value: String, _ allowed: [String], field: String, at node: YAMLNode) {
        var message = "\(field) must be one of \(allowed.joined(separator: ", ")), found '\(TextSafety.escaped(value))'"
        if let s = Suggestion.closest(to: value, among: allowed) { message += " (did you mean '\(s)'?)" }
        error(message, at: node)
    }

    /// Checks `apiVersion` (required) and `kind` (when given) of a document's top mapping.
    public func checkHeader(_ top: Mapping, root: YAMLNode, kind expected: String) {
        if let node = top["apiVersion"], let v = string(node, field: "apiVersion"), v != ManifestParser.apiVersion {
            error("unsupported apiVersion '\(v)'; this credops reads \(ManifestParser.apiVersion)", at: node)
        } else if top["apiVersion"] == nil {
            error("missing apiVersion: \(ManifestParser.apiVersion)", at: root)
        }
        if let node = top["kind"], let v = string(node, field: "kind"), v != expected {
            error("unsupported kind '\(v)'; expected \(expected)", at: node)
        }
    }

    public func stringList(_ node: YAMLNode, field: String) -> [(value: String, node: YAMLNode)]? {
        guard case .sequence(let items) = node.content else {
            error("\(field) must be a list, found \(node.kindDescription)", at: node)
            return nil
        }
        var result: [(String, YAMLNode)] = []
        var ok = true
        for item in items {
            if let value = string(item, field: "each entry of \(field)") { result.append((value, item)) } else { ok = false }
        }
        return ok ? result : nil
    }

    static func shortTag(_ tag: String) -> String {
        tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst("tag:yaml.org,2002:".count) : tag
    }
}

/// Finds keys among a mapping's entries: by scanning while the mapping is small, through a
/// dictionary once it has more than 32 keys.
private struct SeenKeys {
    private var table: [String: YAMLNode]?

    func find(_ key: String, in entries: [Mapping.Entry]) -> YAMLNode? {
        if let table { return table[key] }
        return entries.first { $0.key == key }?.keyNode
    }

    mutating func added(_ entries: [Mapping.Entry]) {
        guard let last = entries.last else { return }
        if table != nil {
            table![last.key] = last.keyNode
        } else if entries.count > 32 {
            table = Dictionary(entries.map { ($0.key, $0.keyNode) }, uniquingKeysWith: { a, _ in a })
        }
    }
}

/// A mapping's entries in file order.
public struct Mapping {
    public struct Entry {
        public let key: String
        public let keyNode: YAMLNode
        public let value: YAMLNode
    }

    public let node: YAMLNode
    public let entries: [Entry]
    /// What the mapping is, for messages ("credential 'checkout-service'").
    public let what: String

    public subscript(key: String) -> YAMLNode? { entries.first { $0.key == key }?.value }

    public func entry(_ key: String) -> Entry? { entries.first { $0.key == key } }
}

/// "Did you mean" for keys and names.
public enum Suggestion {
    /// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        let lower = word.lowercased()
        if let exact = candidates.first(where: { $0.lowercased() == lower }) { return exact }
        // An abbreviation: `prod` for `production`, `API` for `API_PROXY`.
        if lower.count >= 3, let longer = candidates.filter({ $0.lowercased().hasPrefix(lower) }).min(by: { $0.count < $1.count }) {
            return longer
        }
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(lower, candidate.lowercased())
            if d <= max(2, candidate.count / 3), best == nil || d < best!.1 { best = (candidate, d) }
        }
        return best?.0
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
