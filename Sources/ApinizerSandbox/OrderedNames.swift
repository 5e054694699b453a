/// Names in the order they were added, without duplicates, with constant-time lookup.
struct OrderedNames: Sendable, Equatable {
    private(set) var names: [String] = []
    private var members: Set<String> = []

    init(_ names: [String] = []) {
        for name in names { insert(name) }
    }

    /// Adds `name` at the end unless present.
    mutating func insert(_ name: String) {
        if members.insert(name).inserted { names.append(name) }
    }

    func contains(_ name: String) -> Bool { members.contains(name) }

    var count: Int { names.count }
}
