@testable import ApinizerSandbox
@testable import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// A profile's session against servers that bend the rules a real API might bend: pages held
/// short, paging ignored, next links that carry the namespace, generated secrets in answers
/// that fail their checks, writes refused after a selection. Each was a hole found by review.
@Suite struct ProfileSessionTests {
    static func session(_ text: String, url: String, credentials: Connection.Credentials = .bearer(Secret("session-test-token")),
                        runSecrets: RunSecrets = RunSecrets()) throws -> (any ProviderSession, HTTPClient) {
        let profile = try ProfileFixtures.profile(text)
        let env = EnvironmentConfig(name: "dev", file: "dev.yaml", location: SourceLocation(file: "dev.yaml", line: 1, column: 1),
                                    provider: profile.name, endpoint: .url(url), endpointLocation: SourceLocation(file: "dev.yaml", line: 1, column: 1))
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2))
        var retry = RetrySettings()
        retry.maxRetries = 0
        var connection = Connection(baseURL: url, credentials: credentials, retry: retry)
        connection.runSecrets = runSecrets
        return (ProfileProvider(profile).session(for: env, connection: connection, http: http), http)
    }

    /// The request line (`GET /path?query HTTP/1.1`) of a raw request.
    static func target(_ request: String) -> String {
        String(request.prefix { $0 != "\r" }.split(separator: " ").dropFirst().first ?? "")
    }

    static func json(_ object: Any) -> Data { try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) }

    static let paged = ProfileFixtures.query
        .replacingOccurrences(of: "identity: { id: /token_id }", with: "list: { items: /items, paging: { pageNumber: { parameter: page, size: 100 } } }\nidentity: { id: /token_id }")

    static func items(_ range: Range<Int>) -> [[String: Any]] {
        range.map { ["token_id": "t\($0)", "title": "Title \($0)", "scope": "read"] }
    }

    @Test func aServerThatHoldsPagesShorterThanAskedIsReadToTheEnd() async throws {
        // Asked for 100 a page, the server gives 2: the listing goes on until a short or empty page.
        let server = try RawHTTPServer { request in
            let target = Self.target(request)
            let page = Int(target.components(separatedBy: "page=").last?.prefix { $0.isNumber } ?? "1") ?? 1
            let start = (page - 1) * 2
            return RawHTTPServer.answer(status: 200, body: Self.json(["items": Self.items(start..<min(5, start + 2))]))
        }
        defer { server.stop() }
        let (session, http) = try Self.session(Self.paged, url: server.url)
        defer { http.shutdown() }
        let listed = try await session.list(namespace: "team-a")
        #expect(listed.map(\.id.rawValue) == (0..<5).map { "Title \($0)" })
        #expect(server.received.count == 3)
    }

    @Test func aServerThatIgnoresThePageParameterIsAnErrorNotADuplicateListing() async throws {
        let server = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200, body: Self.json(["items": Self.items(0..<100)])) }
        defer { server.stop() }
        let (session, http) = try Self.session(Self.paged, url: server.url)
        defer { http.shutdown() }
        await #expect {
            _ = try await session.list(namespace: "team-a")
        } throws: { error in
            "\(error)".contains("ignores the paging")
        }
        #expect(server.received.count == 2)
    }

    @Test func aNextLinkThatCarriesTheNamespaceIsNotGivenItTwice() async throws {
        let profile = ProfileFixtures.query
            .replacingOccurrences(of: "identity: { id: /token_id }", with: "list: { items: /items, paging: { nextLink: /next } }\nidentity: { id: /token_id }")
        let server = try RawHTTPServer { request in
            let target = Self.target(request)
            if target.contains("after=2") { return RawHTTPServer.answer(status: 200, body: Self.json(["items": Self.items(2..<3)])) }
            return RawHTTPServer.answer(status: 200, body: Self.json(["items": Self.items(0..<2), "next": "/tokens?after=2&org=team-a"]))
        }
        defer { server.stop() }
        let (session, http) = try Self.session(profile, url: server.url)
        defer { http.shutdown() }
        let listed = try await session.list(namespace: "team-a")
        #expect(listed.count == 3)
        #expect(server.received.map(Self.target) == ["/tokens?org=team-a", "/tokens?after=2&org=team-a"])
    }

    @Test func aGeneratedSecretInAnAnswerThatFailsItsChecksIsRedactedAllTheSame() async throws {
        // No id, and a secret that is not deliverable: both errors, and the secret is known to
        // the run's redactor before either is raised.
        let canaries = ["CANARY-no-id-0123456789", "CANARY with space 98765"]
        for (i, canary) in canaries.enumerated() {
            let server = try RawHTTPServer { _ in
                var body: [String: Any] = ["token": canary, "title": "x"]
                if i == 1 { body["token_id"] = "t1" }
                return RawHTTPServer.answer(status: 201, body: Self.json(body))
            }
            defer { server.stop() }
            let secrets = RunSecrets()
            let (session, http) = try Self.session(ProfileFixtures.query, url: server.url, runSecrets: secrets)
            defer { http.shutdown() }
            await #expect(throws: ProviderError.self) {
                _ = try await session.create(Resource(id: "x", fields: ["scope": .string("read")]), in: "team-a", secret: nil)
            }
            #expect(!secrets.redactor.redact("the server said \(canary)").contains(canary), "\(canary) is not redacted")
        }
    }

    @Test func aWriteRefusedWith400AfterASelectionIsNotSentAgain() async throws {
        let server = try RawHTTPServer { request in
            let target = Self.target(request)
            if target == "/session/unit" { return RawHTTPServer.answer(status: 200, headers: [("Set-Cookie", "unitSession=abc123; Path=/")]) }
            if request.hasPrefix("POST /clients") { return RawHTTPServer.answer(status: 400, body: Self.json(["error": "label is taken"])) }
            return RawHTTPServer.answer(status: 400, body: Self.json(["error": "select a unit"]))
        }
        defer { server.stop() }
        let (session, http) = try Self.session(ProfileFixtures.units, url: server.url, credentials: .header(name: "X-API-Key", value: Secret("k")))
        defer { http.shutdown() }
        await #expect(throws: ProviderError.self) {
            _ = try await session.create(Resource(id: "x", fields: [:]), in: "u1", secret: nil)
        }
        #expect(server.received.filter { $0.hasPrefix("POST /clients") }.count == 1)
        // A read refused with 400 is taken for an expired selection: selected again, read again, once.
        await #expect(throws: ProviderError.self) { _ = try await session.list(namespace: "u1") }
        #expect(server.received.filter { $0.hasPrefix("GET /clients") }.count == 2)
        #expect(server.received.filter { $0.hasPrefix("POST /session/unit") }.count == 2)
    }

    @Test func aKeyThatIsTheIDMayHoldSpacesAndIsStillAddressed() async throws {
        let profile = try ProfileFixtures.profile(ProfileFixtures.vault)
        var configuration = ProfileEmulatorConfiguration(profile: profile, keys: ["vault-key-0123"])
        configuration.namespaces = ["team-a"]
        let server = try await ProfileServer.start(configuration)
        defer { Task { await server.stop() } }
        let (session, http) = try Self.session(ProfileFixtures.vault, url: server.baseURL, credentials: .bearer(Secret("vault-key-0123")))
        defer { http.shutdown() }
        let resource = Resource(id: "Partner Feed 1", fields: ["owner": .string("ops"), "active": .bool(true)])
        _ = try await session.create(resource, in: "team-a", secret: Secret("first-password-0123"))
        var changed = resource
        changed.fields["owner"] = .string("platform")
        let address = CredentialAddress(namespace: "team-a", key: resource.id, serverID: nil)
        try await session.update(address, to: changed, changes: [FieldChange(field: "owner", before: .string("ops"), after: .string("platform"))], secret: Secret("first-password-0123"))
        changed.fields["active"] = .bool(false)
        try await session.update(address, to: changed, changes: [FieldChange(field: "active", before: .bool(true), after: .bool(false))], secret: nil)
        let listed = try await session.list(namespace: "team-a")
        #expect(listed.first?.fields["owner"] == .string("platform") && listed.first?.fields["active"] == .bool(false))
        try await session.delete(address)
        #expect(try await session.list(namespace: "team-a").isEmpty)
    }

    @Test func theEmulatorRefusesCursorsAndPagesItDidNotMake() async throws {
        for (text, query) in [(ProfileFixtures.header, "after=c-100"), (ProfileFixtures.header, "after=c99999999999999999999"),
                              (ProfileFixtures.vault, "page=9223372036854775807&per_page=10000"), (ProfileFixtures.vault, "page=-5")] {
            let profile = try ProfileFixtures.profile(text)
            var configuration = ProfileEmulatorConfiguration(profile: profile, keys: ["emulator-key-0123"])
            configuration.namespaces = ["team-a"]
            let server = try await ProfileServer.start(configuration)
            let (session, http) = try Self.session(text, url: server.baseURL, credentials: text == ProfileFixtures.header
                ? .basic(username: "u", password: Secret("emulator-key-0123")) : .bearer(Secret("emulator-key-0123")))
            _ = try await session.create(Resource(id: "one", fields: ["owner": .string("o"), "roles": .set(["read"])]), in: "team-a", secret: Secret("password-0123456"))
            let path = text == ProfileFixtures.header ? "/v1/logins" : "/api/v2/teams/team-a/keys"
            let response = try await http.send(HTTPRequest(method: .get, url: server.baseURL + path + "?" + query,
                                                           headers: HTTPHeaders([("Authorization", text == ProfileFixtures.header ? "Basic " + Data("u:emulator-key-0123".utf8).base64EncodedString() : "Bearer emulator-key-0123"),
                                                                     ("X-Workspace", "team-a")])))
            #expect(response.status == 400 || (response.status == 200 && query.hasPrefix("after=c9")), "\(query): \(response.status)")
            // The server is still up.
            #expect(try await session.list(namespace: "team-a").count == 1)
            http.shutdown()
            await server.stop()
        }
    }
}

/// A profile whose credentials have no secret (`secret: none`) is planned like any other: a
/// declared credential missing on the server is created, one whose field differs is updated.
@Suite struct SecretlessProfilePlanTests {
    @Test func credentialsWithoutASecretAreCreatedAndUpdated() throws {
        let text = ProfileFixtures.query
            .replacingOccurrences(of: "secret: { generated: { values: { token: /token }, secret: [token] } }", with: "secret: none")
            .replacingOccurrences(of: "immutable: true, ", with: "")
        let profile = try ProfileFixtures.profile(text)
        #expect(profile.schema.capabilities.secret == .none)
        let at = SourceLocation(file: "m.yaml", line: 1, column: 1)
        let wanted = [DesiredCredential(resource: Resource(id: "new", fields: ["scope": .string("read")]), secret: nil, grants: nil, location: at),
                      DesiredCredential(resource: Resource(id: "old", fields: ["scope": .string("write")]), secret: nil, grants: nil, location: at)]
        let project = DesiredProject(project: "p", serverProject: "p", prune: .managed, credentials: wanted, location: at)
        let plan = Planner(schema: profile.schema).plan(Planner.ProjectInput(
            desired: project, live: [Resource(id: "old", fields: ["scope": .string("read")], serverID: "t1")], liveGrants: [:], managed: [:], secrets: [:]))
        #expect(plan.changes.map { "\($0.key) \($0.action.kind.rawValue)" } == ["new create", "old adopt", "old update"])
    }
}
