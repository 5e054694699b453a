/// A composed YAML node with its position: a handle into its document's arena.
///
/// A document's nodes live in flat arrays (one record per node, one list of child indices),
/// so composing costs no allocation per node, and an alias is the index of the anchored node:
/// shared, never copied, however much it would expand.
public struct YAMLNode: Sendable {
    let arena: YAMLArena
    let index: Int32

    public enum Content: Sendable {
        case scalar(YAMLScalar)
        case sequence(Items)
        case mapping(Pairs)
    }

    private var record: YAMLArena.Record { arena.records[Int(index)] }

    public var content: Content {
        let r = record
        switch r.kind {
        case .scalar: return .scalar(YAMLScalar(value: arena.strings[Int(r.first)], style: r.style))
        case .sequence: return .sequence(Items(arena: arena, first: Int(r.first), count: Int(r.count)))
        case .mapping: return .mapping(Pairs(arena: arena, first: Int(r.first), count: Int(r.count) / 2))
        }
    }

    /// 1-based position of the node's first character.
    public var line: Int { Int(record.line) }
    public var column: Int { Int(record.column) }
    /// The explicit tag (`tag:yaml.org,2002:str` for `!!str`), nil when implicit.
    public var tag: String? { record.tag < 0 ? nil : arena.strings[Int(record.tag)] }
    /// How many nodes this one stands for with every alias expanded, itself included (saturating).
    public var expandedCount: Int { record.expanded }
    /// Levels of nesting below and including this node.
    public var height: Int { Int(record.height) }

    /// A short name of the node's kind for messages: "a string", "a list", "a mapping".
    public var kindDescription: String {
        switch content {
        case .scalar(let s):
            if s.isNull { return "null" }
            return s.style == .plain ? "the plain value '\(s.value.prefix(40))'" : "a quoted string"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    public var scalar: YAMLScalar? {
        let r = record
        return r.kind == .scalar ? YAMLScalar(value: arena.strings[Int(r.first)], style: r.style) : nil
    }

    /// The items of a sequence.
    public struct Items: RandomAccessCollection, Sendable {
        let arena: YAMLArena
        let first: Int
        public let count: Int
        public var startIndex: Int { 0 }
        public var endIndex: Int { count }
        public subscript(i: Int) -> YAMLNode { YAMLNode(arena: arena, index: arena.children[first + i]) }
    }

    /// The key/value pairs of a mapping, in file order.
    public struct Pairs: RandomAccessCollection, Sendable {
        let arena: YAMLArena
        let first: Int
        public let count: Int
        public var startIndex: Int { 0 }
        public var endIndex: Int { count }
        public subscript(i: Int) -> YAMLPair {
            YAMLPair(key: YAMLNode(arena: arena, index: arena.children[first + 2 * i]),
                     value: YAMLNode(arena: arena, index: arena.children[first + 2 * i + 1]))
        }
    }
}

/// The storage of one composed document. Invariant: written only while composing, read-only
/// afterwards (which makes the `@unchecked Sendable` sound).
final class YAMLArena: @unchecked Sendable {
    enum Kind: UInt8 { case scalar, sequence, mapping }

    struct Record {
        var kind: Kind
        var style: YAMLScalar.Style
        var line: Int32
        var column: Int32
        var height: Int32
        /// Scalar: index of its text in `strings`; container: first index in `children`.
        var first: Int32
        /// Container: number of child indices (twice the pairs of a mapping).
        var count: Int32
        /// Index of the explicit tag in `strings`, or -1.
        var tag: Int32
        var expanded: Int
    }

    var records: [Record] = []
    var strings: [String] = []
    var children: [Int32] = []
}

public struct YAMLPair: Sendable {
    public let key: YAMLNode
    public let value: YAMLNode
}

public struct YAMLScalar: Sendable {
    public enum Style: UInt8, Sendable { case plain, singleQuoted, doubleQuoted, literal, folded }

    public let value: String
    public let style: Style

    /// A plain `null`, `Null`, `NULL`, `~` or nothing at all: YAML's null.
    public var isNull: Bool {
        style == .plain && (value.isEmpty || value == "~" || value == "null" || value == "Null" || value == "NULL")
    }
}

/// Limits that keep a hostile or broken file from costing time or memory.
public struct YAMLLimits: Sendable {
    /// Files larger than this are refused before parsing.
    public var maxFileBytes: Int = 4 * 1024 * 1024
    /// Nodes a document may stand for with every alias expanded.
    public var maxExpandedNodes: Int = 2_000_000
    /// Alias uses per document.
    public var maxAliases: Int = 10_000
    /// Nesting depth, aliases expanded.
    public var maxDepth: Int = 64

    public init() {}
}

/// Why a file could not be composed; positions are 1-based.
public struct YAMLError: Error, Sendable {
    public var message: String
    public var line: Int
    public var column: Int
}
