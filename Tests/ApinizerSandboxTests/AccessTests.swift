import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Access grants")
struct AccessTests {
    typealias H = SandboxHarness

    private func grant(_ h: H, _ username: String, _ entries: String, method: HTTPMethod = .put) async throws -> HTTPResponse {
        try await h.send(method, H.credentialsPath("MyProject", username, access: true), json: #"{"credentialAccessList":[\#(entries)]}"#)
    }

    @Test func grantedProxiesAndGroupsAreListedInGrantOrder() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let first = try await grant(h, "alice", #"{"name":"PaymentAPI","type":"API_PROXY"}"#)
            #expect(first.status == 200)
            #expect(first.json["deploymentResult"]?["message"]?.stringValue == "Deployment completed successfully")
            let second = try await grant(h, "alice", #"{"name":"MyAPIGroup","type":"API_PROXY_GROUP"},{"name":"MyAPI","type":"API_PROXY"}"#)
            #expect(second.status == 200)
            let list = try await h.send(.get, H.credentialsPath("MyProject", "alice", access: true))
            #expect(list.status == 200)
            #expect(list.json["success"]?.boolValue == true)
            let entries = list.json["resultList"]?.arrayValue ?? []
            #expect(entries.map { "\($0["name"]?.stringValue ?? "")/\($0["type"]?.stringValue ?? "")" }
                == ["PaymentAPI/API_PROXY", "MyAPIGroup/API_PROXY_GROUP", "MyAPI/API_PROXY"])
        }
    }

    @Test func grantingAnExistingAccessIsRefusedWithProxyOrGroupWording() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            _ = try await grant(h, "alice", #"{"name":"MyAPI","type":"API_PROXY"},{"name":"MyAPIGroup","type":"API_PROXY_GROUP"}"#)
            let proxy = try await grant(h, "alice", #"{"name":"PaymentAPI","type":"API_PROXY"},{"name":"MyAPI","type":"API_PROXY"}"#)
            #expect(proxy.status == 400)
            #expect(proxy.errorCode == "bad_request")
            #expect(proxy.errorDescription == "Credential (username:alice) has already access to API Proxy (name:MyAPI)!")
            let group = try await grant(h, "alice", #"{"name":"MyAPIGroup","type":"API_PROXY_GROUP"}"#)
            #expect(group.errorDescription == "Credential (username:alice) has already access to API Proxy Group (name:MyAPIGroup)!")
            // A refused request grants nothing, not even its valid entries.
            #expect(await h.stored("alice")?.access.map(\.name) == ["MyAPI", "MyAPIGroup"])
        }
    }

    @Test func grantingAnUnknownProxyOrGroupIsRefused() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let proxy = try await grant(h, "alice", #"{"name":"NoSuchAPI","type":"API_PROXY"}"#)
            #expect(proxy.status == 400)
            #expect(proxy.errorDescription == "API Proxy (name:NoSuchAPI) is not found or user does not have privilege to access it!")
            // A proxy name is not a group name.
            let group = try await grant(h, "alice", #"{"name":"MyAPI","type":"API_PROXY_GROUP"}"#)
            #expect(group.errorDescription == "API Proxy Group (name:MyAPI) is not found or user does not have privilege to access it!")
            #expect(await h.stored("alice")?.access == [])
        }
    }

    @Test(arguments: [#"{"credentialAccessList":[{"name":"MyAPI","type":"PROXY"}]}"#, #"{"credentialAccessList":[{"name":"MyAPI"}]}"#,
                      #"{"credentialAccessList":[{"name":"","type":"API_PROXY"}]}"#, #"{"credentialAccessList":"MyAPI"}"#, #"{}"#, "{oops"])
    func malformedAccessBodyIsABadRequest(body: String) async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let response = try await h.send(.put, H.credentialsPath("MyProject", "alice", access: true), json: body)
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
        }
    }

    @Test func revokeRemovesGrantsAndPassesOverAbsentOnesSilently() async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            _ = try await grant(h, "alice", #"{"name":"MyAPI","type":"API_PROXY"},{"name":"PaymentAPI","type":"API_PROXY"}"#)
            let revoke = try await grant(h, "alice", #"{"name":"MyAPI","type":"API_PROXY"},{"name":"MyAPIGroup","type":"API_PROXY_GROUP"}"#,
                                         method: .delete)
            #expect(revoke.status == 200)
            #expect(revoke.json["success"]?.boolValue == true)
            #expect(revoke.json["deploymentResult"]?["message"]?.stringValue == "Undeployment completed successfully")
            #expect(revoke.json["deploymentResult"]?["environmentResults"]?[1]?["message"]?.stringValue == "Undeployed successfully")
            #expect(await h.stored("alice")?.access.map(\.name) == ["PaymentAPI"])
            let again = try await grant(h, "alice", #"{"name":"MyAPI","type":"API_PROXY"}"#, method: .delete)
            #expect(again.status == 200)
        }
    }
}
