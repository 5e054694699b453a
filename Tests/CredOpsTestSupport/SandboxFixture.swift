import ApinizerSandbox
import CredOps
import Foundation

/// A sandbox on an ephemeral loopback port for one test, with the test-only admin calls.
public final class SandboxFixture: @unchecked Sendable {
    public let server: SandboxServer
    public let token: String
    private let client: HTTPClient

    public var baseURL: String { server.baseURL }

    /// - Parameter seed: catalog and pre-existing credentials; the default adds the projects,
    ///   roles and proxies the tests use.
    public static func start(seed: SandboxSeed = SandboxFixture.testSeed, faults: SandboxFaults = SandboxFaults(),
                             dataFile: String? = nil, token: String = "test-token-0123456789") async throws -> SandboxFixture {
        var configuration = SandboxConfiguration()
        configuration.tokens = [token]
        configuration.seed = seed
        configuration.faults = faults
        configuration.dataFile = dataFile
        let server = try await SandboxServer.start(configuration)
        return SandboxFixture(server: server, token: token)
    }

    /// Projects payments/reporting/Payments-Prod, the usual roles, proxies and a group.
    public static let testSeed = SandboxSeed(
        projects: ["payments", "reporting", "Payments-Prod", "admin"],
        roles: ["API_USER", "DEVELOPER", "ADMIN"],
        apiProxies: ["PaymentAPI", "RefundAPI", "ReportingAPI"],
        apiProxyGroups: ["PaymentAPIGroup"],
        gateways: ["gw-eu", "gw-us"],
        tokens: [], clients: ["ci-user": "ci-pass"], tokenTTLSeconds: 3600, credentials: [])

    private init(server: SandboxServer, token: String) {
        self.server = server
        self.token = token
        self.client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2))
    }

    public func stop() async {
        client.shutdown()
        await server.stop()
    }

    /// Every credential the sandbox holds (passwords and grants included), by username.
    public func credentials() async -> [String: SandboxCredential] {
        let snapshot = await server.snapshot()
        return Dictionary(snapshot.credentials.map { ($0.username, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public struct Stats: Decodable, Sendable {
        public var total: Int
        public var writes: Int
        public var byRoute: [String: Int]
        public var byMethod: [String: Int]
    }

    public func stats() async throws -> Stats {
        let response = try await admin(.get, "stats")
        return try JSONDecoder().decode(Stats.self, from: response.body)
    }

    public func resetStats() async throws { _ = try await admin(.delete, "stats") }

    public func setFaults(_ faults: SandboxFaults) async { await server.setFaults(faults) }

    /// Inserts or replaces credentials out of band (drift).
    public func seed(credentials: [SandboxCredential]) async throws {
        let body = try JSONEncoder().encode(["credentials": credentials])
        let response = try await admin(.post, "seed", body: body)
        precondition(response.status == 200, "seed failed: \(String(decoding: response.body, as: UTF8.self))")
    }

    @discardableResult
    public func admin(_ method: HTTPMethod, _ call: String, body: Data? = nil) async throws -> HTTPResponse {
        var headers = HTTPHeaders([("Authorization", "Bearer \(token)")])
        if body != nil { headers.add("Content-Type", "application/json") }
        return try await client.send(HTTPRequest(method: method, url: "\(baseURL)/__sandbox/\(call)", headers: headers, body: body))
    }
}
