import CredOps
import Foundation

/// LeadConduit (ActiveProspect): an account's `/credentials`, HTTP Basic with the API key,
/// ids assigned by the server, names not unique, passwords returned by reads.
public struct LeadConduitProvider: Provider {
    public let name = "leadconduit"

    public init() {}

    public var schema: ResourceSchema { Self.credentialSchema }

    /// The credential object as ActiveProspect documents it; `id`, `created_at` and
    /// `updated_at` are the server's.
    public static let credentialSchema = ResourceSchema(
        identifierField: "name",
        secretField: "password",
        fields: [
            FieldSpec("type", .string, default: .string("user"), summary: true, oneOf: ["user", "token", "oauth"]),
            FieldSpec("package", .string, required: true, nonEmpty: true, default: .string(""), summary: true, maxLength: 200),
            FieldSpec("username", .string, required: true, nonEmpty: true, default: .string(""), minLength: 1, maxLength: 500),
            FieldSpec("created_at", .string, default: .string(""), readOnly: true),
            FieldSpec("updated_at", .string, default: .string(""), readOnly: true),
        ],
        grantsField: "access",
        grantTypes: [],
        // One account holds every team's credentials: two manifests may not declare one name.
        identifiersAreGlobal: true,
        capabilities: ProviderCapabilities(namespace: .none, secret: .declaredReadable, identity: .serverAssigned),
        emulatorSettings: [
            EmulatorSettingSpec("maskPasswords", .bool),
            EmulatorSettingSpec("latencyMilliseconds", .integer(0...60_000)),
        ],
        createdAtField: "created_at")

    public func session(for environment: EnvironmentConfig, connection: Connection, http: HTTPClient) -> any ProviderSession {
        LeadConduitSession(environment: environment, connection: connection, http: http)
    }
}

/// Calls on one LeadConduit account. Paths have no namespace: a manifest's project is
/// credops' own grouping, so `list` returns the whole account whatever namespace it is asked for.
final class LeadConduitSession: ProviderSession {
    private let environment: EnvironmentConfig
    private let caller: ProviderCaller
    private var connection: Connection { caller.connection }

    init(environment: EnvironmentConfig, connection: Connection, http: HTTPClient) {
        self.environment = environment
        self.caller = ProviderCaller(connection: connection, http: http, defaultTokenPath: "/oauth/token")
    }

    var statistics: RequestStatistics { caller.statistics }

    /// The wire object. `password` is read only to be fingerprinted.
    struct Wire: Decodable {
        var id: String
        var name: String
        var type: String?
        var package: String?
        var username: String?
        var password: String?
        var createdAt: String?
        var updatedAt: String?

        enum CodingKeys: String, CodingKey {
            case id, name, type, package, username, password
            case createdAt = "created_at", updatedAt = "updated_at"
        }
    }

    func list(namespace: ProjectName) async throws(ProviderError) -> [Resource] {
        let response = try await call(.get, "/credentials")
        let items: [Wire]
        do {
            items = try JSONDecoder().decode([Wire].self, from: response.body)
        } catch {
            throw ProviderError(.badAnswer, request: "GET /credentials",
                                message: "\(response.status) with an answer credops cannot read (\(response.body.count) bytes; expected a list of credentials)")
        }
        var resources: [Resource] = []
        resources.reserveCapacity(items.count)
        for item in items {
            // An id that is not the documented 24 hex digits is never put in a path.
            guard Self.isID(item.id) else {
                throw ProviderError(.badAnswer, request: "GET /credentials",
                                    message: "a credential's id is not 24 hex digits (\(connection.runSecrets.redactor.serverText(item.id, limit: 40)))")
            }
            resources.append(resource(item, namespace: namespace))
        }
        return resources
    }

    private func resource(_ item: Wire, namespace: ProjectName) -> Resource {
        let key = CredentialKey(item.name)
        var fields: [String: FieldValue] = [
            "type": .string(item.type ?? "user"), "package": .string(item.package ?? ""), "username": .string(item.username ?? ""),
        ]
        if let created = item.createdAt { fields["created_at"] = .string(created) }
        if let updated = item.updatedAt { fields["updated_at"] = .string(updated) }
        // The password the server returns is fingerprinted here and goes no further; a masked
        // one (null) leaves the comparison to state, as for a write-only secret.
        let fingerprint = item.password.flatMap { password in
            connection.fingerprintSecret?(namespace, key, Secret(password))
        }
        // Not added to the run's redactor: a live password is never put in any output, and a
        // shared account must not be able to blank out words of credops' output (or slow every
        // run by its size) by choosing passwords.
        return Resource(id: key, fields: FieldMap(fields), serverID: item.id.lowercased(), secretFingerprint: fingerprint)
    }

    static func isID(_ text: String) -> Bool {
        text.utf8.count == 24 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || (65...70).contains($0) }
    }

    func grants(of credential: CredentialAddress) async throws(ProviderError) -> [AccessGrant] { [] }

    func create(_ resource: Resource, in namespace: ProjectName, secret: Secret?) async throws(ProviderError) -> CreatedCredential {
        let response = try await call(.post, "/credentials", body: try body(resource, secret: secret, path: "POST /credentials"), secrets: secret.map { [$0] } ?? [])
        guard var made = try? JSONDecoder().decode(Wire.self, from: response.body), Self.isID(made.id) else {
            // Stored, but the id is unknown: the engine reads back to find it.
            throw ProviderError(.badAnswer, request: "POST /credentials", message: "\(response.status) without the new credential's id",
                                outcomeUnknown: true)
        }
        made.id = made.id.lowercased()
        var readOnly: [String: FieldValue] = [:]
        if let created = made.createdAt { readOnly["created_at"] = .string(created) }
        if let updated = made.updatedAt { readOnly["updated_at"] = .string(updated) }
        return CreatedCredential(serverID: made.id, readOnly: readOnly)
    }

    /// A full PUT: the API replaces the whole object, so the secret goes with every update.
    func update(_ credential: CredentialAddress, to resource: Resource, changes: [FieldChange],
                secret: Secret?) async throws(ProviderError) {
        let path = try self.path(credential, "PUT")
        _ = try await call(.put, path, body: try body(resource, secret: secret, path: "PUT \(path)"), secrets: secret.map { [$0] } ?? [])
    }

    /// No call of its own: the secret is a field of the object, so a new one is a full PUT of
    /// the current fields with it (read first, so nothing else changes).
    func setSecret(_ credential: CredentialAddress, secret: Secret) async throws(ProviderError) {
        let path = try self.path(credential, "PUT")
        let response = try await call(.get, path)
        guard let current = try? JSONDecoder().decode(Wire.self, from: response.body), current.id.lowercased() == credential.serverID?.lowercased() else {
            throw ProviderError(.badAnswer, request: "GET \(path)", message: "\(response.status) with an answer credops cannot read, or about another credential")
        }
        var resource = self.resource(current, namespace: credential.namespace)
        resource.id = credential.key
        _ = try await call(.put, path, body: try body(resource, secret: secret, path: "PUT \(path)"), secrets: [secret])
    }

    func delete(_ credential: CredentialAddress) async throws(ProviderError) {
        let path = try self.path(credential, "DELETE")
        do {
            _ = try await call(.delete, path)
        } catch where error.status == 404 {
            // Already gone (deleted out of band, or an earlier attempt went through): done.
        }
    }

    func grant(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "grant", message: "LeadConduit credentials have no grants")
    }

    func revoke(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "revoke", message: "LeadConduit credentials have no grants")
    }

    // MARK: Plumbing

    private func path(_ credential: CredentialAddress, _ method: String) throws(ProviderError) -> String {
        guard let id = credential.serverID, Self.isID(id) else {
            throw ProviderError(.badAnswer, request: "\(method) /credentials/{id}",
                                message: "not sent: the server's id of \(credential.key) is not known")
        }
        return "/credentials/" + id
    }

    private func body(_ resource: Resource, secret: Secret?, path: String) throws(ProviderError) -> Data {
        guard let secret else {
            throw ProviderError(.badAnswer, request: path, message: "not sent: LeadConduit needs the password with the whole object, and none is declared")
        }
        func text(_ name: String) -> String {
            if case .string(let s)? = resource[name] { return s }
            return ""
        }
        let object: [String: String] = [
            "name": resource.id.rawValue, "type": text("type").isEmpty ? "user" : text("type"), "package": text("package"),
            "username": text("username"), "password": secret.reveal(),
        ]
        // The one place the password leaves its `Secret`: the request body.
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// One call through the shared caller (auth, retries, counts). A refused key is never
    /// retried: a reset key does not start working by asking again.
    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, secrets: [Secret] = []) async throws(ProviderError) -> HTTPResponse {
        try await caller.call(method, path, body: body, secrets: secrets) { failure($0, method: method, summary: $1, secrets: secrets) }
    }

    private func failure(_ response: HTTPResponse, method: HTTPMethod, summary: String, secrets: [Secret]) -> ProviderError {
        let said = ((try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any])?["error"] as? String
        return caller.failure(response, method: method, summary: summary, said: said, secrets: secrets, environment: environment, credentials: "API key",
                              refused: "LeadConduit refused it (a reset key stops working at once); put the account's current API key there")
    }
}
