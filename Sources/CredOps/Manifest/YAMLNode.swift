/// A composed YAML node with its position. Aliases point at the anchored node itself (shared,
/// never copied), so composing costs one node per event however much the aliases would expand.
public final class YAMLNode: Sendable {
    public enum Content: Sendable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    public let content: Content
    /// 1-based position of the node's first character.
    public let line: Int
    public let column: Int
    /// The explicit tag (`tag:yaml.org,2002:str` for `!!str`), nil when implicit.
    public let tag: String?
    /// How many nodes this one stands for with every alias expanded, itself included (saturating).
    public let expandedCount: Int
    /// Levels of nesting below and including this node.
    public let height: Int

    init(content: Content, line: Int, column: Int, tag: String?, expandedCount: Int, height: Int) {
        self.content = content
        self.line = line
        self.column = column
        self.tag = tag
        self.expandedCount = expandedCount
        self.height = height
    }

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
        if case .scalar(let s) = content { return s }
        return nil
    }
}

public struct YAMLPair: Sendable {
    public let key: YAMLNode
    public let value: YAMLNode
}

public struct YAMLScalar: Sendable {
    public enum Style: Sendable { case plain, singleQuoted, doubleQuoted, literal, folded }

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
