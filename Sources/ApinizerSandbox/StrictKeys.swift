/// Refuses unknown keys while decoding seeds and faults, so that a typo (`roleNameLists`) is an
/// error instead of a silently ignored setting.
enum StrictKeys {
    /// Any key of an object.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?

        init(stringValue: String) {
            self.stringValue = stringValue
            self.intValue = nil
        }

        init?(intValue: Int) {
            self.stringValue = String(intValue)
            self.intValue = intValue
        }
    }

    /// Throws `DecodingError.dataCorrupted` naming the first key of `decoder`'s object that is
    /// not in `allowed`, with a suggestion when a known key is close.
    static func check(_ decoder: any Decoder, allowed: [String], in typeName: String) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            var message = "unknown key '\(key.stringValue)' in \(typeName)"
            if let suggestion = suggestion(for: key.stringValue, among: allowed) {
                message += " (did you mean '\(suggestion)'?)"
            }
            throw DecodingError.dataCorrupted(.init(codingPath: container.codingPath + [key], debugDescription: message))
        }
    }

    /// The closest allowed key, when it is close enough to be a likely typo.
    static func suggestion(for key: String, among allowed: [String]) -> String? {
        let scored = allowed.map { ($0, distance(key.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(2, key.count / 3) ? best.0 : nil
    }

    /// Levenshtein distance.
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
