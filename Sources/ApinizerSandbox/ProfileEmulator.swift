import CredOps
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// How the emulator of a provider profile starts.
public struct ProfileEmulatorConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    public var profile: ProviderProfile
    /// The secrets it accepts, in every form the profile allows: a bearer token, a Basic
    /// password (any user), an API key (in the profile's header, or as a Basic password), or an
    /// OAuth2 client secret (any client id) at the profile's token path. None: no call is accepted.
    public var keys: [String] = []
    /// The namespaces that exist, when the profile selects one by a call (others are refused
    /// with 404); nil: any.
    public var namespaces: [String]?
    /// How long an OAuth2 token it issues lives.
    public var tokenTTLSeconds = 3600
    public var faults = SandboxFaults()
    /// Keeps the credentials in this JSON file between runs (mode 0600, written atomically).
    public var dataFile: String?
    public var logger: Logger?
    public var shutdownGrace: Duration = .seconds(5)

    public init(profile: ProviderProfile, keys: [String] = [], dataFile: String? = nil) {
        self.profile = profile
        self.keys = keys
        self.dataFile = dataFile
    }

    /// The credentials a client presents to this emulator by the profile's first auth kind.
    public static func credentials(for profile: ProviderProfile, key: String) -> Connection.Credentials {
        switch profile.auth.kinds.first ?? .bearer {
        case .bearer: .bearer(Secret(key))
        case .basic: .basic(username: "sandbox", password: Secret(key))
        case .apiKey: profile.auth.apiKeyHeader.map { .header(name: $0, value: Secret(key)) } ?? .basic(username: Connection.Credentials.apiKeyUser, password: Secret(key))
        case .oauth2: .clientCredentials(clientID: Secret("sandbox"), clientSecret: Secret(key))
        }
    }
}

/// One stored credential of a profile emulator.
public struct ProfileRecord: Sendable, Codable, Equatable {
    public var id: String
    public var namespace: String
    /// The object as reads answer it (key, fields, public generated values, read-only fields).
    public var object: JSONDocument
    /// A declared readable secret, returned by reads.
    public var secret: String?
    /// Hex SHA-256 of each generated (or write-only declared) secret, by name.
    public var secretDigests: [String: String]
    public var createdAt: String
}

/// A running emulator of any provider profile: the store the profile describes (ids and
/// secrets generated where it says, immutable fields refused on update, validation from the
/// field rules), paged as it says, with the other emulators' faults and test-only calls under
/// `/__sandbox/` (dump, stats, faults, reset, check, backdate) behind the same key.
public final class ProfileServer: Sendable {
    private let engine: ProfileEngine
    private let served: ServedHTTP

    public var port: Int { served.port }
    public var baseURL: String { served.baseURL }

    private init(engine: ProfileEngine, served: ServedHTTP) {
        self.engine = engine
        self.served = served
    }

    public static func start(_ configuration: ProfileEmulatorConfiguration) async throws -> ProfileServer {
        let logger = configuration.logger ?? Logger(label: "credops.sandbox.profile", factory: { _ in SwiftLogNoOpLogHandler() })
        if let problem = configuration.faults.problems.first { throw SandboxError(.startup, "faults: \(problem)") }
        let engine = try ProfileEngine(configuration)
        return ProfileServer(engine: engine, served: try await SandboxHTTP.start(responder: ProfileResponder(engine: engine, profile: configuration.profile),
                                                                                host: configuration.host, port: configuration.port,
                                                                                grace: configuration.shutdownGrace, logger: logger))
    }

    /// Every stored credential, oldest first.
    public func records() async -> [ProfileRecord] { await engine.all() }

    /// True when a live credential holds `secret` under the name `name` (a generated value, or
    /// the declared secret).
    public func holds(id: String? = nil, key: String? = nil, secret: String) async -> Bool { await engine.holds(id: id, key: key, secret: secret) }

    public func setFaults(_ faults: SandboxFaults) async { await engine.setFaults(faults) }

    /// Changes a stored credential behind the API's back (as someone in the product's UI would).
    public func edit(id: String, set value: JSONDocument, at pointer: JSONPointer) async { await engine.edit(id: id, set: value, at: pointer) }

    /// Makes a credential as if in the product's UI (`object` holds its key and fields), in
    /// `namespace`; returns its id.
    @discardableResult
    public func make(_ object: JSONDocument, namespace: String = "") async -> String? { await engine.make(object, namespace: namespace) }

    /// Ends every namespace selection (as a server restart would).
    public func endSessions() async { await engine.endSessions() }

    /// Makes every credential look `days` older.
    public func backdate(days: Int) async { await engine.backdate(days: days) }

    /// Requests received: total, writes, and by route.
    public func stats() async -> (total: Int, writes: Int, byRoute: [String: Int]) {
        let s = await engine.requestStats
        return (s.total, s.writes, s.byRoute)
    }

    public func stop() async {
        await engine.beginStopping()
        await served.stop()
    }
}

/// The emulated API behind a profile.
actor ProfileEngine {
    let profile: ProviderProfile
    private var records: [String: ProfileRecord] = [:]
    private var order: [String] = []
    private let keys: [[UInt8]]
    private var issuedTokens: [[UInt8]: ContinuousClock.Instant] = [:]
    private var sessions: [[UInt8]: String] = [:]
    private let namespaces: [String]?
    private let tokenTTL: Int
    private var traffic: EmulatorTraffic
    private let dataFile: String?
    private var random = SystemRandomNumberGenerator()
    private let clock = ContinuousClock()

    init(_ configuration: ProfileEmulatorConfiguration) throws(SandboxError) {
        profile = configuration.profile
        keys = configuration.keys.filter { !$0.isEmpty }.map(TokenDigest.of)
        namespaces = configuration.namespaces
        tokenTTL = configuration.tokenTTLSeconds
        traffic = EmulatorTraffic(configuration.faults)
        dataFile = configuration.dataFile
        var stored: [ProfileRecord] = []
        if let path = dataFile, FileManager.default.fileExists(atPath: path) {
            do {
                stored = try JSONDecoder().decode([ProfileRecord].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw SandboxError(.dataFile, "\(path): not a \(configuration.profile.name) emulator data file (\(error))")
            }
            for record in stored {
                records[record.id] = record
                order.append(record.id)
            }
        }
        if let path = dataFile { try Self.write(stored, to: path) }
    }

    func all() -> [ProfileRecord] { order.compactMap { records[$0] } }
    var requestStats: RequestStats { traffic.stats }
    func setFaults(_ faults: SandboxFaults) { traffic.setFaults(faults) }
    func beginStopping() { traffic.beginStopping() }
    var keepsHanging: Bool { traffic.keepsHanging }
    func endSessions() { sessions = [:] }

    func admit(method: String, template: String, isWrite: Bool) -> FaultInjector.Decision {
        traffic.admit(method: method, template: template, isWrite: isWrite)
    }

    // MARK: Authentication

    private func isKey(_ text: String) -> Bool {
        let presented = TokenDigest.of(text)
        var accepted = false
        for key in keys where TokenDigest.equal(key, presented) { accepted = true }
        return accepted
    }

    /// True when the request carries a key (or a token issued for one) in a form the profile allows.
    func isAuthorized(authorization: String?, apiKey: String?) -> Bool {
        let kinds = profile.auth.kinds
        if kinds.contains(.apiKey), profile.auth.apiKeyHeader != nil, let apiKey, apiKey.count < 8192, isKey(apiKey) { return true }
        guard let authorization, authorization.count < 8192 else { return false }
        let lower = authorization.lowercased()
        if lower.hasPrefix("bearer ") {
            let token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            if kinds.contains(.bearer), isKey(token) { return true }
            if kinds.contains(.oauth2), let expires = issuedTokens[TokenDigest.of(token)], expires > clock.now { return true }
            return false
        }
        if lower.hasPrefix("basic "), kinds.contains(.basic) || (kinds.contains(.apiKey) && profile.auth.apiKeyHeader == nil),
           let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
           let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") {
            return isKey(String(text[text.index(after: colon)...]))
        }
        return false
    }

    /// The OAuth2 token call: a client secret among the keys (any client id), as JSON or a form.
    func token(path: String, body: Data?) -> SandboxAnswer {
        traffic.stats.record(method: "POST", template: "POST \(path)", isWrite: false)
        var secret: String?
        if let body, let object = JSONDocument.parse(body)?.object {
            secret = object["client_secret"]?.string
        } else if let body, let text = String(data: body, encoding: .utf8) {
            for pair in text.split(separator: "&") where pair.hasPrefix("client_secret=") {
                secret = String(pair.dropFirst("client_secret=".count)).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
            }
        }
        guard let secret, isKey(secret) else {
            return SandboxAnswer(status: 401, body: ["error": "invalid_client", "error_description": "unknown client or wrong secret"])
        }
        let token = hex(24)
        issuedTokens[TokenDigest.of(token)] = clock.now + .seconds(tokenTTL)
        return .ok(["access_token": .string(token), "token_type": "Bearer", "expires_in": .int(tokenTTL)])
    }

    // MARK: Namespaces

    func select(body: Data?) -> SandboxAnswer {
        guard case .select(_, let field, let cookie) = profile.namespace else { return error(404, "not found") }
        guard let body, let name = JSONDocument.parse(body)?.object?[field]?.string, !name.isEmpty else {
            return error(400, "\(field) is required")
        }
        if let namespaces, !namespaces.contains(name) { return error(404, "no such \(field): \(name)") }
        let token = hex(24)
        sessions[TokenDigest.of(token)] = name
        return SandboxAnswer(status: 200, body: .object(JSONObject([(key: field, value: .string(name))])), headers: [("Set-Cookie", "\(cookie)=\(token); Path=/; HttpOnly; Secure")])
    }

    /// The namespace a selection cookie names, if any.
    func selected(cookie: String?) -> String? {
        guard case .select(_, _, let name) = profile.namespace, let cookie, cookie.count < 8192 else { return nil }
        for part in cookie.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            guard pair.hasPrefix(name + "=") else { continue }
            if let namespace = sessions[TokenDigest.of(String(pair.dropFirst(name.count + 1)))] { return namespace }
        }
        return nil
    }

    // MARK: API

    enum Route: Sendable {
        case list(query: [String: String])
        case create
        case read(String)
        case replace(String)
        case patch(String)
        case remove(String)
        /// A switch field's own call: the field's name, the credential, on or off.
        case turn(field: String, id: String, on: Bool)
    }

    func handle(_ route: Route, namespace: String, body: Data?) -> SandboxAnswer {
        switch route {
        case .list(let query): return list(namespace: namespace, query: query)
        case .create: return create(namespace: namespace, body: body)
        case .read(let id):
            guard let record = records[id], record.namespace == namespace else { return error(404, "credential not found") }
            return SandboxAnswer(status: 200, data: view(record).data)
        case .replace(let id): return update(id, namespace: namespace, body: body, whole: true)
        case .patch(let id): return update(id, namespace: namespace, body: body, whole: false)
        case .remove(let id):
            guard let record = records[id], record.namespace == namespace else { return error(404, "credential not found") }
            records[id] = nil
            order.removeAll { $0 == id }
            save()
            return SandboxAnswer(status: 204, data: Data(), committed: true)
        case .turn(let name, let id, let on):
            guard var record = records[id], record.namespace == namespace else { return error(404, "credential not found") }
            guard let field = profile.fields.first(where: { $0.name == name && $0.calls != nil }) else { return error(404, "not found") }
            record.object.set(.bool(on), at: field.pointer)
            stampUpdated(&record)
            records[id] = record
            save()
            return SandboxAnswer(status: 204, data: Data(), committed: true)
        }
    }

    /// A record as reads answer it: the object, with a declared readable secret.
    private func view(_ record: ProfileRecord) -> JSONDocument {
        var object = record.object
        if case .declared(_, let pointer, true) = profile.secret, let secret = record.secret { object.set(.string(secret), at: pointer) }
        return object
    }

    private func list(namespace: String, query: [String: String]) -> SandboxAnswer {
        let mine = all().filter { $0.namespace == namespace }
        var offset = 0
        var count = mine.count
        var next: JSONDocument?
        var nextPointer: JSONPointer?
        switch profile.list.paging {
        case .none:
            break
        case .pageNumber(let parameter, let sizeParameter, let size, let first):
            let page = Int(query[parameter] ?? "") ?? first
            let pageSize = sizeParameter.flatMap { query[$0] }.flatMap(Int.init) ?? size
            guard (first...1_000_000_000).contains(page), (1...10_000).contains(pageSize) else { return error(400, "bad page or size") }
            offset = (page - first) * pageSize
            count = pageSize
        case .cursor(let parameter, let pointer):
            guard let cursor = cursorOffset(query[parameter], prefix: "c", count: mine.count) else { return error(400, "bad cursor") }
            offset = cursor
            count = 50
            if offset + count < mine.count { next = .string("c\(offset + count)") }
            nextPointer = pointer
        case .nextLink(let pointer):
            guard let after = cursorOffset(query["after"], prefix: "", count: mine.count) else { return error(400, "bad after") }
            offset = after
            count = 50
            if offset + count < mine.count {
                // A path on this server, as a real API links its next page.
                let collection = profile.paths.collection.text.replacingOccurrences(of: "{namespace}", with: URLParts.encodeSegment(namespace))
                var link = collection + "?after=\(offset + count)"
                if case .query(let name) = profile.namespace { link += "&\(URLParts.encodeSegment(name))=\(URLParts.encodeSegment(namespace))" }
                next = .string(link)
            }
            nextPointer = pointer
        }
        let page = offset < mine.count ? Array(mine[offset..<min(mine.count, offset + count)]) : []
        var document = JSONDocument.null
        document.set(.array(page.map(view)), at: profile.list.items)
        if let nextPointer, let next { document.set(next, at: nextPointer) }
        return SandboxAnswer(status: 200, data: document.data)
    }

    /// The offset a cursor (`c150`) or `after` value names, within `0...count`; nil when it is
    /// not one this server made. Absent: the start.
    private func cursorOffset(_ text: String?, prefix: String, count: Int) -> Int? {
        guard let text else { return 0 }
        guard text.hasPrefix(prefix), let n = Int(text.dropFirst(prefix.count)), n >= 0 else { return nil }
        return min(n, count)
    }

    private func create(namespace: String, body: Data?) -> SandboxAnswer {
        guard let body, let object = JSONDocument.parse(body), case .object = object else { return error(400, "the body must be a JSON object") }
        if let problem = check(object, whole: true) { return error(400, problem) }
        let key = object[profile.key.pointer]?.string ?? ""
        let id: String
        if profile.identity.keyIsID {
            if let existing = records[key], existing.namespace == namespace { return error(409, "a credential named \(key) exists") }
            guard records[key] == nil else { return error(409, "a credential named \(key) exists elsewhere") }
            id = key
        } else {
            id = newID()
        }
        var record = ProfileRecord(id: id, namespace: namespace, object: .object([:]), secret: nil, secretDigests: [:], createdAt: Self.now())
        record.object.set(.string(key), at: profile.key.pointer)
        for field in profile.fields where !field.readOnly {
            let value = object[field.pointer] ?? JSONDocument(field.defaultValue ?? ProviderProfile.emptyValue(field.kind))
            record.object.set(value, at: field.pointer)
        }
        if !profile.identity.keyIsID { record.object.set(.string(id), at: profile.identity.id) }
        var shownOnce: [(JSONPointer, String)] = []
        switch profile.secret {
        case .none: break
        case .declared(_, let pointer, let readable):
            guard let secret = object[pointer]?.string, !secret.isEmpty else { return error(400, "\(pointer) is required") }
            if readable { record.secret = secret } else { record.secretDigests["secret"] = Self.hexDigest(secret) }
        case .generated(let values, let secrets):
            for (name, pointer) in values {
                if secrets.contains(name) {
                    let secret = "sk_" + hex(24)
                    record.secretDigests[name] = Self.hexDigest(secret)
                    shownOnce.append((pointer, secret))
                } else if pointer != profile.identity.id {
                    record.object.set(.string("ci_" + hex(10)), at: pointer)
                }
            }
        }
        stampCreated(&record)
        records[id] = record
        order.append(id)
        save()
        // The one answer that carries a generated secret.
        var made = view(record)
        for (pointer, secret) in shownOnce { made.set(.string(secret), at: pointer) }
        return SandboxAnswer(status: 201, data: made.data, committed: true)
    }

    private func update(_ id: String, namespace: String, body: Data?, whole: Bool) -> SandboxAnswer {
        guard var record = records[id], record.namespace == namespace else { return error(404, "credential not found") }
        guard let body, let object = JSONDocument.parse(body), case .object = object else { return error(400, "the body must be a JSON object") }
        if let problem = check(object, whole: whole) { return error(400, problem) }
        if whole, let key = object[profile.key.pointer]?.string, key != record.object[profile.key.pointer]?.string {
            return error(422, "\(profile.key.name) cannot change")
        }
        for field in profile.fields where !field.readOnly && field.calls == nil {
            guard let value = object[field.pointer] ?? (whole ? JSONDocument(field.defaultValue ?? ProviderProfile.emptyValue(field.kind)) : nil) else { continue }
            if field.immutable, value != record.object[field.pointer] {
                return error(422, "\(field.name) cannot change after the credential is made")
            }
            record.object.set(value, at: field.pointer)
        }
        if case .declared(_, let pointer, let readable) = profile.secret, let secret = object[pointer]?.string {
            guard !secret.isEmpty else { return error(400, "\(pointer) cannot be empty") }
            if readable { record.secret = secret } else { record.secretDigests["secret"] = Self.hexDigest(secret) }
        }
        stampUpdated(&record)
        records[id] = record
        save()
        return SandboxAnswer(status: 200, data: view(record).data, committed: true)
    }

    /// The field rules: types, required, lengths, allowed values. Nil when the body passes.
    private func check(_ object: JSONDocument, whole: Bool) -> String? {
        if whole {
            guard let key = object[profile.key.pointer]?.string, !key.isEmpty else { return "\(profile.key.name) is required" }
            if let min = profile.key.minLength, key.utf16.count < min { return "\(profile.key.name) must be at least \(min) characters" }
            if let max = profile.key.maxLength, key.utf16.count > max { return "\(profile.key.name) must be at most \(max) characters" }
        }
        for field in profile.fields where !field.readOnly {
            guard let value = object[field.pointer], value != .null else {
                if whole && field.required && field.calls == nil { return "\(field.name) is required" }
                continue
            }
            var texts: [String] = []
            switch (field.kind, value) {
            case (.string, .string(let s)): texts = [s]
            case (.bool, .bool): break
            case (.stringSet, .array(let items)):
                for item in items {
                    guard case .string(let s) = item else { return "\(field.name) must be a list of strings" }
                    texts.append(s)
                }
            case (.instant, .string(let s)) where Timestamp.parse(s) != nil: break
            default: return "\(field.name) has the wrong type"
            }
            if field.required && field.kind == .string && texts.first?.isEmpty == true { return "\(field.name) cannot be empty" }
            for text in texts {
                if let allowed = field.oneOf, !allowed.contains(text) { return "\(field.name) must be one of \(allowed.joined(separator: ", "))" }
                if let min = field.minLength, text.utf16.count < min { return "\(field.name) must be at least \(min) characters" }
                if let max = field.maxLength, text.utf16.count > max { return "\(field.name) must be at most \(max) characters" }
            }
        }
        return nil
    }

    private func stampCreated(_ record: inout ProfileRecord) {
        for field in profile.fields where field.readOnly && ["created_at", "createdAt", "created"].contains(field.name) {
            record.object.set(.string(record.createdAt), at: field.pointer)
        }
        stampUpdated(&record)
    }

    private func stampUpdated(_ record: inout ProfileRecord) {
        for field in profile.fields where field.readOnly && ["updated_at", "updatedAt", "updated"].contains(field.name) {
            record.object.set(.string(Self.now()), at: field.pointer)
        }
    }

    func edit(id: String, set value: JSONDocument, at pointer: JSONPointer) {
        guard var record = records[id] else { return }
        record.object.set(value, at: pointer)
        records[id] = record
        save()
    }

    func make(_ object: JSONDocument, namespace: String) -> String? {
        let answer = create(namespace: namespace, body: object.data)
        guard answer.status == 201, let made = JSONDocument.parse(answer.body) else { return nil }
        return made[profile.identity.keyIsID ? profile.key.pointer : profile.identity.id]?.string
    }

    func holds(id: String?, key: String?, secret: String) -> Bool {
        let digest = Self.hexDigest(secret)
        return all().contains { record in
            (id == nil || record.id == id) && (key == nil || record.object[profile.key.pointer]?.string == key)
                && (record.secret == secret || record.secretDigests.values.contains(digest))
        }
    }

    func backdate(days: Int) {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for id in order {
            guard var record = records[id], let date = f.date(from: record.createdAt) else { continue }
            record.createdAt = f.string(from: date.addingTimeInterval(-Double(days) * 86_400))
            for field in profile.fields where field.readOnly && ["created_at", "createdAt", "created"].contains(field.name) {
                record.object.set(.string(record.createdAt), at: field.pointer)
            }
            records[id] = record
        }
        save()
    }

    // MARK: Admin

    func admin(method: String, path: String, body: Data?) -> SandboxAnswer {
        if let answer = SandboxAdmin.common(method: method, path: path, body: body, stats: traffic.stats, faults: traffic.faults,
                                            setFaults: { setFaults($0) }) {
            return answer
        }
        switch (method, path) {
        case ("GET", "/__sandbox/dump"):
            let list = all().map { record -> JSONDocument in
                .object(["id": .string(record.id), "namespace": .string(record.namespace), "object": record.object, "created_at": .string(record.createdAt)])
            }
            return SandboxAnswer(status: 200, data: JSONDocument.object(["credentials": .array(list)]).data)
        case ("POST", "/__sandbox/check"):
            guard let body, let object = JSONDocument.parse(body)?.object, let secret = object["secret"]?.string else {
                return error(400, "the body must be {\"secret\": ..., \"id\": optional}")
            }
            return .ok(["valid": .bool(holds(id: object["id"]?.string, key: object["key"]?.string, secret: secret))])
        case ("POST", "/__sandbox/backdate"):
            guard let body, case .number(let days)? = JSONDocument.parse(body)?.object?["days"], days >= 0, days < 100_000 else {
                return error(400, "the body must be {\"days\": N}")
            }
            backdate(days: Int(days))
            return .ok(["success": true])
        case ("POST", "/__sandbox/reset"):
            records = [:]
            order = []
            sessions = [:]
            traffic.stats = RequestStats()
            setFaults(SandboxFaults())
            save()
            return .ok(["success": true])
        default:
            return error(404, "no admin call \(method) \(path)")
        }
    }

    // MARK: Helpers

    /// An error answer with the message where the profile reads it.
    func error(_ status: Int, _ message: String) -> SandboxAnswer {
        var document = JSONDocument.null
        document.set(.string(message), at: profile.errorMessage ?? JSONPointer("/error")!)
        if case .string = document { document = .object(["error": document]) }
        return SandboxAnswer(status: status, data: document.data)
    }

    private func hex(_ n: Int) -> String { (0..<n).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined() }

    private func newID() -> String {
        while true {
            let id = hex(12)
            if records[id] == nil { return id }
        }
    }


    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    static func hexDigest(_ secret: String) -> String { TokenDigest.of(secret).map { String(format: "%02x", $0) }.joined() }

    private func save() {
        guard let path = dataFile else { return }
        try? Self.write(all(), to: path)
    }

    private static func write(_ records: [ProfileRecord], to path: String) throws(SandboxError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(records)
        } catch {
            throw SandboxError(.dataFile, "\(path): \(error)")
        }
        try DataFile(path: path).write(data)
    }
}

/// Routes a request by the profile's paths, checks authentication before any body is read,
/// and finds the namespace where the profile puts it.
struct ProfileResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    static let bodyLimit = 64 * 1024

    let engine: ProfileEngine
    let profile: ProviderProfile

    func respond(to request: Request, context: Context) async throws -> Response {
        let arrival = ContinuousClock.now
        let raw = request.head.path ?? "/"
        let path = SandboxRouter.pathOnly(raw)
        let query = Self.query(raw)
        let method = request.method.rawValue
        var request = request
        // The token call is the one call without credentials.
        if method == "POST", let tokenPath = profile.auth.tokenPath ?? (profile.auth.kinds.contains(.oauth2) ? "/oauth/token" : nil), path == tokenPath {
            let body = try? await request.collectBody(upTo: Self.bodyLimit)
            return SandboxResponder.response(await engine.token(path: tokenPath, body: body.map { Data($0.readableBytesView) }))
        }
        let apiKey = profile.auth.apiKeyHeader.flatMap { HTTPField.Name($0) }.flatMap { request.headers[$0] }
        guard await engine.isAuthorized(authorization: request.headers[.authorization], apiKey: apiKey) else {
            return SandboxResponder.response(await engine.error(401, "Unauthorized"))
        }
        if path.hasPrefix("/__sandbox/") {
            let body = try? await request.collectBody(upTo: Self.bodyLimit)
            return SandboxResponder.response(await engine.admin(method: method, path: path, body: body.map { Data($0.readableBytesView) }))
        }
        guard let segments = SandboxRouter.decodedSegments(raw)?.dropFirst().map({ $0 }) else { return SandboxResponder.response(await engine.error(400, "bad path")) }
        let engine = engine
        if case .select(let selectPath, _, _) = profile.namespace, method == "POST", path == selectPath {
            return await SandboxCall.answer(&request, arrival: arrival, isWrite: false, bodyLimit: Self.bodyLimit, retryAfterHeader: profile.retryAfterHeader,
                                            admit: { await engine.admit(method: method, template: "POST \(selectPath)", isWrite: false) },
                                            keepsHanging: { await engine.keepsHanging },
                                            handle: { await engine.select(body: $0) })
        }
        guard let (route, template, captured) = Self.route(method: method, segments: segments, query: query, profile: profile) else {
            return SandboxResponder.response(await engine.error(404, "no route \(method) \(path)"))
        }
        var namespace = ""
        switch profile.namespace {
        case .none: break
        case .pathSegment: namespace = captured ?? ""
        case .header(let name): namespace = HTTPField.Name(name).flatMap { request.headers[$0] } ?? ""
        case .query(let name): namespace = query[name] ?? ""
        case .select:
            guard let selected = await engine.selected(cookie: request.headers[.cookie]) else {
                return SandboxResponder.response(await engine.error(400, "select a namespace first"))
            }
            namespace = selected
        }
        if profile.namespace != .none && namespace.isEmpty { return SandboxResponder.response(await engine.error(400, "no namespace given")) }
        let isWrite = method != "GET"
        let chosen = namespace
        return await SandboxCall.answer(&request, arrival: arrival, isWrite: isWrite, bodyLimit: Self.bodyLimit, retryAfterHeader: profile.retryAfterHeader,
                                        admit: { await engine.admit(method: method, template: template, isWrite: isWrite) },
                                        keepsHanging: { await engine.keepsHanging },
                                        handle: { await engine.handle(route, namespace: chosen, body: $0) })
    }

    /// The route of `segments` by the profile's templates, with its template (for counts) and
    /// the namespace segment when paths carry one.
    static func route(method: String, segments: [String], query: [String: String], profile: ProviderProfile)
        -> (ProfileEngine.Route, String, String?)? {
        func match(_ template: PathTemplate) -> (id: String?, namespace: String?)? {
            let parts = template.text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
            guard parts.count == segments.count else { return nil }
            var id: String?, namespace: String?
            for (part, segment) in zip(parts, segments) {
                switch part {
                case "{id}":
                    guard !segment.isEmpty else { return nil }
                    id = segment
                case "{namespace}":
                    guard !segment.isEmpty else { return nil }
                    namespace = segment
                default:
                    guard part == segment else { return nil }
                }
            }
            return (id, namespace)
        }
        if let m = match(profile.paths.collection) {
            switch method {
            case "GET": return (.list(query: query), "GET \(profile.paths.collection)", m.namespace)
            case "POST": return (.create, "POST \(profile.paths.collection)", m.namespace)
            default: return nil
            }
        }
        if let m = match(profile.paths.item), let id = m.id {
            let t = profile.paths.item.text
            switch method {
            case "GET": return (.read(id), "GET \(t)", m.namespace)
            case "PUT": return (.replace(id), "PUT \(t)", m.namespace)
            case "PATCH": return (.patch(id), "PATCH \(t)", m.namespace)
            case "DELETE": return (.remove(id), "DELETE \(t)", m.namespace)
            default: return nil
            }
        }
        for field in profile.fields {
            guard let calls = field.calls, method == calls.method.rawValue else { continue }
            if let m = match(calls.on), let id = m.id { return (.turn(field: field.name, id: id, on: true), "\(method) \(calls.on)", m.namespace) }
            if let m = match(calls.off), let id = m.id { return (.turn(field: field.name, id: id, on: false), "\(method) \(calls.off)", m.namespace) }
        }
        return nil
    }

    /// The query parameters of a raw request target, percent-decoded.
    static func query(_ raw: String) -> [String: String] {
        guard let q = raw.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in raw[raw.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = SandboxRouter.percentDecode(parts[0]) else { continue }
            result[name] = parts.count > 1 ? SandboxRouter.percentDecode(parts[1]) : ""
        }
        return result
    }
}
