import ApinizerProvider
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// The shared auth of every provider: bearer, HTTP Basic, an API key as Basic with the fixed
/// user, and OAuth2 client credentials with a form or JSON body at a configurable token path,
/// read from environment files with located errors and sent by one `Authenticator`.
@Suite struct AuthKitTests {
    func loadEnvironment(_ auth: String) -> (EnvironmentConfig?, [Diagnostic], String) {
        let dir = TemporaryDirectory()
        let file = dir.write("environments/dev.yaml", "url: https://api.example.com\nauth:\n\(auth)\n")
        dir.write("m/m.yaml", "apiVersion: credops/v1\nkind: CredentialSet\nproject: p\ncredentials: []\n")
        let (inputs, diagnostics) = InputLoader(schemas: ["apinizer": ApinizerProvider.credentialSchema])
            .load(paths: [dir.url("m")], environmentsDirectory: dir.url("environments"))
        return (inputs?.environments.first, diagnostics, file)
    }

    @Test func basicApiKeyAndJSONTokenCallsAreRead() throws {
        let (basic, d1, _) = loadEnvironment("  basic: { username: svc, password: { fromEnv: PASS } }")
        #expect(!d1.hasErrors, "\(d1)")
        guard case .basic("svc", _)? = basic?.auth else { Issue.record("\(String(describing: basic?.auth))"); return }

        let (key, d2, _) = loadEnvironment("  apiKey: { fromEnv: LEADCONDUIT_API_KEY }")
        #expect(!d2.hasErrors, "\(d2)")
        guard case .apiKey(let ref)? = key?.auth, case .environment("LEADCONDUIT_API_KEY") = ref.source else {
            Issue.record("\(String(describing: key?.auth))")
            return
        }

        let (oauth, d3, _) = loadEnvironment("  oauth2: { clientId: cid, clientSecret: { fromEnv: CS }, tokenPath: /v1/authorization/token, body: json }")
        #expect(!d3.hasErrors, "\(d3)")
        guard case .oauth2(_, _, "/v1/authorization/token", .json)? = oauth?.auth else { Issue.record("\(String(describing: oauth?.auth))"); return }
    }

    /// A token path is a path on the environment's server: the client secret goes nowhere else.
    @Test func aTokenPathCannotLeaveTheServerAndOneAuthKindIsAllowed() {
        for bad in ["https://evil.example/token", "//evil.example/token", "token", "/a/../b", "/t?x=1", "/t@evil"] {
            let (_, diagnostics, file) = loadEnvironment("  oauth2: { clientId: cid, clientSecret: { fromEnv: CS }, tokenPath: \"\(bad)\" }")
            #expect(diagnostics.map(\.description).contains {
                $0.hasPrefix("\(file):3:") && $0.hasSuffix("error: auth.oauth2.tokenPath must be a path on the environment's server, like /v1/authorization/token")
            }, "\(bad): \(diagnostics)")
        }
        let (_, both, file) = loadEnvironment("  bearer: { fromEnv: T }\n  apiKey: { fromEnv: K }")
        #expect(both.map(\.description) == ["\(file):3:3: error: auth takes one of bearer, oauth2, basic or apiKey, found bearer and apiKey"])
        let (_, colon, colonFile) = loadEnvironment("  basic: { username: \"a:b\", password: { fromEnv: P } }")
        #expect(colon.map(\.description) == ["\(colonFile):3:22: error: auth.basic.username cannot hold ':' or control characters"])
    }

    func client() -> HTTPClient {
        HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2, connectTimeout: .seconds(2), requestTimeout: .seconds(5)))
    }

    @Test func anAPIKeyIsSentAsBasicWithTheFixedUser() async throws {
        let http = client()
        defer { http.shutdown() }
        let connection = Connection(baseURL: "http://127.0.0.1:1", credentials: .basic(username: Connection.Credentials.apiKeyUser, password: Secret("k3y-ab12cd34ef56")),
                                    retry: RetrySettings())
        let auth = Authenticator(connection: connection, http: http, policy: RetryPolicy(settings: RetrySettings()), defaultTokenPath: "/token")
        let (header, _) = try await auth.authorization(request: "GET /credentials")
        #expect(header == "Basic " + Data("API:k3y-ab12cd34ef56".utf8).base64EncodedString())
        #expect(!auth.canRenew)
        #expect(auth.authentications == 0)
        // The key is a secret of the run: whatever a server echoes of it is redacted.
        let echoed = connection.runSecrets.redactor.redact("echo k3y-ab12cd34ef56 and \(header)")
        #expect(!echoed.contains("k3y-ab12cd34ef56"), "\(echoed)")
        #expect(!echoed.contains(String(header.dropFirst("Basic ".count).prefix(16))), "\(echoed)")
    }

    @Test func aJSONTokenCallGoesToTheConfiguredPathOnceForConcurrentCallers() async throws {
        let server = try RawHTTPServer { request in
            guard request.hasPrefix("POST /v1/authorization/token ") else { return RawHTTPServer.answer(status: 404) }
            return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")],
                                        body: Data(#"{"access_token":"tok-123456","token_type":"Bearer","expires_in":3600}"#.utf8))
        }
        defer { server.stop() }
        let http = client()
        defer { http.shutdown() }
        let connection = Connection(baseURL: server.url,
                                    credentials: .clientCredentials(clientID: Secret("cid"), clientSecret: Secret("client-secret-9"),
                                                                    tokenPath: "/v1/authorization/token", body: .json),
                                    retry: RetrySettings())
        let auth = Authenticator(connection: connection, http: http, policy: RetryPolicy(settings: RetrySettings()), defaultTokenPath: "/oauth/token")
        let headers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await auth.authorization(request: "GET /x").header } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(headers) == ["Bearer tok-123456"])
        #expect(auth.authentications == 1)
        #expect(auth.canRenew)
        let request = try #require(server.received.first)
        #expect(request.lowercased().contains("content-type: application/json"))
        let body = try #require(request.components(separatedBy: "\r\n\r\n").last)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String]
        #expect(json == ["client_id": "cid", "client_secret": "client-secret-9", "grant_type": "client_credentials"])
        // The fetched token is a secret of the run from now on.
        #expect(!connection.runSecrets.redactor.redact("tok-123456").contains("tok-123456"))
    }

    /// A key the server refuses is presented once per session: the calls after the first 401
    /// fail the same way without reaching the server (no lockout by a thousand writes).
    @Test func aRefusedKeyIsSentOncePerSession() async throws {
        let server = try RawHTTPServer { _ in
            RawHTTPServer.answer(status: 401, headers: [("Content-Type", "application/json")], body: Data(#"{"error":"authentication failed"}"#.utf8))
        }
        defer { server.stop() }
        let http = client()
        defer { http.shutdown() }
        let connection = Connection(baseURL: server.url, credentials: .basic(username: "API", password: Secret("rotated-key-0")), retry: RetrySettings())
        let caller = ProviderCaller(connection: connection, http: http, defaultTokenPath: "/token")
        for path in ["/credentials", "/credentials/a", "/credentials/b"] {
            #expect(try await caller.send(.get, path).status == 401)
        }
        #expect(server.received.count == 1)
        #expect(caller.statistics.reads == 1)
    }
}
