import Crypto
import Foundation

/// A provider whose server is a value in memory: the reference implementation of the provider
/// contract, for engine tests (planner, applier, intent resolver) that need a server with exact,
/// scripted behaviour and no network. It has any schema it is given, stores secrets only as
/// digests, and fails on request (`MemoryServer.inject`), as the HTTP emulators do.
///
/// Hummingbird ships an in-memory store next to its storage protocol for the same reason:
/// code written against a contract is tested against the simplest thing that keeps it.
public struct MemoryProvider: Provider {
    public let name: String
    public let schema: ResourceSchema
    /// The one server every session of this provider talks to, whatever the environment.
    public let server: MemoryServer

    public init(name: String = "memory", schema: ResourceSchema, server: MemoryServer = MemoryServer()) {
        self.name = name
        self.schema = schema
        self.server = server
    }

    public func session(for environment: EnvironmentConfig, connection: Connection, http: HTTPClient) -> any ProviderSession {
        MemorySession(server: server)
    }
}

/// The state of a `MemoryProvider`'s server, and the faults it will answer with.
public final class MemoryServer: @unchecked Sendable {
    /// The calls of the provider contract, to aim faults at.
    public enum Call: String, Sendable, CaseIterable {
        case list, grants, create, update, setSecret, delete, grant, revoke
    }

    /// How one call goes wrong.
    public enum Fault: Sendable, Equatable {
        /// Refused with this status; nothing changes.
        case refuse(status: Int)
        /// The change is made, then the answer is lost (the client cannot know).
        case loseAnswer
        /// The request is lost before the server sees it (the client cannot know either).
        case dropRequest
        /// The change is stored, but a deployment target did not take it.
        case storedNotDeployed
    }

    /// One credential as the server keeps it.
    public struct Stored: Sendable, Equatable {
        public var resource: Resource
        /// SHA-256 of the secret, hex: enough to check which secret it holds.
        public var secretDigest: String
        public var grants: Set<AccessGrant>
        /// The server's id: the key, or one it assigned.
        public var serverID: String
    }

    /// True when the server assigns each credential an id of its own at create (and allows two
    /// credentials with one name, as LeadConduit does); false when the key is the id.
    public let assignsIDs: Bool
    private let lock = NSLock()
    /// By namespace, then by server id.
    private var projects: [ProjectName: [String: Stored]] = [:]
    private var nextID = 0
    private var faults: [Call: [Fault]] = [:]
    private var hooks: [Call: [@Sendable () -> Void]] = [:]
    private var log: [String] = []

    public init(assignsIDs: Bool = false) {
        self.assignsIDs = assignsIDs
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The next `times` calls of `call` fail with `fault` (after any already queued).
    public func inject(_ fault: Fault, on call: Call, times: Int = 1) {
        locked { faults[call, default: []] += Array(repeating: fault, count: times) }
    }

    /// Runs `action` once, just before the next `call` is handled (for a test to change the
    /// world at that moment: take a lock away, say).
    public func before(_ call: Call, _ action: @escaping @Sendable () -> Void) {
        locked { hooks[call, default: []].append(action) }
    }

    /// A new id: 24 hex digits, like a MongoDB ObjectId (the key itself when ids are keys).
    /// Called with the lock held (by `put`, or inside `handle`).
    func newID(for key: CredentialKey) -> String {
        guard assignsIDs else { return key.rawValue }
        nextID += 1
        return String(repeating: "0", count: 24 - String(nextID, radix: 16).count) + String(nextID, radix: 16)
    }

    /// Puts a credential on the server as if made out of band; returns its id.
    @discardableResult
    public func put(project: ProjectName, _ resource: Resource, secret: Secret, grants: Set<AccessGrant> = []) -> String {
        locked {
            let id = newID(for: resource.id)
            var resource = resource
            resource.serverID = assignsIDs ? id : nil
            projects[project, default: [:]][id] = Stored(resource: resource, secretDigest: Self.digest(secret), grants: grants, serverID: id)
            return id
        }
    }

    /// Removes a credential as if deleted out of band (by its server id).
    public func remove(project: ProjectName, serverID: String) {
        locked { _ = projects[project]?.removeValue(forKey: serverID) }
    }

    /// The credential named `id` (the oldest, when the server holds several of that name).
    public func stored(project: ProjectName, id: CredentialKey) -> Stored? {
        locked { (projects[project] ?? [:]).values.filter { $0.resource.id == id }.min { $0.serverID < $1.serverID } }
    }

    /// Every credential of a project, by name (the oldest of a name; `all(project:)` has every one).
    public func credentials(project: ProjectName) -> [CredentialKey: Stored] {
        Dictionary(all(project: project).map { ($0.resource.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Every credential of a project, oldest id first.
    public func all(project: ProjectName) -> [Stored] {
        locked { (projects[project] ?? [:]).values.sorted { $0.serverID < $1.serverID } }
    }

    /// True when the credential holds exactly this secret.
    public func holds(project: ProjectName, id: CredentialKey, secret: Secret) -> Bool {
        stored(project: project, id: id)?.secretDigest == Self.digest(secret)
    }

    /// Every call received, in order: `create payments/alice`.
    public var calls: [String] { locked { log } }

    static func digest(_ secret: Secret) -> String { Hex.encode(SHA256.hash(data: Array(secret.reveal().utf8))) }

    /// Runs one call: logs it, applies its fault (if one is queued) around `change`.
    func handle<T>(_ call: Call, _ target: String, _ change: (inout [ProjectName: [String: Stored]]) throws(ProviderError) -> T)
        throws(ProviderError) -> T {
        let hook = locked { hooks[call]?.isEmpty == false ? hooks[call]!.removeFirst() : nil }
        hook?()
        lock.lock()
        defer { lock.unlock() }
        log.append("\(call.rawValue) \(target)")
        let request = "\(call.rawValue.uppercased()) memory://\(target)"
        let fault: Fault? = faults[call]?.isEmpty == false ? faults[call]!.removeFirst() : nil
        switch fault {
        case .refuse(401)?:
            throw ProviderError(.authentication, request: request, message: "401 authentication failed (injected)")
        case .refuse(let status)?:
            throw ProviderError(.server(status: status, code: "refused"), request: request, message: "\(status) refused (injected)")
        case .dropRequest?:
            throw ProviderError(.transport(.timeout), request: request, message: "no answer (injected: request dropped)", outcomeUnknown: true)
        case .loseAnswer?:
            _ = try change(&projects)
            throw ProviderError(.transport(.timeout), request: request, message: "no answer (injected: answer lost)", outcomeUnknown: true)
        case .storedNotDeployed?:
            _ = try change(&projects)
            throw ProviderError(.gatewayFailed(gateways: ["memory-gateway"]), request: request,
                                message: "stored, but gateway memory-gateway failed (injected)")
        case nil:
            return try change(&projects)
        }
    }
}

/// A session to a `MemoryServer`: every call of the contract, with the server's rules (unique
/// ids per project, a missing credential is a 404).
struct MemorySession: ProviderSession {
    let server: MemoryServer
    private let counter = RequestCounter()

    var statistics: RequestStatistics { counter.value }

    private func notFound(_ call: MemoryServer.Call, _ target: String) -> ProviderError {
        ProviderError(.server(status: 404, code: "not_found"), request: "\(call.rawValue.uppercased()) memory://\(target)",
                      message: "404 not_found: no credential \(target)")
    }

    func list(namespace: ProjectName) async throws(ProviderError) -> [Resource] {
        counter.read()
        return try server.handle(.list, "\(namespace)") { projects in
            (projects[namespace] ?? [:]).values.sorted { $0.serverID < $1.serverID }.map(\.resource)
        }
    }

    /// The server's key for an address: its id when the server assigns ids (an address without
    /// one cannot be found, which shows an engine that forgot it), else the key.
    private func storageID(_ credential: CredentialAddress) -> String {
        server.assignsIDs ? (credential.serverID ?? "(no id)") : credential.key.rawValue
    }

    /// Runs `body` on the stored credential at `credential`; a 404 when there is none.
    private func withStored<T>(_ call: MemoryServer.Call, _ credential: CredentialAddress,
                               _ body: (inout MemoryServer.Stored?) throws(ProviderError) -> T) throws(ProviderError) -> T {
        let target = "\(credential.namespace)/\(credential.key)"
        let id = storageID(credential)
        return try server.handle(call, target) { (projects) throws(ProviderError) in
            var stored = projects[credential.namespace]?[id]
            guard stored != nil else { throw notFound(call, target) }
            let result = try body(&stored)
            projects[credential.namespace]![id] = stored
            return result
        }
    }

    func grants(of credential: CredentialAddress) async throws(ProviderError) -> [AccessGrant] {
        counter.read()
        return try withStored(.grants, credential) { $0!.grants.sorted() }
    }

    func create(_ resource: Resource, in namespace: ProjectName, secret: Secret?) async throws(ProviderError) -> CreatedCredential {
        counter.write()
        let target = "\(namespace)/\(resource.id)"
        let assigns = server.assignsIDs
        return try server.handle(.create, target) { (projects) throws(ProviderError) in
            if !assigns, projects[namespace]?[resource.id.rawValue] != nil {
                throw ProviderError(.server(status: 409, code: "conflict"), request: "CREATE memory://\(target)", message: "409 conflict: \(target) exists")
            }
            let id = server.newID(for: resource.id)
            var stored = resource
            stored.serverID = assigns ? id : nil
            projects[namespace, default: [:]][id] = MemoryServer.Stored(resource: stored, secretDigest: secret.map(MemoryServer.digest) ?? "",
                                                                        grants: [], serverID: id)
            return CreatedCredential(serverID: assigns ? id : nil)
        }
    }

    func update(_ credential: CredentialAddress, to resource: Resource, changes: [FieldChange],
                secret: Secret?) async throws(ProviderError) {
        counter.write()
        try withStored(.update, credential) { stored in
            let serverID = stored!.resource.serverID
            stored!.resource = resource
            stored!.resource.serverID = serverID
            if let secret { stored!.secretDigest = MemoryServer.digest(secret) }
        }
    }

    func setSecret(_ credential: CredentialAddress, secret: Secret) async throws(ProviderError) {
        counter.write()
        try withStored(.setSecret, credential) { $0!.secretDigest = MemoryServer.digest(secret) }
    }

    func delete(_ credential: CredentialAddress) async throws(ProviderError) {
        counter.write()
        try withStored(.delete, credential) { $0 = nil }
    }

    func grant(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        counter.write()
        try withStored(.grant, credential) { $0!.grants.formUnion(grants) }
    }

    func revoke(_ credential: CredentialAddress, grants: [AccessGrant]) async throws(ProviderError) {
        counter.write()
        try withStored(.revoke, credential) { $0!.grants.subtract(grants) }
    }
}

/// Counts a session's calls from concurrent tasks.
final class RequestCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var stats = RequestStatistics()

    var value: RequestStatistics {
        lock.lock()
        defer { lock.unlock() }
        return stats
    }

    func read() { lock.lock(); stats.reads += 1; lock.unlock() }
    func write() { lock.lock(); stats.writes += 1; lock.unlock() }
}
