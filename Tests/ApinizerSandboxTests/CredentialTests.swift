import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Credential calls")
struct CredentialTests {
    typealias H = SandboxHarness

    @Test func createdCredentialIsListedWithNullPasswordAndNormalisedExpiry() async throws {
        try await H.with { h async throws in
            let created = try await h.create("alice", extra: """
            , "description": "CI user", "roleNameList": ["API_USER", "DEVELOPER"], "enabled": false,
              "ipList": ["10.0.0.1", "192.168.0.0/16", "2001:db8::/32"], "expireDate": "2024-12-31T23:59:59Z"
            """)
            #expect(created.json["success"]?.boolValue == true)
            let deployment = created.json["deploymentResult"]
            #expect(deployment?["success"]?.boolValue == true)
            #expect(deployment?["message"]?.stringValue == "Deployment completed successfully")
            let entries = deployment?["environmentResults"]?.arrayValue ?? []
            #expect(entries.map { $0["environmentName"]?.stringValue } == ["production", "staging"])
            #expect(entries.allSatisfy { $0["success"]?.boolValue == true && $0["message"]?.stringValue == "Deployed successfully" })

            let list = try await h.send(.get, H.credentialsPath("MyProject"))
            #expect(list.status == 200)
            #expect(list.headers["Content-Type"] == "application/json")
            #expect(list.json["success"]?.boolValue == true)
            let item = try #require(list.json["resultList"]?[0])
            #expect(list.json["resultList"]?.arrayValue?.count == 1)
            #expect(item["username"]?.stringValue == "alice")
            #expect(item["password"]?.isNull == true)
            #expect(item["email"]?.stringValue == "dev@example.com")
            #expect(item["fullName"]?.stringValue == "Dev One")
            #expect(item["description"]?.stringValue == "CI user")
            #expect(item["roleNameList"]?.arrayValue?.compactMap(\.stringValue) == ["API_USER", "DEVELOPER"])
            #expect(item["enabled"]?.boolValue == false)
            #expect(item["ipList"]?.arrayValue?.compactMap(\.stringValue) == ["10.0.0.1", "192.168.0.0/16", "2001:db8::/32"])
            #expect(item["expireDate"]?.stringValue == "2024-12-31T23:59:59.000Z")
            #expect(await h.stored("alice")?.password == "secret-1")
        }
    }

    @Test func createDefaultsEnabledTrueAndEmptyListsAndNullExpiry() async throws {
        try await H.with { h async throws in
            try await h.create("bob")
            let item = try await h.send(.get, H.credentialsPath("MyProject")).json["resultList"]?[0]
            #expect(item?["enabled"]?.boolValue == true)
            #expect(item?["roleNameList"]?.arrayValue?.isEmpty == true)
            #expect(item?["ipList"]?.arrayValue?.isEmpty == true)
            #expect(item?["expireDate"]?.isNull == true)
            #expect(item?["description"]?.isNull == true)
        }
    }

    @Test func createWithExistingUsernameIsRefusedInEveryProject() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            for project in ["MyProject", "payments", "admin"] {
                let again = try await h.send(.post, H.credentialsPath(project),
                                             json: #"{"username":"alice","password":"p","email":"a@b.io","fullName":"A"}"#)
                #expect(again.status == 400)
                #expect(again.errorCode == "bad_request")
                #expect(again.errorDescription == "There is already a credential has this name!")
            }
        }
    }

    @Test(arguments: [
        (#"{"password":"p","email":"a@b.io","fullName":"A"}"#, "Credential username can not be empty!"),
        (#"{"username":"","password":"p","email":"a@b.io","fullName":"A"}"#, "Credential username can not be empty!"),
        (#"{"username":"u","password":"","email":"a@b.io","fullName":"A"}"#, "Credential password can not be empty!"),
        (#"{"username":"u","password":null,"email":"a@b.io","fullName":"A"}"#, "Credential password can not be empty!"),
        (#"{"username":"u","password":"p","email":"a@b.io","fullName":"  "}"#, "Credential full name can not be empty!"),
        (#"{"username":"u","password":"p","fullName":"A"}"#, "Credential email can not be empty!"),
    ])
    func createWithEmptyRequiredFieldIsRefusedWithTheDocumentedMessage(body: String, message: String) async throws {
        try await H.with { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: body)
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
            #expect(response.errorDescription == message)
            #expect(await h.server.snapshot().credentials.isEmpty)
        }
    }

    @Test func createWithMalformedEmailBadIPsAndBadExpiryFailsValidationListingEveryField() async throws {
        try await H.with { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: """
            {"username":"u","password":"p","email":"not-an-email","fullName":"A",
             "ipList":["10.0.0.0/33","300.1.1.1","10.1.2.3"],"expireDate":"2024-13-01T00:00:00Z"}
            """)
            #expect(response.status == 400)
            #expect(response.errorCode == "validation_failed")
            let fields = response.json["validation_errors"]?.arrayValue?.compactMap { $0["field"]?.stringValue }
            #expect(fields == ["email", "ipList", "ipList", "expireDate"])
            #expect(response.json["validation_errors"]?[0]?["message"]?.stringValue == "must be a well-formed email address")
            #expect(await h.server.snapshot().credentials.isEmpty)
        }
    }

    @Test(arguments: ["tomorrow", "2024-12-31", "2024-12-31T23:59:59", "2023-02-29T00:00:00Z", "2024-12-31 23:59:59Z"])
    func createWithBadExpireDateFailsValidation(date: String) async throws {
        try await H.with { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"),
                                            json: #"{"username":"u","password":"p","email":"a@b.io","fullName":"A","expireDate":"\#(date)"}"#)
            #expect(response.status == 400)
            #expect(response.errorCode == "validation_failed")
            #expect(response.json["validation_errors"]?[0]?["field"]?.stringValue == "expireDate")
        }
    }

    @Test func createWithUnknownRoleIsRefused() async throws {
        try await H.with { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: """
            {"username":"u","password":"p","email":"a@b.io","fullName":"A","roleNameList":["API_USER","SUPERUSER"]}
            """)
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
            #expect(response.errorDescription == "Credential role (SUPERUSER) was not found!")
        }
    }

    @Test(arguments: ["{not json", "[]", #"{"username":"u","password":"p","email":"a@b.io","fullName":"A","enabled":"yes"}"#,
                      #"{"username":"u","password":"p","email":"a@b.io","fullName":"A","roleNameList":"API_USER"}"#, ""])
    func malformedBodyIsABadRequest(body: String) async throws {
        try await H.with { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: body)
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
            #expect(await h.server.snapshot().credentials.isEmpty)
        }
    }

    @Test func callsOnUnknownProjectAreNotFound() async throws {
        try await H.with { h async throws in
            for (method, path) in [(HTTPMethod.get, H.credentialsPath("Nope")), (.post, H.credentialsPath("Nope")),
                                   (.put, H.credentialsPath("Nope")), (.patch, H.credentialsPath("Nope", "u")),
                                   (.delete, H.credentialsPath("Nope", "u")), (.get, H.credentialsPath("Nope", "u", access: true)),
                                   (.get, "/apiops/environments/Nope")] {
                // (A GET goes without a body: libcurl would turn it into a POST.)
                let response = try await h.send(method, path, json: method == .get ? nil : "{}")
                #expect(response.status == 404, "\(method) \(path)")
                #expect(response.errorCode == "not_found")
                #expect(response.errorDescription == "Project(Nope) was not found or user does not have privilege to access it!")
            }
        }
    }

    @Test func updateReplacesEveryFieldIncludingThePassword() async throws {
        try await H.with { h async throws in
            try await h.create("alice", extra: #", "description": "old", "roleNameList": ["API_USER"], "ipList": ["10.0.0.1"]"#)
            let response = try await h.send(.put, H.credentialsPath("MyProject"), json: """
            {"username":"alice","password":"new-pass","email":"alice@example.org","fullName":"Alice A",
             "description":null,"roleNameList":["ADMIN"],"enabled":false,"ipList":[],"expireDate":"2030-01-01T01:00:00+01:00"}
            """)
            #expect(response.status == 200)
            #expect(response.json["deploymentResult"]?["message"]?.stringValue == "Deployment completed successfully")
            let stored = try #require(await h.stored("alice"))
            #expect(stored.password == "new-pass")
            #expect(stored.email == "alice@example.org")
            #expect(stored.fullName == "Alice A")
            #expect(stored.description == nil)
            #expect(stored.roleNameList == ["ADMIN"])
            #expect(stored.enabled == false)
            #expect(stored.ipList == [])
            #expect(stored.expireDate == "2030-01-01T00:00:00.000Z")
        }
    }

    @Test func updateWithoutPasswordIsRefused() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let response = try await h.send(.put, H.credentialsPath("MyProject"), json: """
            {"username":"alice","email":"alice@example.org","fullName":"Alice","roleNameList":[],"enabled":true,"ipList":[]}
            """)
            #expect(response.status == 400)
            #expect(response.errorDescription == "Credential password can not be empty!")
            #expect(await h.stored("alice")?.email == "dev@example.com")
        }
    }

    @Test func updateWithMissingFieldsFailsValidation() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let response = try await h.send(.put, H.credentialsPath("MyProject"),
                                            json: #"{"username":"alice","password":"p2","email":"alice@example.org","fullName":"Alice"}"#)
            #expect(response.status == 400)
            #expect(response.errorCode == "validation_failed")
            let fields = response.json["validation_errors"]?.arrayValue?.compactMap { $0["field"]?.stringValue }
            #expect(fields == ["roleNameList", "enabled", "ipList"])
            #expect(await h.stored("alice")?.password == "secret-1")
        }
    }

    @Test func updatePatchDeleteAndAccessOfUnknownUsernameAreNotFound() async throws {
        try await H.with { h async throws in
            let update = try await h.send(.put, H.credentialsPath("MyProject"), json: """
            {"username":"ghost","password":"p","email":"g@example.com","fullName":"G","roleNameList":[],"enabled":true,"ipList":[]}
            """)
            let patch = try await h.send(.patch, H.credentialsPath("MyProject", "ghost"), json: #"{"password":"x"}"#)
            let delete = try await h.send(.delete, H.credentialsPath("MyProject", "ghost"))
            let list = try await h.send(.get, H.credentialsPath("MyProject", "ghost", access: true))
            let grant = try await h.send(.put, H.credentialsPath("MyProject", "ghost", access: true),
                                         json: #"{"credentialAccessList":[{"name":"MyAPI","type":"API_PROXY"}]}"#)
            let revoke = try await h.send(.delete, H.credentialsPath("MyProject", "ghost", access: true),
                                          json: #"{"credentialAccessList":[{"name":"MyAPI","type":"API_PROXY"}]}"#)
            for response in [update, patch, delete, list, grant, revoke] {
                #expect(response.status == 400)
                #expect(response.errorCode == "bad_request")
                #expect(response.errorDescription == "Credential (username: ghost) was not found!")
            }
        }
    }

    @Test func patchChangesOnlyThePassword() async throws {
        try await H.with { h async throws in
            try await h.create("alice", extra: #", "roleNameList": ["API_USER"]"#)
            let response = try await h.send(.patch, H.credentialsPath("MyProject", "alice"), json: #"{"password":"rotated"}"#)
            #expect(response.status == 200)
            #expect(response.json["deploymentResult"]?["success"]?.boolValue == true)
            let stored = try #require(await h.stored("alice"))
            #expect(stored.password == "rotated")
            #expect(stored.roleNameList == ["API_USER"])
            #expect(stored.email == "dev@example.com")
        }
    }

    @Test func patchWithEmptyPasswordIsRefused() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            for body in [#"{"password":""}"#, "{}"] {
                let response = try await h.send(.patch, H.credentialsPath("MyProject", "alice"), json: body)
                #expect(response.status == 400)
                #expect(response.errorDescription == "Credential password can not be empty!")
            }
            #expect(await h.stored("alice")?.password == "secret-1")
        }
    }

    @Test func deleteRemovesTheCredentialAndItsGrantsWithUndeployWording() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let grant = try await h.send(.put, H.credentialsPath("MyProject", "alice", access: true),
                                         json: #"{"credentialAccessList":[{"name":"MyAPI","type":"API_PROXY"}]}"#)
            #expect(grant.status == 200)
            let delete = try await h.send(.delete, H.credentialsPath("MyProject", "alice"))
            #expect(delete.status == 200)
            #expect(delete.json["deploymentResult"]?["message"]?.stringValue == "Undeployment completed successfully")
            #expect(delete.json["deploymentResult"]?["environmentResults"]?[0]?["message"]?.stringValue == "Undeployed successfully")
            #expect(try await h.send(.get, H.credentialsPath("MyProject")).json["resultList"]?.arrayValue?.isEmpty == true)

            try await h.create("alice")
            let access = try await h.send(.get, H.credentialsPath("MyProject", "alice", access: true))
            #expect(access.json["resultList"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test func credentialOfAnotherProjectIsNotFoundThroughItButVisibleThroughAdmin() async throws {
        try await H.with { h async throws in
            try await h.create("alice", in: "MyProject")
            #expect(try await h.send(.get, H.credentialsPath("payments")).json["resultList"]?.arrayValue?.isEmpty == true)
            let patch = try await h.send(.patch, H.credentialsPath("payments", "alice"), json: #"{"password":"x"}"#)
            #expect(patch.status == 400)
            #expect(patch.errorDescription == "Credential (username: alice) was not found!")
            let update = try await h.send(.put, H.credentialsPath("payments"), json: """
            {"username":"alice","password":"p","email":"a@b.io","fullName":"A","roleNameList":[],"enabled":true,"ipList":[]}
            """)
            #expect(update.errorDescription == "Credential (username: alice) was not found!")
            let throughAdmin = try await h.send(.patch, H.credentialsPath("admin", "alice"), json: #"{"password":"via-admin"}"#)
            #expect(throughAdmin.status == 200)
            #expect(await h.stored("alice")?.password == "via-admin")
            #expect(await h.stored("alice")?.project == "MyProject")
        }
    }

    @Test func adminProjectListsEveryCredentialOfEveryProject() async throws {
        try await H.with { h async throws in
            try await h.create("a-my", in: "MyProject")
            try await h.create("b-pay", in: "payments")
            try await h.create("c-global", in: "admin")
            let admin = try await h.send(.get, H.credentialsPath("admin"))
            #expect(admin.json["resultList"]?.arrayValue?.compactMap { $0["username"]?.stringValue } == ["a-my", "b-pay", "c-global"])
            let payments = try await h.send(.get, H.credentialsPath("payments"))
            #expect(payments.json["resultList"]?.arrayValue?.compactMap { $0["username"]?.stringValue } == ["b-pay"])
        }
    }

    @Test(arguments: ["ops team/ci@example.com", "Grüße 100%", "a+b?c#d", "日本語", "trailing/"])
    func usernamesWithSpacesSlashesAndUnicodeWorkThroughEncodedPaths(username: String) async throws {
        try await H.with { h async throws in
            try await h.create(username, in: "MyProject")
            let patch = try await h.send(.patch, H.credentialsPath("MyProject", username), json: #"{"password":"rotated"}"#)
            #expect(patch.status == 200, "\(patch.text)")
            #expect(await h.stored(username)?.password == "rotated")
            let grant = try await h.send(.put, H.credentialsPath("MyProject", username, access: true),
                                         json: #"{"credentialAccessList":[{"name":"MyAPI","type":"API_PROXY"}]}"#)
            #expect(grant.status == 200)
            let access = try await h.send(.get, H.credentialsPath("MyProject", username, access: true))
            #expect(access.json["resultList"]?[0]?["name"]?.stringValue == "MyAPI")
            let delete = try await h.send(.delete, H.credentialsPath("MyProject", username))
            #expect(delete.status == 200)
            #expect(await h.stored(username) == nil)
        }
    }

    @Test func projectNamesWithSpacesAreDecoded() async throws {
        var seed = H.testSeed
        seed.projects.append("Team Space/ü")
        try await H.with(H.configuration(seed: seed)) { h async throws in
            try await h.create("alice", in: "Team Space/ü")
            let list = try await h.send(.get, H.credentialsPath("Team Space/ü"))
            #expect(list.json["resultList"]?[0]?["username"]?.stringValue == "alice")
        }
    }
}
