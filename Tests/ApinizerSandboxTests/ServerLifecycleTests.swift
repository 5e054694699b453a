import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Server lifecycle")
struct ServerLifecycleTests {
    typealias H = SandboxHarness

    @Test func manySandboxesRunSideBySideOnTheirOwnPortsAndStopTwiceHarmlessly() async throws {
        var servers: [SandboxServer] = []
        for _ in 0..<5 { servers.append(try await SandboxServer.start(H.configuration())) }
        #expect(Set(servers.map(\.port)).count == 5)
        #expect(servers.allSatisfy { $0.port > 0 && $0.baseURL == "http://127.0.0.1:\($0.port)" })
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2))
        for server in servers {
            let response = try await client.send(HTTPRequest(method: .get, url: server.baseURL + "/apiops/projects/",
                                                             headers: HTTPHeaders([("Authorization", "Bearer \(H.token)")])))
            #expect(response.status == 200)
        }
        client.shutdown()
        for server in servers {
            await server.stop()
            await server.stop()
        }
    }

    @Test func startOnAPortInUseFails() async throws {
        let first = try await SandboxServer.start(H.configuration())
        var second = H.configuration()
        second.port = first.port
        await #expect {
            _ = try await SandboxServer.start(second)
        } throws: { error in
            (error as? SandboxError)?.kind == .startup
        }
        await first.stop()
    }

    @Test func stoppedSandboxRefusesConnections() async throws {
        let server = try await SandboxServer.start(H.configuration())
        await server.stop()
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1))
        defer { client.shutdown() }
        do throws(HTTPClientError) {
            _ = try await client.send(HTTPRequest(method: .get, url: server.baseURL + "/apiops/projects/"))
            Issue.record("expected a refused connection")
        } catch {
            #expect(error.kind == .connectFailed)
        }
    }
}
