import CredOps
import Foundation

/// LeadVibe: `/secrets` of an Organizational Unit, selected with `POST /org-units/active` and
/// the `activeOu` cookie; bearer auth; ids assigned by the server; the client secret generated
/// by the server and shown once, in the create answer.
public struct LeadVibeProvider: Provider {
    public let name = "leadvibe"

    public init() {}

    public var schema: ResourceSchema { Self.credentialSchema }

    /// The credential as LeadVibe documents it: a name (1–50 characters) and one switch; the
    /// rest is the server's.
    public static let credentialSchema = ResourceSchema(
        identifierField: "name",
        secretField: "client_secret",
        fields: [
            FieldSpec("trust_upstream_consent", .bool, default: .bool(false), summary: true),
            FieldSpec("client_id", .string, default: .string(""), readOnly: true),
            FieldSpec("created_at", .string, default: .string(""), readOnly: true),
        ],
        grantsField: "access",
        grantTypes: [],
        identifiersAreGlobal: false,
        capabilities: ProviderCapabilities(namespace: .named(), secret: .generated, identity: .serverAssigned, unmappedProjectsShareDefault: true),
        emulatorSettings: [
            EmulatorSettingSpec("units", .strings),
            EmulatorSettingSpec("latencyMilliseconds", .integer(0...60_000)),
            EmulatorSettingSpec("unitSessionSeconds", .integer(1...86_400)),
        ],
        identifierLength: 1...50,
        createdAtField: "created_at")

    public func session(for environment: EnvironmentConfig, connection: Connection, http: HTTPClient) -> any ProviderSession {
        LeadVibeSession(environment: environment, connection: connection, http: http)
    }
}

/// Calls on one LeadVibe account. A manifest project is a unit: the one `projects:` maps it
/// to, else the unit flagged `is_default`. Each unit has its own `activeOu` cookie, selected
/// once and sent with every call on that unit, so concurrent work on two units never mixes.
final class LeadVibeSession: ProviderSession {
    private let environment: EnvironmentConfig
    private let caller: ProviderCaller
    private let units = FetchedOnce<[Unit]>()
    private let cookies = FetchedOnce<String>()
    private var connection: Connection { caller.connection }

    init(environment: EnvironmentConfig, connection: Connection, http: HTTPClient) {
        self.environment = environment
        self.caller = ProviderCaller(connection: connection, http: http, defaultTokenPath: "/oauth/token")
    }

    var statistics: RequestStatistics { caller.statistics }

    struct Unit: Decodable, Sendable {
        var unitID: String
        var name: String?
        var isDefault: Bool?

        enum CodingKeys: String, CodingKey { case unitID = "unit_id", name, isDefault = "is_default" }
    }

    /// A credential as listed (never with its secret) and as created (with it, once).
    struct Wire: Decodable {
        var secretID: String
        var clientID: String?
        var name: String
        var trustUpstreamConsent: Bool?
        var createdAt: String?
        var clientSecret: String?

        enum CodingKeys: String, CodingKey {
            case secretID = "secret_id", clientID = "client_id", name, trustUpstreamConsent = "trust_upstream_consent"
            case createdAt = "created_at", clientSecret = "client_secret"
        }
    }

    // MARK: Units

    /// The unit a namespace names: a unit id as is; a project no `projects:` entry maps, the
    /// default unit; a mapped name that is no unit, an error naming the units there are.
    private func unit(for namespace: ProjectName) async throws(ProviderError) -> String {
        let all = try await units.value { () async throws(ProviderError) -> [Unit] in try await self.readUnits() }
        if all.contains(where: { $0.unitID == namespace.rawValue }) { return namespace.rawValue }
        let known = all.map { $0.unitID + ($0.isDefault == true ? " (default)" : "") }.joined(separator: ", ")
        if environment.projects.values.contains(namespace) {
            throw ProviderError(.badAnswer, request: "GET /org-units",
                                message: "environment \(environment.name) maps a project to unit '\(TextSafety.escaped(namespace.rawValue))', which this LeadVibe account does not have; its units: \(known)")
        }
        guard let fallback = all.first(where: { $0.isDefault == true }) else {
            throw ProviderError(.badAnswer, request: "GET /org-units",
                                message: "no unit is flagged is_default, so project \(TextSafety.escaped(namespace.rawValue)) has no unit; map it under projects: in \(environment.file) (units: \(known))")
        }
        return fallback.unitID
    }

    private func readUnits() async throws(ProviderError) -> [Unit] {
        let response = try await call(.get, "/org-units", unit: nil)
        guard let list = try? JSONDecoder().decode([Unit].self, from: response.body) else {
            throw ProviderError(.badAnswer, request: "GET /org-units", message: "\(response.status) with an answer credops cannot read (\(response.body.count) bytes)")
        }
        return list.filter { Self.isSafeID($0.unitID) }
    }

    /// Selects `unit` and returns the value of the `activeOu` cookie the server set for it.
    private func select(_ unit: String) async throws(ProviderError) -> String {
        let body = (try? JSONSerialization.data(withJSONObject: ["unit_id": unit])) ?? Data()
        let response = try await call(.post, "/org-units/active", body: body, unit: nil)
        if let value = response.cookie("activeOu") {
            // A session cookie is a credential: never shown, never sent elsewhere.
            connection.runSecrets.add([Secret(value)])
            return value
        }
        throw ProviderError(.badAnswer, request: "POST /org-units/active", message: "\(response.status) without an activeOu cookie for unit \(TextSafety.escaped(unit))")
    }

    // MARK: Secrets

    func list(namespace: ProjectName) async throws(ProviderError) -> [Resource] {
        let unit = try await unit(for: namespace)
        let response = try await call(.get, "/secrets", unit: unit)
        let items: [Wire]
        do {
            items = try JSONDecoder().decode([Wire].self, from: response.body)
        } catch {
            throw ProviderError(.badAnswer, request: "GET /secrets",
                                message: "\(response.status) with an answer credops cannot read (\(response.body.count) bytes; expected a list of secrets)")
        }
        var resources: [Resource] = []
        resources.reserveCapacity(items.count)
        for item in items {
            guard Self.isSafeID(item.secretID) else {
                throw ProviderError(.badAnswer, request: "GET /secrets",
                                    message: "a credential's secret_id is not a plain id (\(connection.runSecrets.redactor.serverText(item.secretID, limit: 40)))")
            }
            var fields: [String: FieldValue] = ["trust_upstream_consent": .bool(item.trustUpstreamConsent ?? false)]
            if let clientID = item.clientID { fields["client_id"] = .string(clientID) }
            if let created = item.createdAt { fields["created_at"] = .string(created) }
            resources.append(Resource(id: CredentialKey(item.name), fields: FieldMap(fields), serverID: item.secretID))
        }
        return resources
    }

    func grants(of credential: CredentialAddress) async throws(ProviderError) -> [AccessGrant] { [] }

    /// `POST /secrets` takes a name (and the switch); the answer's client secret is the only
    /// copy there will ever be.
    func create(_ resource: Resource, in namespace: ProjectName, secret: Secret?) async throws(ProviderError) -> CreatedCredential {
        let unit = try await unit(for: namespace)
        var object: [String: Any] = ["name": resource.id.rawValue]
        if case .bool(true)? = resource["trust_upstream_consent"] { object["trust_upstream_consent"] = true }
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        let response = try await call(.post, "/secrets", body: body, unit: unit)
        let answer = try? JSONDecoder().decode(Wire.self, from: response.body)
        // Redacted from here on, whether or not the answer passes its checks below.
        if let sent = answer?.clientSecret, !sent.isEmpty { connection.runSecrets.add([Secret(sent)]) }
        guard let made = answer, Self.isSafeID(made.secretID),
              let clientSecret = made.clientSecret, Self.isUsableSecret(clientSecret), let clientID = made.clientID, Self.isSafeID(clientID) else {
            // Made, perhaps, but without a secret anybody can use: the engine reads back and
            // replaces what it finds.
            throw ProviderError(.badAnswer, request: "POST /secrets", message: "\(response.status) without the new credential's id, client_id and client_secret",
                                outcomeUnknown: true)
        }
        let generated = Secret(clientSecret)
        var readOnly: [String: FieldValue] = ["client_id": .string(clientID)]
        if let created = made.createdAt { readOnly["created_at"] = .string(created) }
        // A server that ignored the switch shows as a difference in the next plan, which updates
        // it: nothing more is sent here, where a failure would lose the secret just made.
        return CreatedCredential(serverID: made.secretID, readOnly: readOnly, generated: ["client_secret": generated],
                                 delivered: ["client_id": clientID, "secret_id": made.secretID])
    }

    /// Only `trust_upstream_consent` can change.
    func update(_ credential: CredentialAddress, to resource: Resource, changes: [FieldChange],
                secret: Secret?) async throws(ProviderError) {
        guard changes.contains(where: { $0.field == "trust_upstream_consent" }) else { return }
        let value: Bool = if case .bool(true)? = resource["trust_upstream_consent"] { true } else { false }
        try await setTrust(try id(credential, "PUT"), value, unit: try await unit(for: credential.namespace))
    }

    private func setTrust(_ id: String, _ value: Bool, unit: String) async throws(ProviderError) {
        let body = (try? JSONSerialization.data(withJSONObject: ["trust_upstream_consent": value])) ?? Data()
        _ = try await call(.put, "/secrets/" + id, body: body, unit: unit)
    }

    func setSecret(_ credential: CredentialAddress, secret: Secret) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "setSecret", message: "LeadVibe generates client secrets; a new one comes with a replace (credops rotate)")
    }

    func delete(_ credential: CredentialAddress) async throws(ProviderError) {
        let path = "/secrets/" + (try id(credential, "DELETE"))
        do {
            _ = try await call(.delete, path, unit: try await unit(for: credential.namespace))
        } catch where error.status == 404 {
            // Already gone (deleted out of band, or an earlier attempt went through): done.
        }
    }

    func grant(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "grant", message: "LeadVibe credentials have no grants")
    }

    func revoke(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "revoke", message: "LeadVibe credentials have no grants")
    }

    // MARK: Plumbing

    /// A secret worth delivering: printable ASCII, at most 4 KiB (it goes into files and stdin
    /// as it is).
    static func isUsableSecret(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 4096 && text.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    }

    /// Ids go into paths (and client ids into sinks): letters, digits, `_` and `-` only.
    static func isSafeID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 95 || $0 == 45 }
    }

    private func id(_ credential: CredentialAddress, _ method: String) throws(ProviderError) -> String {
        guard let id = credential.serverID, Self.isSafeID(id) else {
            throw ProviderError(.badAnswer, request: "\(method) /secrets/{id}", message: "not sent: the server's id of \(credential.key) is not known")
        }
        return id
    }

    /// One call through the shared caller, on `unit` (with its cookie) or on the account. A
    /// cookie the server no longer knows ("Active OU must be set") is selected again, once.
    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, unit: String?) async throws(ProviderError) -> HTTPResponse {
        guard let unit else {
            return try await caller.call(method, path, body: body) { failure($0, method: method, summary: $1) }
        }
        var reselected = false
        while true {
            let cookie = try await cookies.value(unit) { () async throws(ProviderError) -> String in try await self.select(unit) }
            let response = try await caller.send(method, path, body: body, headers: [("Cookie", "activeOu=\(cookie)")])
            if response.isSuccess { return response }
            if response.status == 400, !reselected, Self.errorText(response)?.lowercased().contains("active ou") == true {
                reselected = true
                await cookies.forget(unit) { $0 == cookie }
                continue
            }
            // Redirects and errors worded as for any other call.
            return try caller.checked(response, method, path) { failure($0, method: method, summary: $1) }
        }
    }

    static func errorText(_ response: HTTPResponse) -> String? {
        let object = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any]
        return (object?["error"] as? String) ?? (object?["message"] as? String)
    }

    private func failure(_ response: HTTPResponse, method: HTTPMethod, summary: String) -> ProviderError {
        caller.failure(response, method: method, summary: summary, said: Self.errorText(response), environment: environment,
                       credentials: "token", refused: "LeadVibe refused it; put a valid API token there")
    }
}
