import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// One credential as LeadConduit keeps it (`GET /credentials` without masking).
public struct LeadConduitCredential: Sendable, Codable, Equatable {
    /// 24 hex digits, assigned at create.
    public var id: String
    public var name: String
    public var type: String
    public var package: String
    public var username: String
    public var password: String
    public var createdAt: String
    public var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case id, name, type, package, username, password
        case createdAt = "created_at", updatedAt = "updated_at"
    }

    public init(id: String, name: String, type: String = "user", package: String, username: String, password: String,
                createdAt: String = "2026-01-01T00:00:00.000Z", updatedAt: String = "2026-01-01T00:00:00.000Z") {
        self.id = id
        self.name = name
        self.type = type
        self.package = package
        self.username = username
        self.password = password
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// As the API answers it; `password` is `null` when the account masks secrets.
    func json(maskPassword: Bool) -> JSONValue {
        .object(JSONObject([
            (key: "id", value: .string(id)), (key: "name", value: .string(name)), (key: "type", value: .string(type)),
            (key: "package", value: .string(package)), (key: "username", value: .string(username)),
            (key: "password", value: maskPassword ? .null : .string(password)),
            (key: "created_at", value: .string(createdAt)), (key: "updated_at", value: .string(updatedAt)),
        ]))
    }
}

/// How a LeadConduit emulator starts.
public struct LeadConduitConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    /// The API keys it accepts (HTTP Basic password; the user name is ignored). None: no call
    /// is accepted.
    public var apiKeys: [String] = []
    /// Reads answer `"password": null` (an account that masks secrets).
    public var maskPasswords = false
    public var credentials: [LeadConduitCredential] = []
    public var faults = SandboxFaults()
    /// Keeps the credentials in this JSON file between runs (mode 0600, written atomically).
    public var dataFile: String?
    public var logger: Logger?
    public var shutdownGrace: Duration = .seconds(5)

    public init(apiKeys: [String] = [], maskPasswords: Bool = false, credentials: [LeadConduitCredential] = [],
                faults: SandboxFaults = SandboxFaults(), dataFile: String? = nil) {
        self.apiKeys = apiKeys
        self.maskPasswords = maskPasswords
        self.credentials = credentials
        self.faults = faults
        self.dataFile = dataFile
    }
}

/// A running LeadConduit emulator: `/credentials` as ActiveProspect documents it (HTTP Basic
/// with the API key as password, 24-hex ids assigned at create, names not unique, passwords
/// returned by reads unless masked), with the Apinizer sandbox's faults and test-only calls
/// under `/__sandbox/` (dump, stats, faults, reset, settings) behind the same key.
public final class LeadConduitServer: Sendable {
    private let engine: LeadConduitEngine
    private let served: ServedHTTP

    public var port: Int { served.port }
    public var baseURL: String { served.baseURL }

    private init(engine: LeadConduitEngine, served: ServedHTTP) {
        self.engine = engine
        self.served = served
    }

    /// Starts an emulator and returns once it accepts connections.
    public static func start(_ configuration: LeadConduitConfiguration) async throws -> LeadConduitServer {
        let logger = configuration.logger ?? Logger(label: "credops.sandbox.leadconduit", factory: { _ in SwiftLogNoOpLogHandler() })
        if let problem = configuration.faults.problems.first { throw SandboxError(.startup, "faults: \(problem)") }
        let engine = try LeadConduitEngine(configuration)
        return LeadConduitServer(engine: engine, served: try await SandboxHTTP.start(responder: LeadConduitResponder(engine: engine), host: configuration.host,
                                                                                    port: configuration.port, grace: configuration.shutdownGrace,
                                                                                    logger: logger))
    }

    /// Every stored credential (with its password), oldest first.
    public func credentials() async -> [LeadConduitCredential] { await engine.all() }

    public func setFaults(_ faults: SandboxFaults) async { await engine.setFaults(faults) }

    public func setMaskPasswords(_ mask: Bool) async { await engine.setMask(mask) }

    /// Puts a credential on the server as if made in its UI; returns its id.
    @discardableResult
    public func put(name: String, type: String = "user", package: String, username: String, password: String) async -> String {
        await engine.put(name: name, type: type, package: package, username: username, password: password)
    }

    /// Requests received: total, writes, and by route (`GET /credentials/{id}`).
    public func stats() async -> (total: Int, writes: Int, byRoute: [String: Int]) {
        let s = await engine.requestStats
        return (s.total, s.writes, s.byRoute)
    }

    public func stop() async {
        await engine.beginStopping()
        await served.stop()
    }
}

/// The emulated account: credentials, keys, faults, counts.
actor LeadConduitEngine {
    private var credentials: [String: LeadConduitCredential] = [:]
    private var order: [String] = []
    private let keys: [[UInt8]]
    private var mask: Bool
    private var traffic: EmulatorTraffic
    private let dataFile: String?
    private var random = SystemRandomNumberGenerator()

    init(_ configuration: LeadConduitConfiguration) throws(SandboxError) {
        keys = configuration.apiKeys.filter { !$0.isEmpty }.map(TokenDigest.of)
        mask = configuration.maskPasswords
        traffic = EmulatorTraffic(configuration.faults)
        dataFile = configuration.dataFile
        var seed = configuration.credentials
        if let path = dataFile, FileManager.default.fileExists(atPath: path) {
            do {
                seed = try JSONDecoder().decode(Stored.self, from: Data(contentsOf: URL(fileURLWithPath: path))).credentials
            } catch {
                throw SandboxError(.dataFile, "\(path): not a LeadConduit emulator data file (\(error))")
            }
        }
        var byID: [String: LeadConduitCredential] = [:]
        for credential in seed {
            guard Self.isID(credential.id), byID[credential.id] == nil else {
                throw SandboxError(.invalidSeed, "credential id \(credential.id) is not 24 hex digits, or is given twice")
            }
            byID[credential.id] = credential
        }
        credentials = byID
        order = seed.map(\.id)
        if let path = dataFile { try Self.write(seed, to: path) }
    }

    struct Stored: Codable { var credentials: [LeadConduitCredential] }

    static func isID(_ text: String) -> Bool {
        text.utf8.count == 24 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    func all() -> [LeadConduitCredential] { order.compactMap { credentials[$0] } }
    var requestStats: RequestStats { traffic.stats }
    func setFaults(_ faults: SandboxFaults) { traffic.setFaults(faults) }
    func setMask(_ value: Bool) { mask = value }
    func beginStopping() { traffic.beginStopping() }
    var keepsHanging: Bool { traffic.keepsHanging }

    func admit(method: String, template: String, isWrite: Bool) -> FaultInjector.Decision {
        traffic.admit(method: method, template: template, isWrite: isWrite)
    }

    /// True when the Basic credentials carry an accepted API key (the user name is ignored).
    func isAuthorized(_ authorization: String?) -> Bool {
        guard let authorization, authorization.count < 8192, authorization.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return false }
        let presented = TokenDigest.of(String(text[text.index(after: colon)...]))
        var accepted = false
        for key in keys where TokenDigest.equal(key, presented) { accepted = true }
        return accepted
    }

    private func newID() -> String {
        while true {
            let id = (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
            if credentials[id] == nil { return id }
        }
    }

    private static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    func put(name: String, type: String, package: String, username: String, password: String) -> String {
        let id = newID()
        let stamp = Self.now()
        credentials[id] = LeadConduitCredential(id: id, name: name, type: type, package: package, username: username, password: password,
                                                createdAt: stamp, updatedAt: stamp)
        order.append(id)
        try? save()
        return id
    }

    // MARK: API

    enum Route {
        case list, create, read(String), replace(String), remove(String)
    }

    func handle(_ route: Route, body: Data?) -> SandboxAnswer {
        switch route {
        case .list:
            return .ok(.array(all().map { $0.json(maskPassword: mask) }))
        case .read(let id):
            guard let found = credentials[id] else { return Self.notFound }
            return .ok(found.json(maskPassword: mask))
        case .create:
            switch Self.fields(body) {
            case .failure(let refused): return refused.answer
            case .success(let f):
                let id = newID()
                let stamp = Self.now()
                let made = LeadConduitCredential(id: id, name: f.name, type: f.type, package: f.package, username: f.username,
                                                 password: f.password, createdAt: stamp, updatedAt: stamp)
                credentials[id] = made
                order.append(id)
                try? save()
                return SandboxAnswer(status: 201, body: made.json(maskPassword: mask), committed: true)
            }
        case .replace(let id):
            guard var found = credentials[id] else { return Self.notFound }
            switch Self.fields(body) {
            case .failure(let refused): return refused.answer
            case .success(let f):
                (found.name, found.type, found.package, found.username, found.password) = (f.name, f.type, f.package, f.username, f.password)
                found.updatedAt = Self.now()
                credentials[id] = found
                try? save()
                return SandboxAnswer(status: 200, body: found.json(maskPassword: mask), committed: true)
            }
        case .remove(let id):
            guard credentials.removeValue(forKey: id) != nil else { return Self.notFound }
            order.removeAll { $0 == id }
            try? save()
            return SandboxAnswer(status: 204, data: Data(), committed: true)
        }
    }

    static let notFound = SandboxAnswer(status: 404, body: ["error": "not found"])

    struct Fields { var name, type, package, username, password: String }

    /// The full object a POST or PUT must carry; read-only members (`id`, dates) are ignored.
    struct Refused: Error { var answer: SandboxAnswer }

    static func fields(_ body: Data?) -> Result<Fields, Refused> {
        func invalid(_ message: String) -> Result<Fields, Refused> {
            .failure(Refused(answer: SandboxAnswer(status: 422, body: ["error": .string(message)])))
        }
        guard let body, let object = JSONValue.parse(body)?.objectValue else { return invalid("the body must be a JSON object") }
        func text(_ key: String) -> String? { if case .string(let s)? = object[key] { return s } else { return nil } }
        for key in ["name", "package", "username", "password"] {
            guard let value = text(key) else { return invalid("\(key) is required") }
            if value.isEmpty { return invalid("\(key) must be at least 1 character") }
        }
        let type = object["type"] == nil ? "user" : text("type") ?? ""
        guard ["user", "token", "oauth"].contains(type) else { return invalid("type must be one of user, token, oauth") }
        return .success(Fields(name: text("name")!, type: type, package: text("package")!, username: text("username")!,
                               password: text("password")!))
    }

    // MARK: Admin

    func admin(method: String, path: String, body: Data?) -> SandboxAnswer {
        if let answer = SandboxAdmin.common(method: method, path: path, body: body, stats: traffic.stats, faults: traffic.faults,
                                            setFaults: { setFaults($0) }) {
            return answer
        }
        switch (method, path) {
        case ("GET", "/__sandbox/dump"):
            return .ok(["credentials": .array(all().map { $0.json(maskPassword: false) })])
        case ("GET", "/__sandbox/settings"):
            return .ok(["maskPasswords": .bool(mask)])
        case ("PUT", "/__sandbox/settings"):
            guard let body, case .bool(let value)? = JSONValue.parse(body)?.objectValue?["maskPasswords"] else {
                return SandboxAnswer(status: 400, body: ["error": "the body must be {\"maskPasswords\": true|false}"])
            }
            mask = value
            return .ok(["success": true])
        case ("POST", "/__sandbox/reset"):
            credentials = [:]
            order = []
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
        try Self.write(all(), to: path)
    }

    /// Written like the Apinizer emulator's file: a fresh temporary file (mode 0600, never an
    /// existing one), synced, then renamed over the old one.
    private static func write(_ credentials: [LeadConduitCredential], to path: String) throws(SandboxError) {
        let data: Data
        do {
            data = try JSONEncoder().encode(Stored(credentials: credentials))
        } catch {
            throw SandboxError(.dataFile, "\(path): \(error)")
        }
        try DataFile(path: path).write(data)
    }
}

/// Routes, authentication before any body is read, faults, answers.
struct LeadConduitResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    static let bodyLimit = 1024 * 1024
    static let adminBodyLimit = 4 * 1024 * 1024

    let engine: LeadConduitEngine

    static let unauthorized = SandboxAnswer(status: 401, body: ["error": "authentication failed"],
                                            headers: [("WWW-Authenticate", "Basic realm=\"LeadConduit\"")])

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
        let route: LeadConduitEngine.Route
        let template: String
        switch (method, segments.count, segments.first) {
        case ("GET", 1, "credentials"): (route, template) = (.list, "GET /credentials")
        case ("POST", 1, "credentials"): (route, template) = (.create, "POST /credentials")
        case (_, 2, "credentials") where !segments.last!.isEmpty:
            let id = String(segments.last!)
            switch method {
            case "GET": (route, template) = (.read(id), "GET /credentials/{id}")
            case "PUT": (route, template) = (.replace(id), "PUT /credentials/{id}")
            case "DELETE": (route, template) = (.remove(id), "DELETE /credentials/{id}")
            default:
                return SandboxResponder.response(SandboxAnswer(status: 405, body: ["error": "method not allowed"],
                                                               headers: [("Allow", "GET, PUT, DELETE")]))
            }
        case (_, 1, "credentials"):
            return SandboxResponder.response(SandboxAnswer(status: 405, body: ["error": "method not allowed"], headers: [("Allow", "GET, POST")]))
        default:
            return SandboxResponder.response(LeadConduitEngine.notFound)
        }
        let isWrite = method != "GET"
        let engine = engine
        return await SandboxCall.answer(&request, arrival: arrival, isWrite: isWrite, bodyLimit: Self.bodyLimit,
                                        admit: { await engine.admit(method: method, template: template, isWrite: isWrite) },
                                        keepsHanging: { await engine.keepsHanging },
                                        handle: { await engine.handle(route, body: $0) })
    }
}
