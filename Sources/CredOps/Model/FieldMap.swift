/// Field values by name, stored as a small sorted array.
///
/// Credentials have a handful of fields; a sorted array of (name, value) takes a third of a
/// dictionary's memory (that matters at 50,000 credentials) and finds a field as fast.
public struct FieldMap: Hashable, Sendable, Sequence, ExpressibleByDictionaryLiteral, Codable {
    public typealias Element = (key: String, value: FieldValue)

    private var entries: [Element] = []

    public init() {}

    public init(_ dictionary: [String: FieldValue]) {
        entries = dictionary.map { (key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }
    }

    public init(dictionaryLiteral elements: (String, FieldValue)...) {
        for (k, v) in elements { self[k] = v }
    }

    private func index(of key: String) -> (found: Bool, at: Int) {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].key < key { low = mid + 1 } else { high = mid }
        }
        return (low < entries.count && entries[low].key == key, low)
    }

    public subscript(key: String) -> FieldValue? {
        get {
            let (found, at) = index(of: key)
            return found ? entries[at].value : nil
        }
        set {
            let (found, at) = index(of: key)
            switch (found, newValue) {
            case (true, let value?): entries[at].value = value
            case (true, nil): entries.remove(at: at)
            case (false, let value?): entries.insert((key: key, value: value), at: at)
            case (false, nil): break
            }
        }
    }

    public var keys: [String] { entries.map(\.key) }

    public mutating func reserveCapacity(_ n: Int) { entries.reserveCapacity(n) }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

    public func mapValues<T>(_ transform: (FieldValue) throws -> T) rethrows -> [String: T] {
        var result: [String: T] = [:]
        for entry in entries { result[entry.key] = try transform(entry.value) }
        return result
    }

    public static func == (a: FieldMap, b: FieldMap) -> Bool {
        a.entries.elementsEqual(b.entries) { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }

    /// A JSON object, as a dictionary would be.
    public init(from decoder: any Decoder) throws {
        self.init(try [String: FieldValue](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try mapValues { $0 }.encode(to: encoder)
    }
}
