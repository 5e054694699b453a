/// A list with an index of where each key first appears: looked up by key without a dictionary
/// of copies of the elements (a record or resource is 56-200 bytes; a position is 8), and the
/// first element of a key wins, as a search of the list would find.
struct FirstByKey<Key: Hashable & Sendable, Element: Sendable>: Sendable {
    let elements: [Element]
    private let positions: [Key: Int]

    init(_ elements: [Element], key: (Element) -> Key) {
        self.elements = elements
        var positions: [Key: Int] = [:]
        positions.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            let k = key(element)
            if positions[k] == nil { positions[k] = i }
        }
        self.positions = positions
    }

    subscript(key: Key) -> Element? { positions[key].map { elements[$0] } }
}

/// A credential by the project (namespace) it is in and its key.
struct ProjectCredential: Hashable, Sendable {
    var project: ProjectName
    var key: CredentialKey
}
