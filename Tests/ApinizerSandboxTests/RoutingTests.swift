import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Routing")
struct RoutingTests {
    typealias H = SandboxHarness

    @Test(arguments: [
        (HTTPMethod.get, "/apiops/projects/MyProject/credentials"),
        (.post, "/apiops/projects/MyProject/credentials"),
        (.patch, "/apiops/projects/MyProject/credentials/alice"),
        (.delete, "/apiops/projects/MyProject/credentials/alice"),
        (.get, "/apiops/projects/MyProject/credentials/alice/access"),
        (.get, "/apiops/projects"),
    ])
    func documentedPathWithoutTrailingSlashIsNotFound(method: HTTPMethod, path: String) async throws {
        try await H.with { h async throws in
            try await h.create("alice")
            let response = try await h.send(method, path, json: method == .get ? nil : #"{"password":"x"}"#)
            #expect(response.status == 404)
            #expect(response.errorCode == "not_found")
            #expect(response.errorDescription?.contains("end with a slash") == true)
            #expect(await h.stored("alice")?.password == "secret-1")
        }
    }

    @Test(arguments: ["/apiops/", "/apiops/nothing/", "/apiops/projects/MyProject/", "/apiops/projects/MyProject/credentials/alice/other/",
                      "/apiops/projects//credentials/", "/elsewhere"])
    func unknownRouteIsNotFound(path: String) async throws {
        try await H.with { h async throws in
            let response = try await h.send(.get, path)
            #expect(response.status == 404)
            #expect(response.errorCode == "not_found")
            #expect(response.headers["Content-Type"] == "application/json")
        }
    }

    @Test func knownPathWithWrongMethodIsMethodNotAllowed() async throws {
        try await H.with { h async throws in
            let response = try await h.send(.get, H.credentialsPath("MyProject", "alice"))
            #expect(response.status == 405)
            #expect(response.errorCode == "method_not_allowed")
            #expect(response.headers["Allow"] == "PATCH, DELETE")
            let onList = try await h.send(.delete, H.credentialsPath("MyProject"))
            #expect(onList.status == 405)
            #expect(onList.headers["Allow"] == "GET, POST, PUT")
        }
    }

    @Test func projectsAreListedWithTheAdminProject() async throws {
        try await H.with { h async throws in
            let response = try await h.send(.get, "/apiops/projects/")
            #expect(response.status == 200)
            #expect(response.json["status"]?.stringValue == "SUCCESS")
            let names = response.json["resultList"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
            #expect(names == ["MyProject", "payments", "admin"])
            #expect(response.json["resultCount"]?.intValue == 3)
            #expect(response.json["resultList"]?[0]?["description"]?.stringValue != nil)
        }
    }

    @Test func environmentsListTheSeededGatewaysWithOrWithoutTrailingSlash() async throws {
        try await H.with { h async throws in
            for path in ["/apiops/environments/MyProject", "/apiops/environments/MyProject/"] {
                let response = try await h.send(.get, path)
                #expect(response.status == 200)
                #expect(response.json["success"]?.boolValue == true)
                #expect(response.json["resultCount"]?.intValue == 2)
                let first = try #require(response.json["resultList"]?[0])
                #expect(first["name"]?.stringValue == "production")
                for key in ["description", "type", "status", "accessUrl"] { #expect(first[key]?.stringValue != nil, "\(key)") }
            }
        }
    }

    @Test func malformedPercentEncodingIsABadRequest() async throws {
        try await H.with { h async throws in
            let response = try await h.send(.get, "/apiops/projects/My%ZZProject/credentials/")
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
        }
    }

    @Test func queryStringsAreIgnored() async throws {
        try await H.with { h async throws in
            let response = try await h.send(.get, "/apiops/projects/MyProject/credentials/?page=1")
            #expect(response.status == 200)
        }
    }
}
