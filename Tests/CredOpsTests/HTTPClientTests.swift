@testable import CredOps
import CredOpsTestSupport
import Foundation
import Testing

@Suite struct HTTPClientTests {
    func client(_ configure: (inout HTTPClientConfiguration) -> Void = { _ in }) -> HTTPClient {
        var configuration = HTTPClientConfiguration(concurrency: 2, connectTimeout: .seconds(2), requestTimeout: .seconds(5))
        configure(&configuration)
        return HTTPClient(configuration: configuration)
    }

    func failure(_ body: () async throws(HTTPClientError) -> HTTPResponse) async -> HTTPClientError? {
        do throws(HTTPClientError) {
            _ = try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test func plainHTTPToAnotherHostIsRefusedBeforeSending() async {
        let http = client()
        defer { http.shutdown() }
        let error = await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: "http://apinizer.example.com/apiops/projects/")) }
        #expect(error?.kind == .insecureURL)
        #expect(error?.message.contains("allowInsecureHTTP") == true)
    }

    @Test func plainHTTPToLoopbackIsAllowed() async throws {
        let server = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200, body: Data("ok".utf8)) }
        defer { server.stop() }
        let http = client()
        defer { http.shutdown() }
        let response = try await http.send(HTTPRequest(method: .get, url: server.url + "/x"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "ok")
    }

    @Test func redirectIsNotFollowedAndAuthorizationNeverReachesTheOtherHost() async throws {
        let elsewhere = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200) }
        defer { elsewhere.stop() }
        let target = elsewhere.url + "/steal"
        let redirecting = try RawHTTPServer { _ in RawHTTPServer.answer(status: 302, headers: [("Location", target)]) }
        defer { redirecting.stop() }
        let http = client()
        defer { http.shutdown() }
        let response = try await http.send(HTTPRequest(method: .get, url: redirecting.url + "/apiops/projects/",
                                                       headers: HTTPHeaders([("Authorization", "Bearer secret-token-1")])))
        #expect(response.status == 302)
        #expect(response.headers["Location"] == target)
        #expect(elsewhere.received.isEmpty)
    }

    @Test func answerLargerThanTheCapIsRefused() async throws {
        let server = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200, body: Data(repeating: 65, count: 2 * 1024 * 1024)) }
        defer { server.stop() }
        let http = client { $0.maxResponseBytes = 1024 * 1024 }
        defer { http.shutdown() }
        let error = await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: server.url)) }
        #expect(error?.kind == .responseTooLarge)
        #expect(error?.message == "the answer from 127.0.0.1:\(server.port) is larger than 1 MiB; refused")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/gzip")))
    func gzipBombIsCappedOnDecodedBytes() async throws {
        // 64 MiB of zeros compress to about 64 KiB: the cap must apply after decoding.
        let input = ChildProcess.pipe(), output = ChildProcess.pipe()
        let gz = try ChildProcess("/bin/gzip", ["-c"], stdin: input.read, stdout: output.write)
        close(input.read)
        close(output.write)
        detachedThread {
            let writer = FileHandle(fileDescriptor: input.write, closeOnDealloc: true)
            let chunk = Data(repeating: 0, count: 1024 * 1024)
            for _ in 0..<64 { writer.write(chunk) }
            try? writer.close()
        }
        let bomb = try await offCooperativePool {
            let data = FileHandle(fileDescriptor: output.read, closeOnDealloc: true).readDataToEndOfFile()
            _ = gz.waitBlocking(timeout: .seconds(30))
            return data
        }
        #expect(bomb.count < 200 * 1024)
        let server = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200, headers: [("Content-Encoding", "gzip")], body: bomb) }
        defer { server.stop() }
        let http = client()
        defer { http.shutdown() }
        let error = await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: server.url)) }
        #expect(error?.kind == .responseTooLarge)
    }

    @Test func silentServerIsAbandonedAtTheDeadline() async throws {
        let server = try RawHTTPServer { _ in nil }
        defer { server.stop() }
        let http = client { $0.requestTimeout = .seconds(1) }
        defer { http.shutdown() }
        let start = ContinuousClock.now
        let error = await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: server.url + "/apiops/projects/")) }
        let elapsed = ContinuousClock.now - start
        #expect(error?.kind == .timeout)
        #expect(error?.message == "no complete answer from 127.0.0.1:\(server.port) within 1 s")
        #expect(error?.isRetryable == true)
        // Abandoned, not waited on: a bound far above the 1 s deadline, so that a loaded
        // machine cannot blur it, and far below forever.
        #expect(elapsed < .seconds(60))
    }

    @Test func refusedConnectionNamesThePlace() async throws {
        let server = try RawHTTPServer { _ in nil }
        let port = server.port
        server.stop()
        let http = client()
        defer { http.shutdown() }
        let error = await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: "http://127.0.0.1:\(port)/x")) }
        #expect(error?.kind == .connectFailed)
        #expect(error?.message.hasPrefix("connect to 127.0.0.1:\(port) failed") == true)
    }

    @Test func errorsNeverHoldHeaderValuesOrBodies() async throws {
        let server = try RawHTTPServer { _ in nil }
        defer { server.stop() }
        let http = client { $0.requestTimeout = .milliseconds(300) }
        defer { http.shutdown() }
        let error = await failure { () async throws(HTTPClientError) in
            try await http.send(HTTPRequest(method: .put, url: server.url + "/apiops/projects/p/credentials/",
                                            headers: HTTPHeaders([("Authorization", "Bearer canary-token-77")]),
                                            body: Data(#"{"password":"canary-password-88"}"#.utf8)))
        }
        let text = try #require(error).description
        #expect(!text.contains("canary-token-77"))
        #expect(!text.contains("canary-password-88"))
        #expect(text.hasPrefix("PUT http://127.0.0.1:\(server.port)/apiops/projects/p/credentials/: "))
    }

    @Test func cancellationEndsAWaitingRequestPromptly() async throws {
        let server = try RawHTTPServer { _ in nil }
        defer { server.stop() }
        let http = client { $0.requestTimeout = .seconds(30) }
        defer { http.shutdown() }
        let task = Task { () async -> HTTPClientError? in
            await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: server.url)) }
        }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        task.cancel()
        let error = await task.value
        #expect(error?.kind == .cancelled)
        // Far below the 30 s the request would otherwise wait, far above a loaded machine's delays.
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    /// Plan and apply run an environment's tasks on its client's transfer thread.
    @Test(.timeLimit(.minutes(1))) func tasksOnTheClientsThreadSendAndAreNotStrandedByShutdown() async throws {
        let server = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200) }
        defer { server.stop() }
        let http = client()
        let statuses = try await withTaskExecutorPreference(http.taskExecutor) {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<50 { group.addTask { try await http.send(HTTPRequest(method: .get, url: server.url)).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        #expect(statuses == Array(repeating: 200, count: 50))
        http.shutdown()
        try await Task.sleep(for: .milliseconds(100))  // the thread has ended by now
        // A task that still prefers the stopped thread runs elsewhere instead of hanging, and a
        // request from it is refused.
        let refused = await withTaskExecutorPreference(http.taskExecutor) { () async -> HTTPClientError? in
            await Task.yield()
            return await failure { () async throws(HTTPClientError) in try await http.send(HTTPRequest(method: .get, url: server.url)) }
        }
        #expect(refused?.kind == .cancelled)
    }

    /// An environment's work runs on its client's thread, answers' parsing included: a deeply
    /// nested answer (as deep as Foundation's parser takes) must not run it out of stack.
    @Test func theClientsThreadHasTheStackToParseADeeplyNestedAnswer() async throws {
        let http = client()
        defer { http.shutdown() }
        let depth = 500
        let body = Data((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        let parsed = try await withTaskExecutorPreference(http.taskExecutor) {
            try JSONDecoder().decode(JSONDocument.self, from: body)
        }
        var level = 0
        var node = parsed
        while case .array(let items) = node, let first = items.first { node = first; level += 1 }
        #expect(level == depth - 1)
    }

    @Test func requestsBeyondThePoolSizeWaitTheirTurn() async throws {
        let server = try RawHTTPServer { _ in
            Thread.sleep(forTimeInterval: 0.2)  // on the server's own thread
            return RawHTTPServer.answer(status: 200)
        }
        defer { server.stop() }
        let http = client()  // two workers
        defer { http.shutdown() }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 { group.addTask { try await http.send(HTTPRequest(method: .get, url: server.url)).status } }
            for try await status in group { #expect(status == 200) }
        }
        // Four 200 ms answers through two workers take two rounds.
        #expect(ContinuousClock.now - start >= .milliseconds(380))
    }
}

/// TLS against `openssl s_server` with a certificate made for the test.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
struct TLSTests {
    final class TLSServer: @unchecked Sendable {
        let process: ChildProcess
        let port: Int
        let dir = TemporaryDirectory()
        var caFile: String { dir.url("cert.pem") }

        init(commonName: String) throws {
            let req = try ChildProcess("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.url("key.pem"),
                                                            "-out", dir.url("cert.pem"), "-days", "2", "-subj", "/CN=\(commonName)",
                                                            "-addext", "subjectAltName=DNS:\(commonName)"])
            _ = req.waitBlocking(timeout: .seconds(30))
            let probe = try RawHTTPServer { _ in nil }
            port = probe.port
            probe.stop()
            process = try ChildProcess("/usr/bin/openssl", ["s_server", "-accept", "\(port)", "-cert", dir.url("cert.pem"),
                                                            "-key", dir.url("key.pem"), "-www", "-quiet"])
            // Wait until it listens.
            for _ in 0..<200 {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var addr = sockaddr_in()
                addr.sin_family = sa_family_t(AF_INET)
                addr.sin_addr.s_addr = inet_addr("127.0.0.1")
                addr.sin_port = UInt16(port).bigEndian
                let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
                close(fd)
                if ok { break }
                usleep(25_000)
            }
        }

        func stop() {
            process.signal(SIGKILL)
            _ = process.waitBlocking(timeout: .seconds(5))
        }
    }

    static func start(_ name: String) async throws -> TLSServer {
        try await offCooperativePool { try TLSServer(commonName: name) }
    }

    @Test func selfSignedCertificateIsRefusedAndNotRetryable() async throws {
        let server = try await Self.start("localhost")
        defer { server.stop() }
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, requestTimeout: .seconds(5)))
        defer { http.shutdown() }
        do {
            _ = try await http.send(HTTPRequest(method: .get, url: "https://localhost:\(server.port)/"))
            Issue.record("a self-signed certificate was accepted")
        } catch {
            #expect(error.kind == .tls)
            #expect(!error.isRetryable)
        }
    }

    @Test func customCAFileIsTrusted() async throws {
        let server = try await Self.start("localhost")
        defer { server.stop() }
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, requestTimeout: .seconds(5),
                                                                     tls: TLSSettings(caFile: server.caFile)))
        defer { http.shutdown() }
        let response = try await http.send(HTTPRequest(method: .get, url: "https://localhost:\(server.port)/"))
        #expect(response.status == 200)
    }

    @Test func wrongHostIsRefusedEvenWithTheCA() async throws {
        let server = try await Self.start("not-this-host.example")
        defer { server.stop() }
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, requestTimeout: .seconds(5),
                                                                     tls: TLSSettings(caFile: server.caFile)))
        defer { http.shutdown() }
        do {
            _ = try await http.send(HTTPRequest(method: .get, url: "https://localhost:\(server.port)/"))
            Issue.record("a certificate for another host was accepted")
        } catch {
            #expect(error.kind == .tls)
        }
    }
}
