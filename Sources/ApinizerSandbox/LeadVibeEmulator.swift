import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// An Organizational Unit of a LeadVibe account.
public struct LeadVibeUnit: Sendable, Codable, Equatable {
    public var unitID: String
    public var name: String
    public var slug: String
    public var isDefault: Bool

    enum CodingKeys: String, CodingKey {
        case unitID = "unit_id", name, slug, isDefault = "is_default"
    }

    public init(unitID: String, name: String? = nil, isDefault: Bool = false) {
        self.unitID = unitID
        self.name = name ?? unitID
        self.slug = unitID.lowercased().replacingOccurrences(of: "_", with: "-")
        self.isDefault = isDefault
    }

    var json: JSONValue {
        .object(JSONObject([(key: "unit_id", value: .string(unitID)), (key: "name", value: .string(name)),
                            (key: "slug", value: .string(slug)), (key: "is_default", value: .bool(isDefault))]))
    }
}

/// One `/secrets` credential as LeadVibe keeps it. The client secret itself is never kept:
/// only its SHA-256, enough to check a pair.
public struct LeadVibeSecret: Sendable, Codable, Equatable {
    public var secretID: String
    public var unitID: String
    public var clientID: String
    public var name: String
    public var trustUpstreamConsent: Bool
    public var createdAt: String
    /// Hex SHA-256 of the client secret.
    public var secretDigest: String

    enum CodingKeys: String, CodingKey {
        case secretID = "secret_id", unitID = "unit_id", clientID = "client_id", name
        case trustUpstreamConsent = "trust_upstream_consent", createdAt = "created_at", secretDigest = "secret_digest"
    }

    /// As `GET /secrets` answers it: never the secret.
    var json: JSONValue {
        .object(JSONObject([
            (key: "secret_id", value: .string(secretID)), (key: "unit_id", value: .string(unitID)),
            (key: "client_id", value: .string(clientID)), (key: "name", value: .string(name)),
            (key: "trust_upstream_consent", value: .bool(trustUpstreamConsent)), (key: "created_at", value: .string(createdAt)),
        ]))
    }
}

/// How a LeadVibe emulator starts.
public struct LeadVibeConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    /// The bearer tokens it accepts. None: no call is accepted.
    public var tokens: [String] = []
    /// The account's units; the first flagged `isDefault` is the default (none flagged: the first).
    public var units: [LeadVibeUnit] = [LeadVibeUnit(unitID: "unit_default", name: "Default", isDefault: true)]
    /// How long an `activeOu` cookie stays valid (nil: for the server's life).
    public var unitSessionTTL: Duration?
    public var faults = SandboxFaults()
    /// Keeps units and credentials in this JSON file between runs (mode 0600, written atomically).
    public var dataFile: String?
    public var logger: Logger?
    public var shutdownGrace: Duration = .seconds(5)

    public init(tokens: [String] = [], units: [LeadVibeUnit]? = nil, faults: SandboxFaults = SandboxFaults(), dataFile: String? = nil) {
        self.tokens = tokens
        if let units, !units.isEmpty { self.units = units }
        self.faults = faults
        self.dataFile = dataFile
    }

    /// Units from their ids; the first is the default.
    public static func units(_ ids: [String]) -> [LeadVibeUnit] {
        ids.enumerated().map { LeadVibeUnit(unitID: $1, isDefault: $0 == 0) }
    }
}

/// A running LeadVibe emulator: `/org-units` with the `activeOu` cookie (one per selection, so
/// two clients on two units never share one), and `/secrets` as LeadVibe documents it (ids
/// assigned at create, names not unique, the client secret shown once in the create answer).
/// Test-only calls under `/__sandbox/` (dump, stats, faults, reset, check, backdate) take the
/// same bearer token; `check` says whether a `client_id`/`client_secret` pair is valid.
public final class LeadVibeServer: Sendable {
    private let engine: LeadVibeEngine
    private let served: ServedHTTP

    public var port: Int { served.port }
    public var baseURL: String { served.baseURL }

    private init(engine: LeadVibeEngine, served: ServedHTTP) {
        self.engine = engine
        self.served = served
    }

    /// Starts an emulator and returns once it accepts connections.
    public static func start(_ configuration: LeadVibeConfiguration) async throws -> LeadVibeServer {
        let logger = configuration.logger ?? Logger(label: "credops.sandbox.leadvibe", factory: { _ in SwiftLogNoOpLogHandler() })
        if let problem = configuration.faults.problems.first { throw SandboxError(.startup, "faults: \(problem)") }
        let engine = try LeadVibeEngine(configuration)
        return LeadVibeServer(engine: engine, served: try await SandboxHTTP.start(responder: LeadVibeResponder(engine: engine), host: configuration.host,
                                                                            port: configuration.port, grace: configuration.shutdownGrace,
                                                                            logger: logger))
    }

    /// Every stored credential (never a secret), oldest first.
    public func secrets() async -> [LeadVibeSecret] { await engine.all() }

    /// True when the pair is a live credential's.
    public func check(clientID: String, clientSecret: String) async -> Bool { await engine.check(clientID: clientID, clientSecret: clientSecret) }

    public func setFaults(_ faults: SandboxFaults) async { await engine.setFaults(faults) }

    /// Ends every `activeOu` session, as a server restart or an expiry would.
    public func endUnitSessions() async { await engine.endSessions() }

    /// Makes every credential look `days` older (rotation tests).
    public func backdate(days: Int) async { await engine.backdate(days: days) }

    /// Puts a credential on the server as if made in its UI; returns its id, client id and secret.
    @discardableResult
    public func put(name: String, unit: String? = nil) async -> (secretID: String, clientID: String, clientSecret: String) {
        await engine.make(name: name, unit: unit)
    }

    /// Requests received: total, writes, and by route (`PUT /secrets/{id}`).
    public func stats() async -> (total: Int, writes: Int, byRoute: [String: Int]) {
        let s = await engine.requestStats
        return (s.total, s.writes, s.byRoute)
    }

    public func stop() async {
        await engine.beginStopping()
        await served.stop()
    }
}

/// The emulated account: units, cookie sessions, credentials, faults, counts.
actor LeadVibeEngine {
    private var units: [LeadVibeUnit]
    private var secrets: [String: LeadVibeSecret] = [:]
    private var order: [String] = []
    /// `activeOu` cookie digest → (unit, expiry).
    private var sessions: [[UInt8]: (unit: String, expires: ContinuousClock.Instant?)] = [:]
    private let sessionTTL: Duration?
    private let tokens: [[UInt8]]
    private var traffic: EmulatorTraffic
    private let dataFile: String?
    private let clock = ContinuousClock()
    private var random = SystemRandomNumberGenerator()

    struct Stored: Codable {
        var units: [LeadVibeUnit]
        var secrets: [LeadVibeSecret]
    }

    init(_ configuration: LeadVibeConfiguration) throws(SandboxError) {
        tokens = configuration.tokens.filter { !$0.isEmpty }.map(TokenDigest.of)
        traffic = EmulatorTraffic(configuration.faults)
        dataFile = configuration.dataFile
        sessionTTL = configuration.unitSessionTTL
        var stored = Stored(units: configuration.units, secrets: [])
        if let path = dataFile, FileManager.default.fileExists(atPath: path) {
            do {
                stored = try JSONDecoder().decode(Stored.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw SandboxError(.dataFile, "\(path): not a LeadVibe emulator data file (\(error))")
            }
            // Units named in the configuration are added; those stored stay.
            for unit in configuration.units where !stored.units.contains(where: { $0.unitID == unit.unitID }) { stored.units.append(unit) }
        }
        if !stored.units.contains(where: \.isDefault), !stored.units.isEmpty { stored.units[0].isDefault = true }
        units = stored.units
        for secret in stored.secrets {
            secrets[secret.secretID] = secret
            order.append(secret.secretID)
        }
        if let path = dataFile { try Self.write(stored, to: path) }
    }

    func all() -> [LeadVibeSecret] { order.compactMap { secrets[$0] } }
    var requestStats: RequestStats { traffic.stats }
    func setFaults(_ faults: SandboxFaults) { traffic.setFaults(faults) }
    func beginStopping() { traffic.beginStopping() }
    var keepsHanging: Bool { traffic.keepsHanging }

    func admit(method: String, template: String, isWrite: Bool) -> FaultInjector.Decision {
        traffic.admit(method: method, template: template, isWrite: isWrite)
    }

    func isAuthorized(_ authorization: String?) -> Bool {
        guard let authorization, authorization.count < 8192, authorization.lowercased().hasPrefix("bearer ") else { return false }
        let presented = TokenDigest.of(String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        var accepted = false
        for token in tokens where TokenDigest.equal(token, presented) { accepted = true }
        return accepted
    }

    /// The unit the request's `activeOu` cookie selects, if any (and not expired).
    func activeUnit(cookie: String?) -> String? {
        guard let cookie, cookie.count < 8192 else { return nil }
        for part in cookie.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            guard pair.hasPrefix("activeOu=") else { continue }
            let digest = TokenDigest.of(String(pair.dropFirst("activeOu=".count)))
            guard let session = sessions[digest] else { continue }
            if let expires = session.expires, expires <= clock.now {
                sessions[digest] = nil
                continue
            }
            return session.unit
        }
        return nil
    }

    private func hex(_ n: Int) -> String { (0..<n).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined() }

    private func newSecretID() -> String {
        while true {
            let id = "sec_" + hex(8)
            if secrets[id] == nil { return id }
        }
    }

    private static func now(offsetDays: Int = 0) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date().addingTimeInterval(Double(offsetDays) * 86_400))
    }

    private var defaultUnit: String { units.first(where: \.isDefault)?.unitID ?? units.first?.unitID ?? "" }

    /// Makes a credential in `unit`; the client secret is returned this once.
    func make(name: String, unit: String?, trust: Bool = false) -> (secretID: String, clientID: String, clientSecret: String) {
        let id = newSecretID()
        let clientID = "cli_" + hex(8)
        let clientSecret = "lvs_" + hex(24)
        secrets[id] = LeadVibeSecret(secretID: id, unitID: unit ?? defaultUnit, clientID: clientID, name: name, trustUpstreamConsent: trust,
                                     createdAt: Self.now(), secretDigest: Self.hexDigest(clientSecret))
        order.append(id)
        try? save()
        return (id, clientID, clientSecret)
    }

    func check(clientID: String, clientSecret: String) -> Bool {
        guard let found = secrets.values.first(where: { $0.clientID == clientID }) else { return false }
        return TokenDigest.equal(Array(found.secretDigest.utf8), Array(Self.hexDigest(clientSecret).utf8))
    }

    /// Hex SHA-256: what is kept of a client secret.
    static func hexDigest(_ secret: String) -> String { TokenDigest.of(secret).map { String(format: "%02x", $0) }.joined() }

    func endSessions() { sessions = [:] }

    func backdate(days: Int) {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for id in order {
            guard var s = secrets[id], let date = f.date(from: s.createdAt) else { continue }
            s.createdAt = f.string(from: date.addingTimeInterval(-Double(days) * 86_400))
            secrets[id] = s
        }
        try? save()
    }

    // MARK: API

    enum Route {
        case units, select, list, create, update(String), remove(String)
    }

    static let noUnit = SandboxAnswer(status: 400, body: ["error": "Active OU must be set"])
    static let notFound = SandboxAnswer(status: 404, body: ["error": "not found"])

    func handle(_ route: Route, body: Data?, cookie: String?) -> SandboxAnswer {
        switch route {
        case .units:
            return .ok(.array(units.map(\.json)))
        case .select:
            guard let body, case .string(let unit)? = JSONValue.parse(body)?.objectValue?["unit_id"] else {
                return SandboxAnswer(status: 400, body: ["error": "unit_id is required"])
            }
            guard units.contains(where: { $0.unitID == unit }) else { return SandboxAnswer(status: 404, body: ["error": "Organizational unit not found"]) }
            let token = hex(24)
            sessions[TokenDigest.of(token)] = (unit, sessionTTL.map { clock.now + $0 })
            return SandboxAnswer(status: 200, body: ["unit_id": .string(unit)],
                                 headers: [("Set-Cookie", "activeOu=\(token); Path=/; HttpOnly; Secure; SameSite=Lax")])
        case .list, .create, .update, .remove:
            guard let unit = activeUnit(cookie: cookie) else { return Self.noUnit }
            return handleSecrets(route, unit: unit, body: body)
        }
    }

    private func handleSecrets(_ route: Route, unit: String, body: Data?) -> SandboxAnswer {
        switch route {
        case .list:
            return .ok(.array(all().filter { $0.unitID == unit }.map(\.json)))
        case .create:
            guard let body, let object = JSONValue.parse(body)?.objectValue else {
                return SandboxAnswer(status: 400, body: ["error": "the body must be a JSON object"])
            }
            guard case .string(let name)? = object["name"], (1...50).contains(name.utf16.count) else {
                return SandboxAnswer(status: 400, body: ["error": "Name must be 1-50 characters"])
            }
            var trust = false
            if let value = object["trust_upstream_consent"] {
                guard case .bool(let b) = value else { return SandboxAnswer(status: 400, body: ["error": "trust_upstream_consent must be a boolean"]) }
                trust = b
            }
            let made = make(name: name, unit: unit, trust: trust)
            guard case .object(let listed) = secrets[made.secretID]!.json else { return Self.notFound }
            // The one answer that carries the client secret.
            let answer = JSONObject(listed.keys.compactMap { key in listed[key].map { (key: key, value: $0) } }
                                    + [(key: "client_secret", value: .string(made.clientSecret))])
            return SandboxAnswer(status: 200, body: .object(answer), committed: true)
        case .update(let id):
            guard var found = secrets[id], found.unitID == unit else { return Self.notFound }
            guard let body, let object = JSONValue.parse(body)?.objectValue, case .bool(let trust)? = object["trust_upstream_consent"] else {
                return SandboxAnswer(status: 400, body: ["error": "trust_upstream_consent must be a boolean"])
            }
            found.trustUpstreamConsent = trust
            secrets[id] = found
            try? save()
            return SandboxAnswer(status: 204, data: Data(), committed: true)
        case .remove(let id):
            guard let found = secrets[id], found.unitID == unit else { return Self.notFound }
            secrets[id] = nil
            order.removeAll { $0 == id }
            try? save()
            return SandboxAnswer(status: 204, data: Data(), committed: true)
        case .units, .select:
            return Self.notFound
        }
    }

    // MARK: Admin

    func admin(method: String, path: String, body: Data?) -> SandboxAnswer {
        if let answer = SandboxAdmin.common(method: method, path: path, body: body, stats: traffic.stats, faults: traffic.faults,
                                            setFaults: { setFaults($0) }) {
            return answer
        }
        switch (method, path) {
        case ("GET", "/__sandbox/dump"):
            return .ok(["units": .array(units.map(\.json)), "secrets": .array(all().map(\.json))])
        case ("POST", "/__sandbox/check"):
            guard let body, let object = JSONValue.parse(body)?.objectValue,
                  case .string(let id)? = object["client_id"], case .string(let secret)? = object["client_secret"] else {
                return SandboxAnswer(status: 400, body: ["error": "the body must be {\"client_id\": ..., \"client_secret\": ...}"])
            }
            return .ok(["valid": .bool(check(clientID: id, clientSecret: secret))])
        case ("POST", "/__sandbox/backdate"):
            guard let body, case .int(let days)? = JSONValue.parse(body)?.objectValue?["days"], days >= 0, days < 100_000 else {
                return SandboxAnswer(status: 400, body: ["error": "the body must be {\"days\": N}"])
            }
            backdate(days: days)
            return .ok(["success": true])
        case ("POST", "/__sandbox/reset"):
            secrets = [:]
            order = []
            sessions = [:]
            traffic.stats = RequestStats()
            setFaults(SandboxFaults())
            try? save()
            return .ok(["success": true])
        default:
            return SandboxAnswer(status: 404, body: ["error": .string("no admin call \(method) \(path)")])
        }
    }

    private func save() throws(SandboxError) {
        guard let path = dataFile else { return }
        try Self.write(Stored(units: units, secrets: all()), to: path)
    }

    private static func write(_ stored: Stored, to path: String) throws(SandboxError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(stored)
        } catch {
            throw SandboxError(.dataFile, "\(path): \(error)")
        }
        try DataFile(path: path).write(data)
    }
}

/// Routes, authentication before any body is read, faults, answers.
struct LeadVibeResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    static let bodyLimit = 64 * 1024
    static let adminBodyLimit = 64 * 1024

    let engine: LeadVibeEngine

    static let unauthorized = SandboxAnswer(status: 401, body: ["error": "Unauthorized"], headers: [("WWW-Authenticate", "Bearer")])

    func respond(to request: Request, context: Context) async throws -> Response {
        let arrival = ContinuousClock.now
        let path = SandboxRouter.pathOnly(request.head.path ?? "/")
        let method = request.method.rawValue
        guard await engine.isAuthorized(request.headers[.authorization]) else { return SandboxResponder.response(Self.unauthorized) }
        var request = request
        if path.hasPrefix("/__sandbox/") {
            let body = try? await request.collectBody(upTo: Self.adminBodyLimit)
            return SandboxResponder.response(await engine.admin(method: method, path: path, body: body.map { Data($0.readableBytesView) }))
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let route: LeadVibeEngine.Route
        let template: String
        switch (method, Array(segments)) {
        case ("GET", ["org-units"]): (route, template) = (.units, "GET /org-units")
        case ("POST", ["org-units", "active"]): (route, template) = (.select, "POST /org-units/active")
        case ("GET", ["secrets"]): (route, template) = (.list, "GET /secrets")
        case ("POST", ["secrets"]): (route, template) = (.create, "POST /secrets")
        case ("PUT", let s) where s.count == 2 && s[0] == "secrets" && !s[1].isEmpty: (route, template) = (.update(String(s[1])), "PUT /secrets/{id}")
        case ("DELETE", let s) where s.count == 2 && s[0] == "secrets" && !s[1].isEmpty: (route, template) = (.remove(String(s[1])), "DELETE /secrets/{id}")
        case (_, ["secrets"]), (_, ["org-units"]), (_, ["org-units", "active"]):
            return SandboxResponder.response(SandboxAnswer(status: 405, body: ["error": "method not allowed"]))
        default:
            return SandboxResponder.response(LeadVibeEngine.notFound)
        }
        let isWrite = method != "GET"
        let engine = engine
        let cookie = request.headers[.cookie]
        return await SandboxCall.answer(&request, arrival: arrival, isWrite: isWrite, bodyLimit: Self.bodyLimit,
                                        admit: { await engine.admit(method: method, template: template, isWrite: isWrite) },
                                        keepsHanging: { await engine.keepsHanging },
                                        handle: { await engine.handle(route, body: $0, cookie: cookie) })
    }
}
