import CredOps
import Foundation

/// Provider profiles the tests run: LeadConduit written as a profile (to prove the language
/// can say what the Swift provider does), the LeadExec example, and profiles that use every
/// other part of the language (namespaces by path, header, query and selection call; each kind
/// of paging; PUT and PATCH; each kind of secret; switches by calls; each auth kind).
public enum ProfileFixtures {
    /// LeadConduit's `/credentials`, as `LeadConduitProvider` calls it.
    public static let leadConduit = """
        apiVersion: credops/v1
        kind: ProviderProfile
        name: leadconduit-profile
        description: LeadConduit (ActiveProspect) credentials, as a profile
        auth: { allowed: [apiKey, oauth2] }
        namespace: none
        paths: { collection: /credentials, item: "/credentials/{id}" }
        identity: { id: /id }
        key: { name: name, pointer: /name }
        update: put
        fields:
          - { name: type, oneOf: [user, token, oauth], default: user }
          - { name: package, required: true, maxLength: 200 }
          - { name: username, required: true, minLength: 1, maxLength: 500 }
          - { name: created_at, readOnly: true }
          - { name: updated_at, readOnly: true }
        secret: { declared: { name: password, pointer: /password, readable: true } }
        errors: { message: /error }

        """

    /// The repository's example (`providers/leadexec.yaml`).
    public static var leadExec: String {
        (try? String(contentsOfFile: PackagePaths.path("providers/leadexec.yaml"), encoding: .utf8)) ?? ""
    }

    /// Namespaces in the path, pages by number, PUT, a write-only secret, the key as the id, a
    /// switch turned by calls, bearer tokens, its own rate-limit header.
    public static let vault = """
        apiVersion: credops/v1
        kind: ProviderProfile
        name: vault-style
        auth: { allowed: [bearer] }
        namespace: pathSegment
        paths: { collection: "/api/v2/teams/{namespace}/keys", item: "/api/v2/teams/{namespace}/keys/{id}" }
        list: { items: /items, paging: { pageNumber: { parameter: page, sizeParameter: per_page, size: 2, first: 0 } } }
        identity: { id: /login, keyIsID: true }
        key: { name: login, pointer: /login, maxLength: 64 }
        update: put
        fields:
          - { name: owner, pointer: /meta/owner, required: true }
          - { name: expires, type: instant, expiry: true }
          - { name: tags, type: stringSet }
          - name: active
            type: bool
            default: true
            calls: { method: POST, on: "/api/v2/teams/{namespace}/keys/{id}/activate", off: "/api/v2/teams/{namespace}/keys/{id}/deactivate" }
        secret: { declared: { name: password, pointer: /auth/password } }
        errors: { message: /problem/detail }
        rateLimit: { retryAfterHeader: X-Retry-In }

        """

    /// A namespace selected by a call and a cookie, next-page links, PATCH, generated secrets, an
    /// API key in its own header.
    public static let units = """
        apiVersion: credops/v1
        kind: ProviderProfile
        name: units-style
        auth: { allowed: [apiKey], apiKeyHeader: X-API-Key }
        namespace: { select: { path: /session/unit, bodyField: unit, cookie: unitSession } }
        paths: { collection: /clients, item: "/clients/{id}" }
        list: { items: /results, paging: { nextLink: /links/next } }
        identity: { id: /uid }
        key: { name: label, pointer: /label, maxLength: 50 }
        update: patch
        fields:
          - { name: tier, oneOf: [bronze, silver, gold], default: bronze }
          - { name: note, maxLength: 200 }
          - { name: created, readOnly: true }
        secret:
          generated: { values: { key_id: /key_id, key_secret: /key_secret, pin: /pin }, secret: [key_secret, pin] }

        """

    /// The namespace in a header, a cursor, a readable secret, HTTP Basic.
    public static let header = """
        apiVersion: credops/v1
        kind: ProviderProfile
        name: header-style
        auth: { allowed: [basic] }
        namespace: { header: X-Workspace }
        paths: { collection: /v1/logins, item: "/v1/logins/{id}" }
        list: { items: /data/items, paging: { cursor: { parameter: after, next: /data/cursor } } }
        identity: { id: /id }
        key: { name: user, pointer: /user }
        update: patch
        fields:
          - { name: roles, type: stringSet, oneOf: [read, write, admin], required: true }
          - { name: region, oneOf: [eu, us], immutable: true, default: eu }
        secret: { declared: { name: password, pointer: /password, readable: true } }

        """

    /// The namespace as a query parameter, no paging, OAuth2 with a form token call.
    public static let query = """
        apiVersion: credops/v1
        kind: ProviderProfile
        name: query-style
        auth: { allowed: [oauth2], tokenPath: /auth/token }
        namespace: { query: org }
        paths: { collection: /tokens, item: "/tokens/{id}" }
        identity: { id: /token_id }
        key: { name: title, pointer: /title }
        update: put
        fields:
          - { name: scope, oneOf: [read, write], immutable: true, required: true }
        secret: { generated: { values: { token: /token }, secret: [token] } }

        """

    /// Parses one profile text (through the loader, as `providers/` would be read).
    public static func profile(_ text: String) throws -> ProviderProfile {
        let dir = TemporaryDirectory()
        dir.write("providers/p.yaml", text)
        let (profiles, _, diagnostics) = InputLoader(schemas: [:]).loadProfiles(directory: dir.url("providers"),
                                                                                  builtIn: ["apinizer", "leadconduit", "leadvibe"])
        guard let profile = profiles.first, !diagnostics.hasErrors else {
            throw ProfileFixtureError(description: diagnostics.map(\.description).joined(separator: "\n"))
        }
        return profile
    }

    public struct ProfileFixtureError: Error, CustomStringConvertible {
        public var description: String
    }
}
