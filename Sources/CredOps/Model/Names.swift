/// A name that is a string on the wire but a distinct type in code, so that a project name is
/// never passed where a username is expected.
public protocol StringName: RawRepresentable, Hashable, Comparable, Sendable, Codable, CodingKeyRepresentable,
    ExpressibleByStringLiteral, CustomStringConvertible where RawValue == String {
    init(_ rawValue: String)
}

extension StringName {
    public init(rawValue: String) { self.init(rawValue) }
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Dictionaries keyed by names encode as JSON objects.
    public var codingKey: any CodingKey { NameKey(stringValue: rawValue) }

    public init?<T: CodingKey>(codingKey: T) { self.init(codingKey.stringValue) }
}

struct NameKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// The key a credential is declared by (Apinizer's `username`, LeadConduit's `name`): how
/// manifests, plans and state name it. Where the server assigns ids, the id is kept beside it.
public struct CredentialKey: StringName {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// A project (namespace) name, either as the manifests say it or as a server calls it.
public struct ProjectName: StringName {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// The name of an environment file (`environments/staging.yaml` → `staging`).
public struct EnvironmentName: StringName {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}
