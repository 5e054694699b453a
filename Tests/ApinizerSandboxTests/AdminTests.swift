import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Test-only calls")
struct AdminTests {
    typealias H = SandboxHarness

    @Test func dumpShowsEveryCredentialWithPasswordAndGrants() async throws {
        try await H.with { h async throws in
            try await h.create("alice", in: "payments", extra: #", "expireDate": "2025-01-01T00:00:00Z""#)
            _ = try await h.send(.put, H.credentialsPath("payments", "alice", access: true),
                                 json: #"{"credentialAccessList":[{"name":"PaymentAPI","type":"API_PROXY"}]}"#)
            let dump = try await h.send(.get, "/__sandbox/dump")
            #expect(dump.status == 200)
            let seed = try JSONDecoder().decode(SandboxSeed.self, from: dump.body)
            #expect(seed.credentials == [SandboxCredential(project: "payments", username: "alice", password: "secret-1",
                                                           email: "dev@example.com", fullName: "Dev One",
                                                           expireDate: "2025-01-01T00:00:00.000Z",
                                                           access: [SandboxAccess(name: "PaymentAPI", type: "API_PROXY")])])
            #expect(seed.gateways == ["production", "staging"])
        }
    }

    @Test func statsCountAPIRequestsByRouteAndMethodButNotTestOnlyCalls() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            _ = try await h.send(.get, H.credentialsPath("MyProject"))
            _ = try await h.send(.get, H.credentialsPath("payments"))
            _ = try await h.send(.patch, H.credentialsPath("MyProject", "alice"), json: #"{"password":"x"}"#)
            _ = try await h.send(.get, "/apiops/nothing/")
            _ = try await h.send(.get, "/__sandbox/dump")
            let stats = try await h.send(.get, "/__sandbox/stats")
            #expect(stats.status == 200)
            #expect(stats.json["total"]?.intValue == 5)
            #expect(stats.json["writes"]?.intValue == 2)
            #expect(stats.json["byRoute"]?["GET /apiops/projects/{project}/credentials/"]?.intValue == 2)
            #expect(stats.json["byRoute"]?["POST /apiops/projects/{project}/credentials/"]?.intValue == 1)
            #expect(stats.json["byRoute"]?["PATCH /apiops/projects/{project}/credentials/{username}/"]?.intValue == 1)
            #expect(stats.json["byRoute"]?["GET (no route)"]?.intValue == 1)
            #expect(stats.json["byMethod"]?["GET"]?.intValue == 3)
            #expect(stats.json["byMethod"]?["POST"]?.intValue == 1)

            #expect(try await h.send(.delete, "/__sandbox/stats").status == 200)
            let cleared = try await h.send(.get, "/__sandbox/stats")
            #expect(cleared.json["total"]?.intValue == 0)
            #expect(cleared.json["byRoute"]?.objectValue?.members.isEmpty == true)
        }
    }

    @Test func seedInsertsAndReplacesCredentialsOutOfBand() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let response = try await h.send(.post, "/__sandbox/seed", json: """
            {"roles": ["AUDITOR"], "apiProxies": ["NewAPI"], "projects": ["ops"],
             "credentials": [
               {"project": "MyProject", "username": "alice", "email": "changed@example.com", "fullName": "Dev One",
                "roleNameList": ["AUDITOR"], "access": [{"name": "NewAPI", "type": "API_PROXY"}]},
               {"project": "ops", "username": "drifted", "password": "pw", "email": "d@example.com", "fullName": "D",
                "expireDate": "2030-01-01T00:00:00Z"}
             ]}
            """)
            #expect(response.status == 200, "\(response.text)")
            let list = try await h.send(.get, H.credentialsPath("MyProject"))
            #expect(list.json["resultList"]?[0]?["email"]?.stringValue == "changed@example.com")
            #expect(list.json["resultList"]?[0]?["roleNameList"]?[0]?.stringValue == "AUDITOR")
            let access = try await h.send(.get, H.credentialsPath("MyProject", "alice", access: true))
            #expect(access.json["resultList"]?[0]?["name"]?.stringValue == "NewAPI")
            let ops = try await h.send(.get, H.credentialsPath("ops"))
            #expect(ops.json["resultList"]?[0]?["expireDate"]?.stringValue == "2030-01-01T00:00:00.000Z")
            // Lists left out of the seed are not emptied.
            let snapshot = await h.server.snapshot()
            #expect(snapshot.roles == ["API_USER", "DEVELOPER", "ADMIN", "AUDITOR"])
            #expect(snapshot.gateways == ["production", "staging"])
        }
    }

    @Test(arguments: [
        #"{"credentials": [{"project": "nowhere", "username": "x", "email": "x@example.com", "fullName": "X"}]}"#,
        #"{"credentials": [{"project": "MyProject", "username": "x", "email": "x@example.com", "fullName": "X", "roleNameList": ["NOPE"]}]}"#,
        #"{"credentials": [{"project": "MyProject", "username": "x", "email": "x@example.com", "fullNam": "X"}]}"#,
        #"{"rolez": ["X"]}"#,
        "not json",
    ])
    func invalidSeedIsRefusedAndChangesNothing(body: String) async throws {
        try await H.with { h async throws in
            let before = await h.server.snapshot()
            let response = try await h.send(.post, "/__sandbox/seed", json: body)
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
            #expect(await h.server.snapshot() == before)
        }
    }

    @Test func tokensAddedBySeedAreAccepted() async throws {
        try await H.with { h async throws in
            #expect(try await h.send(.post, "/__sandbox/seed", json: #"{"tokens": ["late-token"]}"#).status == 200)
            #expect(try await h.send(.get, "/apiops/projects/", token: "late-token").status == 200)
        }
    }

    @Test func resetReturnsToTheConfiguredSeedAndClearsStats() async throws {
        var seed = H.testSeed
        seed.credentials = [SandboxCredential(project: "payments", username: "seeded", email: "s@example.com", fullName: "S")]
        try await H.with(H.configuration(seed: seed)) { h async throws in
            try await h.create("alice")
            _ = try await h.send(.delete, H.credentialsPath("payments", "seeded"))
            _ = try await h.send(.post, "/__sandbox/seed", json: #"{"roles": ["EXTRA"]}"#)
            let reset = try await h.send(.post, "/__sandbox/reset")
            #expect(reset.status == 200)
            let snapshot = await h.server.snapshot()
            #expect(snapshot.credentials.map(\.username) == ["seeded"])
            #expect(!snapshot.roles.contains("EXTRA"))
            #expect(try await h.send(.get, "/__sandbox/stats").json["total"]?.intValue == 0)
        }
    }

    @Test func unknownTestOnlyCallIsNotFoundAndWrongMethodIsNotAllowed() async throws {
        try await H.with { h async throws in
            #expect(try await h.send(.get, "/__sandbox/nothing").status == 404)
            let wrong = try await h.send(.post, "/__sandbox/dump")
            #expect(wrong.status == 405)
            #expect(wrong.headers["Allow"] == "GET")
            #expect(try await h.send(.get, "/__sandbox/dump/").status == 200)
        }
    }
}
