/// One access grant of a credential: an API proxy or an API proxy group it may call.
public struct SandboxAccess: Sendable, Codable, Hashable {
    /// The access type of an API proxy.
    public static let apiProxy = "API_PROXY"
    /// The access type of an API proxy group.
    public static let apiProxyGroup = "API_PROXY_GROUP"

    /// The proxy's or group's name.
    public var name: String
    /// `API_PROXY` or `API_PROXY_GROUP`.
    public var type: String

    /// A grant of `name`, of `type` `API_PROXY` or `API_PROXY_GROUP`.
    public init(name: String, type: String) {
        self.name = name
        self.type = type
    }

    /// Decodes `{name, type}`; unknown keys are an error.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: ["name", "type"], in: "access")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.name = try container.decode(String.self, forKey: .name)
        self.type = try container.decode(String.self, forKey: .type)
    }

    /// How the documented messages name the kind: `API Proxy` or `API Proxy Group`.
    var kindName: String {
        type == Self.apiProxyGroup ? "API Proxy Group" : "API Proxy"
    }

    /// The wire form `{"name", "type"}`.
    var json: JSONValue {
        ["name": .string(name), "type": .string(type)]
    }
}
