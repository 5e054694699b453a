import CredOps

/// The Apinizer Management API (`{manager}/apiops/`): credentials and their access grants.
public struct ApinizerProvider: Provider {
    public let name = "apinizer"

    public init() {}

    /// Apinizer's credential object, field names as the vendor documents them.
    public var schema: ResourceSchema { Self.credentialSchema }

    public static let credentialSchema: ResourceSchema = {
        var schema = ResourceSchema(
            identifierField: "username",
            secretField: "password",
            fields: [
                FieldSpec("fullName", .string, required: true, nonEmpty: true, default: .string(""), summary: false),
                FieldSpec("email", .string, format: .email, required: true, nonEmpty: true, default: .string("")),
                FieldSpec("description", .string, default: .string("")),
                FieldSpec("roleNameList", .stringSet, default: .set([]), summary: true),
                FieldSpec("enabled", .bool, default: .bool(true)),
                FieldSpec("ipList", .stringSet, format: .ipOrCIDR, default: .set([]), summary: true),
                FieldSpec("expireDate", .instant, default: .instant(nil), summary: true),
            ],
            grantsField: "access",
            grantTypes: ["API_PROXY", "API_PROXY_GROUP"],
            identifiersAreGlobal: true,
            // Listing the project admin returns every project's credentials.
            capabilities: ProviderCapabilities(namespace: .named(pruneAllRefused: ["admin"]), secret: .declaredWriteOnly, identity: .keyIsID),
            // The emulator's seed catalog, logins and latency (see the sandbox section of the README).
            emulatorSettings: [
                EmulatorSettingSpec("projects", .strings), EmulatorSettingSpec("roles", .strings),
                EmulatorSettingSpec("apiProxies", .strings), EmulatorSettingSpec("apiProxyGroups", .strings),
                EmulatorSettingSpec("gateways", .strings), EmulatorSettingSpec("tokens", .strings),
                EmulatorSettingSpec("clients", .stringMap),
                EmulatorSettingSpec("tokenTTLSeconds", .integer(1...86_400 * 365)),
                EmulatorSettingSpec("latencyMilliseconds", .integer(0...60_000)),
            ])
        schema.expiryField = "expireDate"
        return schema
    }()

    public func session(for environment: EnvironmentConfig, connection: Connection, http: HTTPClient) -> any ProviderSession {
        ApinizerSession(connection: connection, http: http)
    }
}
