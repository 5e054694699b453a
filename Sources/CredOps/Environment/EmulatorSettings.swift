/// One setting of a provider's built-in emulator, as written under `sandbox:` in the file of a
/// `sandbox://` environment (seed data, latency...). A provider declares its settings; the
/// loader checks them generically; only the emulator that owns them gives them meaning.
public struct EmulatorSettingSpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A list of names.
        case strings
        /// A mapping of names to text (logins to passwords, say).
        case stringMap
        /// A whole number within bounds.
        case integer(ClosedRange<Int>)
        /// `true` or `false`.
        case bool
    }

    public var name: String
    public var kind: Kind

    public init(_ name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// The value of one emulator setting.
public enum EmulatorSettingValue: Sendable, Equatable {
    case strings([String])
    case stringMap([String: String])
    case integer(Int)
    case bool(Bool)
}

/// An environment's `sandbox:` settings, checked against its provider's specs.
public struct EmulatorSettings: Sendable, Equatable {
    public var values: [String: EmulatorSettingValue]

    public init(_ values: [String: EmulatorSettingValue] = [:]) { self.values = values }

    /// The list under `name`; empty when not given.
    public func strings(_ name: String) -> [String] {
        if case .strings(let list)? = values[name] { return list }
        return []
    }

    /// The mapping under `name`; empty when not given.
    public func stringMap(_ name: String) -> [String: String] {
        if case .stringMap(let map)? = values[name] { return map }
        return [:]
    }

    /// The switch under `name`, when given.
    public func bool(_ name: String) -> Bool? {
        if case .bool(let b)? = values[name] { return b }
        return nil
    }

    /// The number under `name`, when given.
    public func integer(_ name: String) -> Int? {
        if case .integer(let n)? = values[name] { return n }
        return nil
    }
}
