import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

/// A sandbox on a free port and the project's own HTTP client talking to it.
struct SandboxHarness: Sendable {
    static let token = "test-token"

    let server: SandboxServer
    let client: HTTPClient

    /// The default seed plus, explicitly (the default has none), a seeded token and the
    /// client-credentials login `ci-user`/`ci-pass`.
    static let testSeed: SandboxSeed = {
        var seed = SandboxSeed.default
        seed.tokens = ["seeded-token"]
        seed.clients = ["ci-user": "ci-pass"]
        return seed
    }()

    /// The default test configuration: the test seed plus the token `test-token`.
    static func configuration(seed: SandboxSeed = testSeed, faults: SandboxFaults = .init(), dataFile: String? = nil) -> SandboxConfiguration {
        SandboxConfiguration(tokens: [token], seed: seed, dataFile: dataFile, faults: faults)
    }

    /// Runs `body` against a fresh sandbox, then stops it (also when `body` throws).
    @discardableResult
    static func with<T: Sendable>(_ configuration: SandboxConfiguration = configuration(),
                                  _ body: (SandboxHarness) async throws -> T) async throws -> T {
        let server = try await SandboxServer.start(configuration)
        let harness = SandboxHarness(server: server, client: HTTPClient(configuration: HTTPClientConfiguration(concurrency: 4)))
        do {
            let result = try await body(harness)
            harness.client.shutdown()
            await server.stop()
            return result
        } catch {
            harness.client.shutdown()
            await server.stop()
            throw error
        }
    }

    /// Sends one request; `path` starts with `/`. `token: nil` sends no Authorization header.
    func send(_ method: HTTPMethod, _ path: String, json: String? = nil, body: Data? = nil, token: String? = SandboxHarness.token,
              headers extra: [(String, String)] = [], timeout: Duration? = nil) async throws(HTTPClientError) -> HTTPResponse {
        var headers = HTTPHeaders()
        if let token { headers.add("Authorization", "Bearer \(token)") }
        var data = body
        if let json {
            headers.add("Content-Type", "application/json")
            data = Data(json.utf8)
        }
        for (name, value) in extra { headers.set(name, value) }
        return try await client.send(HTTPRequest(method: method, url: server.baseURL + path, headers: headers, body: data), timeout: timeout)
    }

    /// `/apiops/projects/{project}/credentials/` with `project` (and `username`) encoded.
    static func credentialsPath(_ project: String, _ username: String? = nil, access: Bool = false) -> String {
        var path = "/apiops/projects/\(URLParts.encodeSegment(project))/credentials/"
        if let username { path += "\(URLParts.encodeSegment(username))/" }
        if access { path += "access/" }
        return path
    }

    /// Creates a credential (default fields unless given) and expects success.
    @discardableResult
    func create(_ username: String, in project: String = "MyProject", password: String = "secret-1",
                email: String = "dev@example.com", extra: String = "") async throws -> HTTPResponse {
        let body = """
        {"username": \(Self.quoted(username)), "password": \(Self.quoted(password)), "email": \(Self.quoted(email)), "fullName": "Dev One"\(extra)}
        """
        let response = try await send(.post, Self.credentialsPath(project), json: body)
        #expect(response.status == 200, "create \(username): \(response.text)")
        return response
    }

    /// The credential as the sandbox holds it (from its dump).
    func stored(_ username: String) async -> SandboxCredential? {
        await server.snapshot().credentials.first { $0.username == username }
    }

    static func quoted(_ text: String) -> String {
        String(decoding: JSONValue.string(text).serialized, as: UTF8.self)
    }
}

extension HTTPResponse {
    /// The body as text.
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as JSON (`.null` when it is not JSON).
    var json: JSONValue { JSONValue.parse(body) ?? .null }

    /// The error code of an error body.
    var errorCode: String? { json["error"]?.stringValue }

    /// The error description of an error body.
    var errorDescription: String? { json["error_description"]?.stringValue }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? { objectValue?[key] }

    subscript(index: Int) -> JSONValue? {
        guard case .array(let values) = self, values.indices.contains(index) else { return nil }
        return values[index]
    }

    var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var intValue: Int? {
        if case .int(let value) = self { return value }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
