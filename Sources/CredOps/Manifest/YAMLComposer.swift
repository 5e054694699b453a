import CYaml

/// Composes YAML text into `YAMLNode` documents straight from libyaml's events, counting
/// nodes, aliases and depth as it goes: an alias bomb is refused after a few hundred events,
/// in microseconds, because expansion is only ever counted, never performed.
public enum YAMLComposer {
    /// Every document of `bytes` (empty documents skipped).
    public static func compose(_ bytes: [UInt8], limits: YAMLLimits = YAMLLimits()) throws(YAMLError) -> [YAMLNode] {
        guard bytes.count <= limits.maxFileBytes else {
            throw YAMLError(message: "the file is larger than \(limits.maxFileBytes / 1024 / 1024) MiB; split it", line: 1, column: 1)
        }
        if let (line, column) = firstInvalidUTF8(bytes) {
            throw YAMLError(message: "the file is not valid UTF-8", line: line, column: column)
        }
        var input = bytes
        // A UTF-8 byte order mark is allowed by YAML; drop it so columns stay right.
        if input.starts(with: [0xEF, 0xBB, 0xBF]) { input.removeFirst(3) }
        do {
            return try input.withUnsafeBufferPointer { buffer throws(YAMLError) in
                let composer = try Composer(buffer: buffer, limits: limits)
                defer { composer.close() }
                return try composer.documents()
            }
        }
    }

    /// The 1-based line and column of the first byte that breaks UTF-8, if any.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> (Int, Int)? {
        // The standard library's validation is vectorised; the byte walk below only runs to
        // find where a file that fails it breaks.
        if String(validating: bytes, as: UTF8.self) != nil { return nil }
        var i = 0, line = 1, column = 1
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            var length = 0
            if b < 0x80 { length = 1 } else if b & 0xE0 == 0xC0, b >= 0xC2 { length = 2 } else if b & 0xF0 == 0xE0 { length = 3 } else if b & 0xF8 == 0xF0, b <= 0xF4 { length = 4 } else { return (line, column) }
            guard i + length <= n else { return (line, column) }
            for k in 1..<max(length, 1) where bytes[i + k] & 0xC0 != 0x80 { return (line, column) }
            if length == 3 {
                let cp = (UInt32(b & 0x0F) << 12) | (UInt32(bytes[i + 1] & 0x3F) << 6) | UInt32(bytes[i + 2] & 0x3F)
                if cp < 0x800 || (0xD800...0xDFFF).contains(cp) { return (line, column) }
            } else if length == 4 {
                let cp = (UInt32(b & 0x07) << 18) | (UInt32(bytes[i + 1] & 0x3F) << 12) | (UInt32(bytes[i + 2] & 0x3F) << 6) | UInt32(bytes[i + 3] & 0x3F)
                if cp < 0x10000 || cp > 0x10FFFF { return (line, column) }
            }
            if b == 0x0A { line += 1; column = 1 } else { column += 1 }
            i += length
        }
        return nil
    }
}

/// One pass over libyaml's event stream, into one arena per document.
///
/// The parser lives in this class (libyaml keeps pointers into it); each document is built in
/// a `Builder` value passed `inout`, so that its arrays get static exclusivity checks instead of
/// a runtime check per event.
private final class Composer {
    private var parser = yaml_parser_t()
    private let limits: YAMLLimits

    init(buffer: UnsafeBufferPointer<UInt8>, limits: YAMLLimits) throws(YAMLError) {
        self.limits = limits
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(message: "out of memory starting the YAML parser", line: 1, column: 1)
        }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
    }

    func close() { yaml_parser_delete(&parser) }

    /// One document's nodes while they are composed.
    struct Builder {
        var records: [YAMLArena.Record] = []
        var strings: [String] = []
        var children: [Int32] = []
        var anchors: [String: Int32] = [:]
        var aliasCount = 0
        /// Child indices of the containers being composed: one stack for all of them, so that a
        /// container costs no array of its own until it is complete.
        var pending: [Int32] = []

        mutating func add(_ record: YAMLArena.Record, anchor: String?) -> Int32 {
            let index = Int32(records.count)
            records.append(record)
            if let anchor { anchors[anchor] = index }
            return index
        }

        mutating func string(_ s: String) -> Int32 {
            strings.append(s)
            return Int32(strings.count - 1)
        }

        mutating func tagIndex(_ tag: String?) -> Int32 { tag.map { string($0) } ?? -1 }

        func arena() -> YAMLArena {
            let arena = YAMLArena()
            arena.records = records
            arena.strings = strings
            arena.children = children
            return arena
        }
    }

    func documents() throws(YAMLError) -> [YAMLNode] {
        var result: [YAMLNode] = []
        var event = try next()
        guard event.type == YAML_STREAM_START_EVENT else { throw unexpected(event) }
        while true {
            event = try next()
            if event.type == YAML_STREAM_END_EVENT { break }
            guard event.type == YAML_DOCUMENT_START_EVENT else { throw unexpected(event) }
            var builder = Builder()
            let rootIndex = try node(from: try next(), depth: 1, &builder)
            let end = try next()
            guard end.type == YAML_DOCUMENT_END_EVENT else { throw unexpected(end) }
            let root = YAMLNode(arena: builder.arena(), index: rootIndex)
            if case .scalar(let s) = root.content, s.isNull, root.tag == nil { continue }
            result.append(root)
        }
        return result
    }

    /// Fetches the next event, copying what we need out of libyaml's memory.
    private func next() throws(YAMLError) -> Event {
        var raw = yaml_event_t()
        guard yaml_parser_parse(&parser, &raw) == 1 else {
            let problem = parser.problem.map { String(cString: $0) } ?? "syntax error"
            let context = parser.context.map { String(cString: $0) }
            let mark = parser.problem_mark
            let text = context.map { "\(problem) (\($0))" } ?? problem
            throw YAMLError(message: "YAML syntax: \(text)", line: Int(mark.line) + 1, column: Int(mark.column) + 1)
        }
        defer { yaml_event_delete(&raw) }
        return Event(raw)
    }

    /// Composes the node starting with `event`; returns its index in the document.
    private func node(from event: Event, depth: Int, _ b: inout Builder) throws(YAMLError) -> Int32 {
        guard depth <= limits.maxDepth else {
            throw YAMLError(message: "the document nests deeper than \(limits.maxDepth) levels", line: event.line, column: event.column)
        }
        switch event.type {
        case YAML_ALIAS_EVENT:
            b.aliasCount += 1
            guard b.aliasCount <= limits.maxAliases else {
                throw YAMLError(message: "the document uses more than \(limits.maxAliases) aliases", line: event.line, column: event.column)
            }
            guard let name = event.anchor, let target = b.anchors[name] else {
                throw YAMLError(message: "alias *\(event.anchor ?? "") names no anchor defined before it", line: event.line, column: event.column)
            }
            guard depth - 1 + Int(b.records[Int(target)].height) <= limits.maxDepth else {
                throw YAMLError(message: "alias *\(name) nests deeper than \(limits.maxDepth) levels", line: event.line, column: event.column)
            }
            return target
        case YAML_SCALAR_EVENT:
            let text = b.string(event.value)
            let tag = b.tagIndex(event.tag)
            return b.add(YAMLArena.Record(kind: .scalar, style: event.style, line: Int32(event.line), column: Int32(event.column), height: 1,
                                          first: text, count: 0, tag: tag, expanded: 1), anchor: event.anchor)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            let endType = isMapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT
            let base = b.pending.count
            var count = 1, height: Int32 = 1
            while true {
                let child = try next()
                if child.type == endType { break }
                let index = try node(from: child, depth: depth + 1, &b)
                let record = b.records[Int(index)]
                count = try add(count, record.expanded, at: child)
                height = max(height, record.height + 1)
                b.pending.append(index)
            }
            if isMapping && (b.pending.count - base) % 2 != 0 { throw unexpected(event) }
            let first = Int32(b.children.count)
            b.children.append(contentsOf: b.pending[base...])
            let childCount = Int32(b.pending.count - base)
            b.pending.removeSubrange(base...)
            let tag = b.tagIndex(event.tag)
            return b.add(YAMLArena.Record(kind: isMapping ? .mapping : .sequence, style: .plain, line: Int32(event.line),
                                          column: Int32(event.column), height: height, first: first, count: childCount,
                                          tag: tag, expanded: count), anchor: event.anchor)
        default:
            throw unexpected(event)
        }
    }

    private func add(_ a: Int, _ b: Int, at event: Event) throws(YAMLError) -> Int {
        let sum = a &+ b
        guard sum <= limits.maxExpandedNodes, sum >= a else {
            throw YAMLError(message: "the document expands to more than \(limits.maxExpandedNodes) nodes through its aliases; refusing it",
                            line: event.line, column: event.column)
        }
        return sum
    }

    private func unexpected(_ event: Event) -> YAMLError {
        YAMLError(message: "unexpected YAML structure", line: event.line, column: event.column)
    }
}

/// The parts of a libyaml event the composer uses, copied out before the event is freed.
private struct Event {
    var type: yaml_event_type_t
    var line: Int
    var column: Int
    var anchor: String?
    var tag: String?
    var value: String = ""
    var style: YAMLScalar.Style = .plain

    init(_ raw: yaml_event_t) {
        type = raw.type
        line = Int(raw.start_mark.line) + 1
        column = Int(raw.start_mark.column) + 1
        switch raw.type {
        case YAML_ALIAS_EVENT:
            anchor = Self.string(raw.data.alias.anchor)
        case YAML_SCALAR_EVENT:
            anchor = Self.string(raw.data.scalar.anchor)
            tag = Self.explicitTag(raw.data.scalar.tag)
            if let p = raw.data.scalar.value {
                value = String(decoding: UnsafeBufferPointer(start: p, count: Int(raw.data.scalar.length)), as: UTF8.self)
            }
            switch raw.data.scalar.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
        case YAML_SEQUENCE_START_EVENT:
            anchor = Self.string(raw.data.sequence_start.anchor)
            tag = Self.explicitTag(raw.data.sequence_start.tag)
        case YAML_MAPPING_START_EVENT:
            anchor = Self.string(raw.data.mapping_start.anchor)
            tag = Self.explicitTag(raw.data.mapping_start.tag)
        default:
            break
        }
    }

    private static func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        p.map { String(cString: $0) }
    }

    /// The non-specific tag `!` is not an explicit type.
    private static func explicitTag(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let tag = string(p), tag != "!" else { return nil }
        return tag
    }
}
