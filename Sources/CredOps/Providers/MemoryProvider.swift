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
    }

    private let lock = NSLock()
    private var projects: [ProjectName: [Username: Stored]] = [:]
    private var faults: [Call: [Fault]] = [:]
    private var log: [String] = []

    public init() {}

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The next `times` calls of `call` fail with `fault` (after any already queued).
    public func inject(_ fault: Fault, on call: Call, times: Int = 1) {
        locked { faults[call, default: []] += Array(repeating: fault, count: times) }
    }

    /// Puts a credential on the server as if made out of band.
    public func put(project: ProjectName, _ resource: Resource, secret: Secret, grants: Set<AccessGrant> = []) {
        locked { projects[project, default: [:]][resource.id] = Stored(resource: resource, secretDigest: Self.digest(secret), grants: grants) }
    }

    /// A credential as stored, nil when there is none.
    public func stored(project: ProjectName, id: Username) -> Stored? {
        locked { projects[project]?[id] }
    }

    /// Every credential of a project, by id.
    public func credentials(project: ProjectName) -> [Username: Stored] {
        locked { projects[project] ?? [:] }
    }

    /// True when the credential holds exactly this secret.
    public func holds(project: ProjectName, id: Username, secret: Secret) -> Bool {
        locked { projects[project]?[id]?.secretDigest == Self.digest(secret) }
    }

    /// Every call received, in order: `create payments/alice`.
    public var calls: [String] { locked { log } }

    static func digest(_ secret: Secret) -> String { Hex.encode(SHA256.hash(data: Array(secret.reveal().utf8))) }

    /// Runs one call: logs it, applies its fault (if one is queued) around `change`.
    func handle<T>(_ call: Call, _ target: String, _ change: (inout [ProjectName: [Username: Stored]]) throws(ProviderError) -> T)
        throws(ProviderError) -> T {
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

    func list(project: ProjectName) async throws(ProviderError) -> [Resource] {
        counter.read()
        return try server.handle(.list, "\(project)") { projects in
            (projects[project] ?? [:]).values.map(\.resource).sorted { $0.id < $1.id }
        }
    }

    func grants(project: ProjectName, id: Username) async throws(ProviderError) -> [AccessGrant] {
        counter.read()
        let target = "\(project)/\(id)"
        return try server.handle(.grants, target) { (projects) throws(ProviderError) in
            guard let stored = projects[project]?[id] else { throw notFound(.grants, target) }
            return stored.grants.sorted()
        }
    }

    func create(project: ProjectName, resource: Resource, secret: Secret) async throws(ProviderError) {
        counter.write()
        let target = "\(project)/\(resource.id)"
        try server.handle(.create, target) { (projects) throws(ProviderError) in
            if projects[project]?[resource.id] != nil {
                throw ProviderError(.server(status: 409, code: "conflict"), request: "CREATE memory://\(target)", message: "409 conflict: \(target) exists")
            }
            projects[project, default: [:]][resource.id] = MemoryServer.Stored(resource: resource, secretDigest: MemoryServer.digest(secret), grants: [])
        }
    }

    func update(project: ProjectName, resource: Resource, secret: Secret) async throws(ProviderError) {
        counter.write()
        let target = "\(project)/\(resource.id)"
        try server.handle(.update, target) { (projects) throws(ProviderError) in
            guard var stored = projects[project]?[resource.id] else { throw notFound(.update, target) }
            stored.resource = resource
            stored.secretDigest = MemoryServer.digest(secret)
            projects[project]![resource.id] = stored
        }
    }

    func setSecret(project: ProjectName, id: Username, secret: Secret) async throws(ProviderError) {
        counter.write()
        let target = "\(project)/\(id)"
        try server.handle(.setSecret, target) { (projects) throws(ProviderError) in
            guard projects[project]?[id] != nil else { throw notFound(.setSecret, target) }
            projects[project]![id]!.secretDigest = MemoryServer.digest(secret)
        }
    }

    func delete(project: ProjectName, id: Username) async throws(ProviderError) {
        counter.write()
        let target = "\(project)/\(id)"
        try server.handle(.delete, target) { (projects) throws(ProviderError) in
            guard projects[project]?.removeValue(forKey: id) != nil else { throw notFound(.delete, target) }
        }
    }

    func grant(project: ProjectName, id: Username, grants: [AccessGrant]) async throws(ProviderError) {
        counter.write()
        let target = "\(project)/\(id)"
        try server.handle(.grant, target) { (projects) throws(ProviderError) in
            guard projects[project]?[id] != nil else { throw notFound(.grant, target) }
            projects[project]![id]!.grants.formUnion(grants)
        }
    }

    func revoke(project: ProjectName, id: Username, grants: [AccessGrant]) async throws(ProviderError) {
        counter.write()
        let target = "\(project)/\(id)"
        try server.handle(.revoke, target) { (projects) throws(ProviderError) in
            guard projects[project]?[id] != nil else { throw notFound(.revoke, target) }
            projects[project]![id]!.grants.subtract(grants)
        }
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
