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

    /// After `stop()` the listening port is released: binding it again succeeds. The sandbox
    /// listens on a loopback address no other test uses, so no parallel test can take the port
    /// in between (asking for a refused connection on 127.0.0.1 would be racy).
    @Test func stoppedSandboxReleasesItsPort() async throws {
        var configuration = H.configuration()
        configuration.host = "127.77.1.1"
        let server = try await SandboxServer.start(configuration)
        let port = server.port
        await server.stop()
        // NIO closes the listening channel on its event loop; under load that can trail stop()
        // by a moment, so allow up to two seconds.
        var bound: Int32 = -1
        var fd: Int32 = -1
        for _ in 0..<100 {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.77.1.1")
            addr.sin_port = UInt16(port).bigEndian
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { break }
            close(fd)
            try await Task.sleep(for: .milliseconds(20))
        }
        defer { close(fd) }
        #expect(bound == 0 && listen(fd, 1) == 0, "port \(port) is still held after stop()")
    }
}
