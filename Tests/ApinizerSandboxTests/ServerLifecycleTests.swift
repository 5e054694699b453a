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

    /// After `stop()` nothing listens on the port any more: a connection is refused. The sandbox
    /// listens on a loopback address no other test uses, so no parallel test can take the port
    /// in between (on 127.0.0.1 another test's server may get it at once).
    @Test func stoppedSandboxRefusesConnections() async throws {
        var configuration = H.configuration()
        configuration.host = "127.77.1.1"
        let server = try await SandboxServer.start(configuration)
        let port = server.port
        await server.stop()
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, connectTimeout: .seconds(2)))
        defer { client.shutdown() }
        do throws(HTTPClientError) {
            _ = try await client.send(HTTPRequest(method: .get, url: "http://127.77.1.1:\(port)/apiops/projects/"))
            Issue.record("a stopped sandbox answered")
        } catch {
            #expect(error.kind == .connectFailed, "\(error)")
        }
    }
}
