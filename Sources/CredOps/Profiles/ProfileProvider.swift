import Foundation

/// A provider described by a profile (`kind: ProviderProfile`): the generic engine's calls,
/// laid out as the profile says. Everything else (plan, apply, replace, delivery, rotation,
/// state, reports) is the same as for a built-in provider.
public struct ProfileProvider: Provider {
    public let profile: ProviderProfile
    public let schema: ResourceSchema

    public init(_ profile: ProviderProfile) {
        self.profile = profile
        self.schema = profile.schema
    }

    public var name: String { profile.name }

    public func session(for environment: EnvironmentConfig, connection: Connection, http: HTTPClient) -> any ProviderSession {
        ProfileSession(profile: profile, environment: environment, connection: connection, http: http)
    }
}

/// Calls on one environment of a profile-described API. Every value a server sends is checked
/// before use: ids before they go into a path, types before they become field values, generated
/// secrets before they are delivered, next-page links before they are followed (same server only).
final class ProfileSession: ProviderSession {
    private let profile: ProviderProfile
    private let environment: EnvironmentConfig
    private let caller: ProviderCaller
    private let cookies = FetchedOnce<String>()
    private var connection: Connection { caller.connection }

    /// Pages a listing follows at most: a server that never stops paging is an error, not a hang.
    static let maxPages = 10_000
    /// Credentials a listing holds at most.
    static let maxItems = 1_000_000

    init(profile: ProviderProfile, environment: EnvironmentConfig, connection: Connection, http: HTTPClient) {
        self.profile = profile
        self.environment = environment
        var connection = connection
        connection.retry.retryAfterHeader = profile.retryAfterHeader
        // An API key the profile sends in a header of its own, not as a Basic password.
        if let header = profile.auth.apiKeyHeader, case .apiKey? = environment.auth, case .basic(_, let key) = connection.credentials {
            connection.credentials = .header(name: header, value: key)
        }
        self.caller = ProviderCaller(connection: connection, http: http, defaultTokenPath: profile.auth.tokenPath ?? "/oauth/token",
                                     defaultTokenBody: profile.auth.tokenBody)
    }

    var statistics: RequestStatistics { caller.statistics }

    // MARK: Reading

    func list(namespace: ProjectName) async throws(ProviderError) -> [Resource] {
        var resources: [Resource] = []
        var query = pagingQuery(first: true, cursor: nil)
        var path = try render(profile.paths.collection, namespace: namespace, id: nil)
        var seenCursors = Set<String>()
        var previousPage: [String] = []
        var largestPage = 0
        var followsLink = false
        for page in 0..<Self.maxPages {
            let target = followsLink ? linkWithNamespace(path, namespace: namespace) : path + queryString(namespace: namespace, extra: query)
            let response = try await call(.get, target, namespace: namespace)
            let summary = "GET \(profile.paths.collection)"
            guard let document = Self.parse(response.body) else {
                throw ProviderError(.badAnswer, request: summary, message: "\(response.status) with an answer that is not JSON (\(response.body.count) bytes)")
            }
            guard let items = document[profile.list.items]?.array else {
                throw ProviderError(.badAnswer, request: summary,
                                    message: "\(response.status) without a list of credentials at \(profile.list.items.description.isEmpty ? "the top" : profile.list.items.description)")
            }
            var pageKeys: [String] = []
            pageKeys.reserveCapacity(items.count)
            for item in items {
                guard case .object = item else {
                    throw ProviderError(.badAnswer, request: summary, message: "a listed credential is not a JSON object")
                }
                let listed = try resource(item, namespace: namespace, request: summary)
                pageKeys.append(listed.serverID ?? listed.id.rawValue)
                resources.append(listed)
            }
            guard resources.count <= Self.maxItems else {
                throw ProviderError(.badAnswer, request: summary, message: "more than \(Self.maxItems) credentials listed: paging stopped")
            }
            if !pageKeys.isEmpty && pageKeys == previousPage {
                throw ProviderError(.badAnswer, request: summary,
                                    message: "page \(page + 1) lists the same credentials as page \(page): the server ignores the paging the profile sets (list.paging)")
            }
            previousPage = pageKeys
            switch profile.list.paging {
            case .none:
                return resources
            case .pageNumber(_, _, _, let first):
                // A server may hold pages to fewer items than asked for: only an empty page, or
                // one shorter than an earlier page, is the last.
                if items.isEmpty || items.count < largestPage { return resources }
                largestPage = max(largestPage, items.count)
                query = pagingQuery(first: false, cursor: nil, page: first + page + 1)
            case .cursor(_, let next):
                guard let cursor = document[next]?.string, !cursor.isEmpty else { return resources }
                guard cursor.utf8.count <= 4096, seenCursors.insert(cursor).inserted else {
                    throw ProviderError(.badAnswer, request: summary, message: "the server's next cursor repeats or is over 4 KiB: paging would not end")
                }
                query = pagingQuery(first: false, cursor: cursor)
            case .nextLink(let next):
                guard let link = document[next]?.string, !link.isEmpty else { return resources }
                guard let nextPath = sameServerPath(link), seenCursors.insert(nextPath).inserted else {
                    throw ProviderError(.badAnswer, request: summary,
                                        message: "the next-page link is not on \(connection.baseURL), or repeats: not followed (\(caller.serverText(link, limit: 120)))")
                }
                path = nextPath
                followsLink = true
            }
        }
        throw ProviderError(.badAnswer, request: "GET \(profile.paths.collection)", message: "more than \(Self.maxPages) pages: paging stopped")
    }

    func grants(of credential: CredentialAddress) async throws(ProviderError) -> [AccessGrant] { [] }

    /// A credential object as the engine sees it. The key, the id and each field are checked.
    private func resource(_ object: JSONDocument, namespace: ProjectName, request: String) throws(ProviderError) -> Resource {
        guard let key = object[profile.key.pointer]?.string else {
            throw ProviderError(.badAnswer, request: request, message: "a listed credential has no text at \(profile.key.pointer) (its \(profile.key.name))")
        }
        var serverID: String?
        if !profile.identity.keyIsID {
            guard let id = Self.idText(object[profile.identity.id]) else {
                throw ProviderError(.badAnswer, request: request,
                                    message: "credential \(caller.serverText(key, limit: 60)) has no usable id at \(profile.identity.id) (text or a whole number, at most 200 printable characters)")
            }
            serverID = id
        }
        var fields: [String: FieldValue] = [:]
        for field in profile.fields {
            let raw = object[field.pointer]
            guard let value = Self.fieldValue(raw, kind: field.kind) else {
                throw ProviderError(.badAnswer, request: request,
                                    message: "credential \(caller.serverText(key, limit: 60)): \(field.name) at \(field.pointer) is not \(Self.kindName(field.kind))")
            }
            if let value { fields[field.name] = value }
        }
        var fingerprint: Fingerprint?
        if case .declared(_, let pointer, true) = profile.secret, let secret = object[pointer]?.string {
            // Fingerprinted here and kept nowhere; a masked secret (null) leaves it to state.
            fingerprint = connection.fingerprintSecret?(namespace, CredentialKey(key), Secret(secret))
        }
        return Resource(id: CredentialKey(key), fields: FieldMap(fields), serverID: serverID, secretFingerprint: fingerprint)
    }

    // MARK: Writing

    func create(_ resource: Resource, in namespace: ProjectName, secret: Secret?) async throws(ProviderError) -> CreatedCredential {
        let path = try render(profile.paths.collection, namespace: namespace, id: nil)
        let summary = "POST \(profile.paths.collection)"
        var object = body(resource, only: nil)
        if case .declared(_, let pointer, _) = profile.secret {
            guard let secret else {
                throw ProviderError(.badAnswer, request: summary, message: "not sent: \(profile.name) needs the \(profile.schema.secretField) at create, and none is declared")
            }
            object.set(.string(secret.reveal()), at: pointer)
        }
        let response = try await call(.post, path + queryString(namespace: namespace), body: object.data, secrets: secret.map { [$0] } ?? [],
                                      namespace: namespace)
        let answer = Self.parse(response.body)
        // Every generated secret in the answer is one of this run's secrets before anything is
        // checked: an error below (or a read-back) must never carry one.
        if case .generated(let values, let secrets) = profile.secret, let answer {
            connection.runSecrets.add(values.filter { secrets.contains($0.name) }.compactMap { answer[$0.pointer]?.string }.filter { !$0.isEmpty }.map { Secret($0) })
        }
        var made = CreatedCredential()
        if profile.identity.keyIsID {
            made.serverID = nil
        } else {
            guard let answer, let id = Self.idText(answer[profile.identity.id]) else {
                // Stored, perhaps, but the id is unknown: the engine reads back to find it.
                throw ProviderError(.badAnswer, request: summary, message: "\(response.status) without the new credential's id at \(profile.identity.id)",
                                    outcomeUnknown: true)
            }
            made.serverID = id
        }
        if let answer {
            for field in profile.fields where field.readOnly {
                if case let value?? = Self.fieldValue(answer[field.pointer], kind: field.kind) { made.readOnly[field.name] = value }
            }
        }
        if case .generated(let values, let secrets) = profile.secret {
            for (name, pointer) in values {
                let text = answer?[pointer]?.string
                if secrets.contains(name) {
                    guard let text, Self.isUsableSecret(text) else {
                        throw ProviderError(.badAnswer, request: summary,
                                            message: "\(response.status) without a usable \(name) at \(pointer) (printable, at most 4 KiB)", outcomeUnknown: true)
                    }
                    made.generated[name] = Secret(text)
                } else {
                    guard let text, Self.isPublicValue(text) else {
                        throw ProviderError(.badAnswer, request: summary,
                                            message: "\(response.status) without a usable \(name) at \(pointer) (printable, at most 512 characters)", outcomeUnknown: true)
                    }
                    made.delivered[name] = text
                }
            }
        }
        // A switch the API turns by calls of its own is turned now; a failure here must not
        // lose a secret just made, so it is left to the next plan, which shows the difference.
        let address = CredentialAddress(namespace: namespace, key: resource.id, serverID: made.serverID)
        for field in profile.fields {
            guard let calls = field.calls, let wanted = resource[field.name], wanted != (field.defaultValue ?? .bool(false)) else { continue }
            try? await turn(calls, on: wanted == .bool(true), address)
        }
        return made
    }

    func update(_ credential: CredentialAddress, to resource: Resource, changes: [FieldChange], secret: Secret?) async throws(ProviderError) {
        let changed = Set(changes.map(\.field))
        let bodyFields = profile.fields.filter { !$0.readOnly && $0.calls == nil && changed.contains($0.name) }
        if !bodyFields.isEmpty {
            let path = try render(profile.paths.item, namespace: credential.namespace, id: credential.id)
            switch profile.update {
            case .putFull:
                var object = body(resource, only: nil)
                if case .declared(_, let pointer, _) = profile.secret, let secret { object.set(.string(secret.reveal()), at: pointer) }
                _ = try await call(.put, path + queryString(namespace: credential.namespace), body: object.data, secrets: secret.map { [$0] } ?? [],
                                   namespace: credential.namespace)
            case .patchChanged:
                let object = body(resource, only: Set(bodyFields.map(\.name)))
                _ = try await call(.patch, path + queryString(namespace: credential.namespace), body: object.data, namespace: credential.namespace)
            }
        }
        for field in profile.fields where changed.contains(field.name) {
            guard let calls = field.calls else { continue }
            try await turn(calls, on: resource[field.name] == .bool(true), credential)
        }
    }

    /// A declared secret is a field of the object: PATCHed alone, or PUT with the current
    /// fields read first (so that nothing else changes).
    func setSecret(_ credential: CredentialAddress, secret: Secret) async throws(ProviderError) {
        guard case .declared(_, let pointer, _) = profile.secret else {
            throw ProviderError(.badAnswer, request: "setSecret", message: "\(profile.name) generates its secrets; a new one comes with a replace (credops rotate)")
        }
        let path = try render(profile.paths.item, namespace: credential.namespace, id: credential.id) + queryString(namespace: credential.namespace)
        var object = JSONDocument.object([:])
        if profile.update == .putFull {
            let response = try await call(.get, path, namespace: credential.namespace)
            guard let current = Self.parse(response.body),
                  let read = try? resource(current, namespace: credential.namespace, request: "GET \(profile.paths.item)"),
                  read.id == credential.key, profile.identity.keyIsID || read.serverID == credential.serverID else {
                throw ProviderError(.badAnswer, request: "GET \(profile.paths.item)", message: "\(response.status) with an answer credops cannot read, or about another credential")
            }
            var resource = read
            resource.id = credential.key
            object = body(resource, only: nil)
        }
        object.set(.string(secret.reveal()), at: pointer)
        _ = try await call(profile.update == .putFull ? .put : .patch, path, body: object.data, secrets: [secret], namespace: credential.namespace)
    }

    func delete(_ credential: CredentialAddress) async throws(ProviderError) {
        let path = try render(profile.paths.item, namespace: credential.namespace, id: credential.id) + queryString(namespace: credential.namespace)
        do {
            _ = try await call(.delete, path, namespace: credential.namespace)
        } catch where error.status == 404 {
            // Already gone (deleted out of band, or an earlier attempt went through): done.
        }
    }

    func grant(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "grant", message: "\(profile.name) credentials have no grants")
    }

    func revoke(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        throw ProviderError(.badAnswer, request: "revoke", message: "\(profile.name) credentials have no grants")
    }

    private func turn(_ calls: ProviderProfile.SwitchCalls, on: Bool, _ credential: CredentialAddress) async throws(ProviderError) {
        let path = try render(on ? calls.on : calls.off, namespace: credential.namespace, id: credential.id) + queryString(namespace: credential.namespace)
        _ = try await call(calls.method, path, body: Data("{}".utf8), namespace: credential.namespace)
    }

    // MARK: Bodies and values

    /// The object a create or PUT sends (every field a manifest declares, the key, switches
    /// excepted), or only the fields named in `only` (a PATCH).
    private func body(_ resource: Resource, only: Set<String>?) -> JSONDocument {
        var object = JSONDocument.object([:])
        if only == nil { object.set(.string(resource.id.rawValue), at: profile.key.pointer) }
        for field in profile.fields where !field.readOnly && field.calls == nil && (only?.contains(field.name) ?? true) {
            let value = resource[field.name] ?? field.defaultValue ?? ProviderProfile.emptyValue(field.kind)
            object.set(JSONDocument(value), at: field.pointer)
        }
        return object
    }

    /// A field's value from JSON: `.some(nil)` when absent or null (the field's default then),
    /// nil when it is of another type.
    static func fieldValue(_ raw: JSONDocument?, kind: FieldSpec.Kind) -> FieldValue?? {
        switch (kind, raw) {
        case (_, nil), (_, .null?): return .some(nil)
        case (.string, .string(let s)?): return .some(.string(s))
        case (.bool, .bool(let b)?): return .some(.bool(b))
        case (.stringSet, .array(let list)?):
            guard list.count <= 10_000 else { return nil }
            var items: [String] = []
            for element in list {
                guard case .string(let s) = element else { return nil }
                items.append(s)
            }
            return .some(.setOf(items))
        case (.instant, .string(let s)?):
            guard let ms = Timestamp.parse(s) else { return nil }
            return .some(.instant(ms))
        default: return nil
        }
    }

    static func kindName(_ kind: FieldSpec.Kind) -> String {
        switch kind {
        case .string: "text"
        case .bool: "true or false"
        case .stringSet: "a list of text"
        case .instant: "an ISO 8601 time"
        }
    }

    /// An id worth putting in a path (encoded as a segment): text or a whole number, 1 to 200
    /// printable ASCII characters.
    static func idText(_ raw: JSONDocument?) -> String? {
        var text: String?
        switch raw {
        case .string(let s)?: text = s
        case .number(let n)? where n >= 0 && n < 9e15 && n == n.rounded(): text = String(Int64(n))
        default: break
        }
        guard let text, !text.isEmpty, text.utf8.count <= 200, text.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { return nil }
        return text
    }

    /// A secret worth delivering: printable ASCII, at most 4 KiB (it goes into files and stdin as it is).
    static func isUsableSecret(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 4096 && text.utf8.allSatisfy { $0 > 32 && $0 < 127 }
    }

    /// A public value delivered with the secret (a client id): printable, at most 512 bytes.
    static func isPublicValue(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 512 && text.unicodeScalars.allSatisfy { $0.value >= 32 && $0.value != 127 && !TextSafety.isUnsafe($0) }
    }

    static func parse(_ data: Data) -> JSONDocument? { JSONDocument.parse(data) }

    // MARK: Paths, namespaces, paging

    /// The path of `template` with `{id}` and `{namespace}` filled in, each as one encoded segment.
    private func render(_ template: PathTemplate, namespace: ProjectName, id: String?) throws(ProviderError) -> String {
        var text = template.text
        if template.placeholders.contains("id") {
            // Where the key is the id, any name a manifest may hold goes in (encoded as one
            // segment); a server-assigned id must be one `idText` accepts.
            guard let id, profile.identity.keyIsID ? TextSafety.nameProblem(id) == nil : Self.idText(.string(id)) != nil else {
                throw ProviderError(.badAnswer, request: template.text, message: "not sent: the server's id is not known")
            }
            text = text.replacingOccurrences(of: "{id}", with: URLParts.encodeSegment(id))
        }
        if template.placeholders.contains("namespace") {
            text = text.replacingOccurrences(of: "{namespace}", with: URLParts.encodeSegment(namespace.rawValue))
        }
        return text
    }

    private func pagingQuery(first: Bool, cursor: String?, page: Int? = nil) -> [(String, String)] {
        switch profile.list.paging {
        case .none, .nextLink: return []
        case .pageNumber(let parameter, let sizeParameter, let size, let start):
            var query = [(parameter, String(page ?? start))]
            if let sizeParameter { query.append((sizeParameter, String(size))) }
            return query
        case .cursor(let parameter, _):
            return cursor.map { [(parameter, $0)] } ?? []
        }
    }

    /// `?name=value&...` with the namespace parameter (`namespace: { query: }`) and `extra`.
    private func queryString(namespace: ProjectName, extra: [(String, String)] = []) -> String {
        var pairs = extra
        if case .query(let name) = profile.namespace { pairs.insert((name, namespace.rawValue), at: 0) }
        guard !pairs.isEmpty else { return "" }
        return "?" + pairs.map { URLParts.encodeSegment($0.0) + "=" + URLParts.encodeSegment($0.1) }.joined(separator: "&")
    }

    /// The path (and query) of a next-page link when it is on this environment's server and
    /// under its URL; nil otherwise.
    private func sameServerPath(_ link: String) -> String? {
        guard link.utf8.count <= 4096, link.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && $0 != "\\" }) else { return nil }
        var path = link
        if link.hasPrefix(connection.baseURL + "/") {
            path = String(link.dropFirst(connection.baseURL.count))
        } else if link.hasPrefix("/") && !link.hasPrefix("//") {
            // A path on the same host: it must stay under the environment's base path.
            if let base = URLParts.origin(connection.baseURL), let slash = connection.baseURL.dropFirst(base.scheme.count + 3).firstIndex(of: "/") {
                let basePath = String(connection.baseURL[slash...])
                guard link.hasPrefix(basePath + "/") else { return nil }
                path = String(link.dropFirst(basePath.count))
            }
        } else {
            return nil
        }
        let segments = URLParts.withoutQuery(path).split(separator: "/", omittingEmptySubsequences: false)
        guard path.hasPrefix("/"), !path.hasPrefix("//"), !segments.contains(where: { $0 == "." || $0 == ".." || $0.lowercased().contains("%2e") }) else { return nil }
        return path
    }

    /// A next-page link with the namespace's query parameter (`namespace: { query: }`) added
    /// when the link does not carry it already.
    private func linkWithNamespace(_ link: String, namespace: ProjectName) -> String {
        guard case .query(let name) = profile.namespace else { return link }
        let encoded = URLParts.encodeSegment(name)
        if let mark = link.firstIndex(of: "?") {
            let pairs = link[link.index(after: mark)...].split(separator: "&")
            if pairs.contains(where: { $0.split(separator: "=", maxSplits: 1).first.map(String.init) == encoded }) { return link }
            return link + "&" + encoded + "=" + URLParts.encodeSegment(namespace.rawValue)
        }
        return link + "?" + encoded + "=" + URLParts.encodeSegment(namespace.rawValue)
    }

    private func namespaceHeaders(_ namespace: ProjectName) -> [(String, String)] {
        if case .header(let name) = profile.namespace { return [(name, namespace.rawValue)] }
        return []
    }

    // MARK: Calls

    /// One call through the shared caller, with the namespace's header or selection cookie. A
    /// selection the server no longer honours (400 or 440 on a call that sent its cookie) is
    /// made again, once.
    private func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, secrets: [Secret] = [],
                      namespace: ProjectName) async throws(ProviderError) -> HTTPResponse {
        guard case .select(_, _, let cookieName) = profile.namespace else {
            return try await caller.call(method, path, body: body, secrets: secrets, headers: namespaceHeaders(namespace)) {
                failure($0, method: method, summary: $1, secrets: secrets)
            }
        }
        var reselected = false
        while true {
            let key = namespace.rawValue
            let cookie = try await cookies.value(key) { () async throws(ProviderError) -> String in try await self.select(namespace) }
            let response = try await caller.send(method, path, body: body, headers: [("Cookie", "\(cookieName)=\(cookie)")])
            if response.isSuccess { return response }
            // 440 says the selection expired; a 400 may say it too, but a write that got a 400
            // may have been refused for its body, so only a read is sent again after it.
            if response.status == 440 || (response.status == 400 && method == .get), !reselected {
                reselected = true
                await cookies.forget(key) { $0 == cookie }
                continue
            }
            return try caller.checked(response, method, path, secrets: secrets) { failure($0, method: method, summary: $1, secrets: secrets) }
        }
    }

    /// Selects `namespace` and returns the cookie the server set for it.
    private func select(_ namespace: ProjectName) async throws(ProviderError) -> String {
        guard case .select(let path, let field, let cookieName) = profile.namespace else { return "" }
        let object = JSONDocument.object([field: .string(namespace.rawValue)])
        let response = try await caller.call(.post, path, body: object.data) { failure($0, method: .post, summary: $1, secrets: []) }
        guard let value = response.cookie(cookieName) else {
            throw ProviderError(.badAnswer, request: "POST \(path)", message: "\(response.status) without a \(cookieName) cookie for \(TextSafety.escaped(namespace.rawValue))")
        }
        // A session cookie is a credential: never shown, never sent elsewhere.
        connection.runSecrets.add([Secret(value)])
        return value
    }

    /// What an error answer says, from the profile's pointer or the usual places.
    private func errorText(_ response: HTTPResponse) -> String? {
        guard let document = Self.parse(response.body) else { return nil }
        let pointers = profile.errorMessage.map { [$0] } ?? ["/error/message", "/error", "/message", "/error_description", "/detail", "/title"].compactMap(JSONPointer.init)
        for pointer in pointers {
            if let text = document[pointer]?.string, !text.isEmpty { return text }
        }
        return nil
    }

    private func failure(_ response: HTTPResponse, method: HTTPMethod, summary: String, secrets: [Secret]) -> ProviderError {
        caller.failure(response, method: method, summary: summary, said: errorText(response), secrets: secrets, environment: environment,
                       credentials: "credentials", refused: "\(profile.name) refused them; put valid ones there")
    }
}

/// A JSON value as an API sends it, with true and false told apart from numbers (which
/// `JSONSerialization` on Linux does not do reliably), read and written at a `JSONPointer`.
public enum JSONDocument: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONDocument])
    case object([String: JSONDocument])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONDocument].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONDocument].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n): try container.encode(n)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }

    /// A field's value as JSON: an instant as ISO 8601 text (null when unset), a set as a list.
    public init(_ value: FieldValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .bool(let b): self = .bool(b)
        case .set(let items): self = .array(items.map(JSONDocument.string))
        case .instant(let ms): self = ms.map { .string(Timestamp.format($0)) } ?? .null
        }
    }

    /// Parses `data`; nil when it is not JSON.
    public static func parse(_ data: Data) -> JSONDocument? {
        guard !data.isEmpty else { return nil }
        return try? JSONDecoder().decode(JSONDocument.self, from: data)
    }

    /// Compact JSON with sorted keys.
    public var data: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("null".utf8)
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var array: [JSONDocument]? { if case .array(let a) = self { a } else { nil } }
    public var object: [String: JSONDocument]? { if case .object(let o) = self { o } else { nil } }

    /// The value at `pointer`, or nil when there is none.
    public subscript(pointer: JSONPointer) -> JSONDocument? {
        var current = self
        for token in pointer.tokens {
            switch current {
            case .object(let o):
                guard let next = o[token] else { return nil }
                current = next
            case .array(let a):
                guard !token.isEmpty, token.allSatisfy({ $0.isASCII && $0.isNumber }), let i = Int(token), i < a.count else { return nil }
                current = a[i]
            default:
                return nil
            }
        }
        return current
    }

    /// Sets `value` at `pointer` in an object, making the objects on the way.
    public mutating func set(_ value: JSONDocument, at pointer: JSONPointer) {
        guard let first = pointer.tokens.first else {
            self = value
            return
        }
        var object = self.object ?? [:]
        var inner = object[first] ?? .null
        var rest = pointer
        rest.tokens.removeFirst()
        inner.set(value, at: rest)
        object[first] = inner
        self = .object(object)
    }
}
