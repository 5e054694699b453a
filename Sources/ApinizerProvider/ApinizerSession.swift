import CredOps
import Foundation

/// Calls on one Apinizer manager: paths URL-encoded with their trailing slash, Bearer auth,
/// retries by the shared policy, errors with the server's own code and text (redacted).
final class ApinizerSession: ProviderSession {
    private let caller: ProviderCaller

    init(connection: Connection, http: HTTPClient) {
        self.caller = ProviderCaller(connection: connection, http: http, defaultTokenPath: "/apiops/auth/token")
    }

    var statistics: RequestStatistics { caller.statistics }

    // MARK: Paths

    private func credentialsPath(_ project: ProjectName) -> String {
        "/apiops/projects/\(URLParts.encodeSegment(project.rawValue))/credentials/"
    }

    private func credentialPath(_ project: ProjectName, _ id: CredentialKey) -> String {
        credentialsPath(project) + URLParts.encodeSegment(id.rawValue) + "/"
    }

    // MARK: Calls

    func list(namespace: ProjectName) async throws(ProviderError) -> [Resource] {
        let response = try await call(.get, credentialsPath(namespace))
        let answer: ApinizerWire.ListAnswer<ApinizerWire.WireCredential> = try decode(response, .get, credentialsPath(namespace))
        return (answer.resultList ?? []).map(\.resource)
    }

    func grants(of credential: CredentialAddress) async throws(ProviderError) -> [AccessGrant] {
        let path = credentialPath(credential.namespace, credential.key) + "access/"
        let response = try await call(.get, path)
        let answer: ApinizerWire.ListAnswer<ApinizerWire.WireGrant> = try decode(response, .get, path)
        return Array(Set((answer.resultList ?? []).map { AccessGrant(type: $0.type, name: $0.name) })).sorted()
    }

    /// The username is the id: nothing is assigned, so the answer carries nothing back.
    func create(_ resource: Resource, in namespace: ProjectName, secret: Secret?) async throws(ProviderError) -> CreatedCredential {
        let secret = try required(secret, .post, credentialsPath(namespace))
        try await write(.post, credentialsPath(namespace), body: ApinizerWire.credentialBody(resource, password: secret), secrets: [secret])
        return CreatedCredential()
    }

    /// A full PUT of every field: the API takes no partial update, and needs the password with it.
    func update(_ credential: CredentialAddress, to resource: Resource, changes: [FieldChange],
                secret: Secret?) async throws(ProviderError) {
        let path = credentialsPath(credential.namespace)
        let secret = try required(secret, .put, path)
        try await write(.put, path, body: ApinizerWire.credentialBody(resource, password: secret), secrets: [secret])
    }

    func setSecret(_ credential: CredentialAddress, secret: Secret) async throws(ProviderError) {
        try await write(.patch, credentialPath(credential.namespace, credential.key), body: ApinizerWire.passwordBody(secret), secrets: [secret])
    }

    func delete(_ credential: CredentialAddress) async throws(ProviderError) {
        do {
            try await write(.delete, credentialPath(credential.namespace, credential.key), body: nil, secrets: [])
        } catch where Self.isNotFound(error, id: credential.key) {
            // Already gone (deleted out of band, or our earlier attempt went through): done.
        }
    }

    func grant(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        let path = credentialPath(credential.namespace, credential.key) + "access/"
        do {
            try await write(.put, path, body: ApinizerWire.accessBody(grants), secrets: [])
        } catch where error.status == 400 && error.message.contains("has already access") {
            // Some of them exist already (granted out of band, or an earlier answer was lost):
            // grant only what is still missing.
            let live = Set(try await self.grants(of: credential))
            let missing = grants.filter { !live.contains($0) }
            if !missing.isEmpty { try await write(.put, path, body: ApinizerWire.accessBody(missing), secrets: []) }
        }
    }

    func revoke(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        // The API revokes a missing grant silently, so a repeated revoke is harmless.
        try await write(.delete, credentialPath(credential.namespace, credential.key) + "access/", body: ApinizerWire.accessBody(grants),
                        secrets: [])
    }

    /// Apinizer takes the password with every create and update; the engine always has it for
    /// this provider (its secret is declared), so a missing one is a bug said plainly.
    private func required(_ secret: Secret?, _ method: HTTPMethod, _ path: String) throws(ProviderError) -> Secret {
        guard let secret else {
            throw ProviderError(.badAnswer, request: "\(method.rawValue) \(path)",
                                message: "not sent: Apinizer needs the credential's password with this call, and none is declared")
        }
        return secret
    }

    private static func isNotFound(_ error: ProviderError, id: CredentialKey) -> Bool {
        error.status == 400 && error.message.contains("was not found") && error.message.contains(id.rawValue)
            || error.status == 404 && !error.message.contains("Project")
    }

    // MARK: Plumbing

    private func write(_ method: HTTPMethod, _ path: String, body: Data?, secrets: [Secret]) async throws(ProviderError) {
        let response = try await call(method, path, body: body, secrets: secrets)
        if let failed = ApinizerWire.failedGateways(response.body) {
            let names = failed.map { redact($0.name, secrets, limit: 200) }
            let detail = failed.isEmpty
                ? "the manager reported the deployment as failed"
                : zip(names, failed).map { name, gateway in
                    "gateway \(name) failed" + (gateway.message.isEmpty ? "" : ": \(redact(gateway.message, secrets))")
                }.joined(separator: "; ")
            throw ProviderError(.gatewayFailed(gateways: names), request: "\(method.rawValue) \(path)",
                                message: "stored on the manager but not deployed: \(detail)")
        }
    }

    /// One API call through the shared caller; an answer that is not a success becomes a
    /// `ProviderError` with the server's own code and text (redacted).
    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, secrets: [Secret] = []) async throws(ProviderError) -> HTTPResponse {
        try await caller.call(method, path, body: body, secrets: secrets) { failure($0, method: method, summary: $1, secrets: secrets) }
    }

    private func failure(_ response: HTTPResponse, method: HTTPMethod, summary: String, secrets: [Secret]) -> ProviderError {
        let status = response.status
        // 5xx after a write may mean the change was stored and only the answer failed.
        let unknown = method != .get && status >= 500
        guard let body = ApinizerWire.errorBody(response.body) else {
            let type = response.headers["Content-Type"].map { ", \(redact($0, secrets, limit: 100))" } ?? ""
            return ProviderError(.server(status: status, code: ""), request: summary,
                                 message: "\(status) (an answer that is not an API error: \(response.body.count) bytes\(type))", outcomeUnknown: unknown)
        }
        let code = redact(body.code, secrets, limit: 100)
        var text = "\(status) \(code): \(redact(body.description, secrets))"
        if !body.validation.isEmpty {
            text += " (" + body.validation.prefix(20).map { "\(redact($0.field, secrets, limit: 100)): \(redact($0.message, secrets, limit: 300))" }
                .joined(separator: "; ") + (body.validation.count > 20 ? "; …" : "") + ")"
        }
        let kind: ProviderError.Kind = status == 401 || status == 403 ? .authentication : .server(status: status, code: code)
        if status == 401 {
            text += "; check the environment's auth token or client login"
        }
        return ProviderError(kind, request: summary, message: text, outcomeUnknown: unknown)
    }

    /// Server-supplied text made safe for a message (see `ProviderCaller.serverText`).
    private func redact(_ text: String, _ secrets: [Secret], limit: Int = 2000) -> String {
        caller.serverText(text, extra: secrets, limit: limit)
    }

    private func decode<T: Decodable>(_ response: HTTPResponse, _ method: HTTPMethod, _ path: String) throws(ProviderError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw ProviderError(.badAnswer, request: "\(method.rawValue) \(path)",
                                message: "\(response.status) with an answer credops cannot read (\(response.body.count) bytes of non-API JSON)")
        }
    }
}
