import CredOps

/// ANSI colours for terminals; plain text everywhere else (CI logs, files, NO_COLOR).
public struct TextStyle: Sendable {
    public var colors: Bool

    public init(colors: Bool) { self.colors = colors }

    public static let plain = TextStyle(colors: false)

    private func wrap(_ code: String, _ text: String) -> String { colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }

    public func green(_ t: String) -> String { wrap("32", t) }
    public func yellow(_ t: String) -> String { wrap("33", t) }
    public func red(_ t: String) -> String { wrap("31", t) }
    public func magenta(_ t: String) -> String { wrap("35", t) }
    public func cyan(_ t: String) -> String { wrap("36", t) }
    public func bold(_ t: String) -> String { wrap("1", t) }
    public func dim(_ t: String) -> String { wrap("2", t) }
}

extension String {
    /// Pads to `width` characters (not bytes).
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

/// Data (names, values, server messages) as shown to people: control, line-separator and bidi
/// characters escaped, so nothing a server or file holds can act on a terminal or fake a line.
func shown(_ text: String) -> String { TextSafety.escaped(text) }

extension StringName {
    /// The name as shown to people (see `shown(_:)`).
    var shown: String { TextSafety.escaped(rawValue) }
}

extension AccessGrant {
    /// `API_PROXY:PaymentAPI` as shown to people.
    var shown: String { TextSafety.escaped(description) }
}
