import CredOps
import Foundation
import Synchronization
import Testing
@testable import ApinizerSandbox

@Suite("Fault injection")
struct FaultTests {
    typealias H = SandboxHarness

    private let aliceBody = #"{"username":"alice","password":"p","email":"a@b.io","fullName":"A"}"#

    @Test func errorRateAnswersInternalErrorAndDoesNothing() async throws {
        try await H.with(H.configuration(faults: SandboxFaults(errorRate: 1))) { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
            #expect(response.status == 500)
            #expect(response.errorCode == "internal_error")
            #expect(await h.server.snapshot().credentials.isEmpty)
        }
    }

    @Test func droppedConnectionIsANetworkErrorAndDoesNothing() async throws {
        try await H.with { h async throws in
            // A first answered call, so that the dropped one travels on a reused connection.
            #expect(try await h.send(.get, "/apiops/projects/").status == 200)
            await h.server.setFaults(SandboxFaults(dropRate: 1))
            await #expect(throws: HTTPClientError.self) {
                _ = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
            }
            do throws(HTTPClientError) {
                _ = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
                Issue.record("expected a dropped connection")
            } catch {
                #expect(error.kind == .connectionDropped)
            }
            #expect(await h.server.snapshot().credentials.isEmpty)
            // Each dropped request reached the server once: the client did not silently re-send it.
            let stats = try await h.send(.get, "/__sandbox/stats")
            #expect(stats.json["byMethod"]?["POST"]?.intValue == 2)
        }
    }

    @Test func commitThenFailStoresTheWriteButAnswersBadGateway() async throws {
        try await H.with(H.configuration(faults: SandboxFaults(commitThenFailRate: 1))) { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
            #expect(response.status == 502)
            #expect(response.errorCode == "internal_error")
            #expect(await h.stored("alice") != nil)
            // Reads and refused writes are answered as usual.
            #expect(try await h.send(.get, H.credentialsPath("MyProject")).status == 200)
            let duplicate = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
            #expect(duplicate.status == 400)
        }
    }

    @Test func rateLimitAnswers429WithRetryAfterHeaderAndBody() async throws {
        let faults = SandboxFaults(rateLimit: .init(requestsPerSecond: 1, retryAfterSeconds: 7))
        try await H.with(H.configuration(faults: faults)) { h async throws in
            #expect(try await h.send(.get, "/apiops/projects/").status == 200)
            // One request per second: on a loaded machine the next one may come a second later
            // and pass, so keep asking until one is limited.
            var limited = try await h.send(.get, "/apiops/projects/")
            for _ in 0..<30 where limited.status != 429 { limited = try await h.send(.get, "/apiops/projects/") }
            #expect(limited.status == 429)
            #expect(limited.headers["Retry-After"] == "7")
            #expect(limited.errorCode == "rate_limit_exceeded")
            #expect(limited.json["retry_after"]?.intValue == 7)
            #expect(limited.errorDescription != nil)
        }
    }

    @Test func failingGatewayFailsItsEntryButTheChangeIsStored() async throws {
        try await H.with(H.configuration(faults: SandboxFaults(failingGateway: "staging"))) { h async throws in
            let response = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
            #expect(response.status == 200)
            #expect(response.json["success"]?.boolValue == true)
            let deployment = response.json["deploymentResult"]
            #expect(deployment?["success"]?.boolValue == false)
            let entries = deployment?["environmentResults"]?.arrayValue ?? []
            #expect(entries.count == 2)
            #expect(entries[0]["environmentName"]?.stringValue == "production")
            #expect(entries[0]["success"]?.boolValue == true)
            #expect(entries[1]["environmentName"]?.stringValue == "staging")
            #expect(entries[1]["success"]?.boolValue == false)
            #expect(entries[1]["message"]?.stringValue == "Gateway connection refused")
            #expect(await h.stored("alice") != nil)

            let delete = try await h.send(.delete, H.credentialsPath("MyProject", "alice"))
            #expect(delete.json["deploymentResult"]?["success"]?.boolValue == false)
            #expect(await h.stored("alice") == nil)
            let environments = try await h.send(.get, "/apiops/environments/MyProject/")
            #expect(environments.json["resultList"]?[1]?["status"]?.stringValue == "UNREACHABLE")
        }
    }

    @Test func latencyIsAddedBeforeEveryAnswer() async throws {
        // A latency far above what a loaded test machine adds, so that "delayed" and "not
        // delayed" stay apart however busy the other tests keep both cores.
        // The test-only calls are never delayed: one sent while an API call waits out a long
        // latency is answered first. An order, not a duration, so a busy machine cannot blur it.
        try await H.with(H.configuration(faults: SandboxFaults(latencyMilliseconds: 8000))) { h async throws in
            let clock = ContinuousClock()
            let start = clock.now
            let answered = Mutex(false)
            let api = Task {
                let status = try await h.send(.get, "/apiops/projects/", timeout: .seconds(60)).status
                answered.withLock { $0 = true }
                return status
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await h.send(.get, "/__sandbox/stats").status == 200)
            #expect(!answered.withLock { $0 }, "the admin call waited for the API call's latency")
            #expect(try await api.value == 200)
            #expect(start.duration(to: clock.now) >= .milliseconds(8000))
        }
    }

    @Test func hungRequestIsNeverAnsweredAndTheClientTimesOut() async throws {
        try await H.with(H.configuration(faults: SandboxFaults(hang: true))) { h async throws in
            do throws(HTTPClientError) {
                _ = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody, timeout: .milliseconds(300))
                Issue.record("expected a timeout")
            } catch {
                #expect(error.kind == .timeout)
            }
            #expect(await h.server.snapshot().credentials.isEmpty)
            // The test-only calls still answer, and turning hang off lets new requests through.
            let off = try await h.send(.put, "/__sandbox/faults", json: "{}")
            #expect(off.status == 200)
            #expect(try await h.send(.get, "/apiops/projects/").status == 200)
        }
    }

    @Test func stopLetsGoOfHungRequests() async throws {
        // A grace period far longer than a stop should take: a stop that waited for the hung
        // request instead of letting it go would last the whole 300 s.
        var configuration = H.configuration(faults: SandboxFaults(hang: true))
        configuration.shutdownGrace = .seconds(300)
        let server = try await SandboxServer.start(configuration)
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2, requestTimeout: .seconds(290)))
        defer { client.shutdown() }
        let pending = Task {
            try await client.send(HTTPRequest(method: .get, url: server.baseURL + "/apiops/projects/",
                                              headers: HTTPHeaders([("Authorization", "Bearer \(H.token)")])), timeout: .seconds(290))
        }
        try await Task.sleep(for: .milliseconds(100))
        let clock = ContinuousClock()
        let start = clock.now
        await server.stop()
        let stopped = start.duration(to: clock.now)
        print("FIGURE sandbox stop with a hung request: \(stopped)")
        #expect(stopped < .seconds(120))
        let result = await pending.result
        switch result {
        case .success: Issue.record("a hung request was answered")
        case .failure(let error):
            // Let go by the server, not given up by the client.
            #expect((error as? HTTPClientError)?.kind != .timeout, "\(error)")
        }
    }

    @Test func faultsChangeAtRunTimeAndNeverTouchTestOnlyCalls() async throws {
        try await H.with { h async throws in
            let set = try await h.send(.put, "/__sandbox/faults", json: #"{"errorRate": 1, "failingGateway": "production"}"#)
            #expect(set.status == 200)
            #expect(set.json["failingGateway"]?.stringValue == "production")
            #expect(try await h.send(.get, "/apiops/projects/").status == 500)
            #expect(try await h.send(.get, "/__sandbox/dump").status == 200)
            let read = try await h.send(.get, "/__sandbox/faults")
            #expect(read.json["failingGateway"]?.stringValue == "production")
            #expect(await h.server.faults().errorRate == 1)
            await h.server.setFaults(SandboxFaults())
            #expect(try await h.send(.get, "/apiops/projects/").status == 200)
        }
    }

    @Test(arguments: [#"{"errorRate": 2}"#, #"{"dropRate": -0.1}"#, #"{"latencyMilliseconds": -5}"#,
                      #"{"rateLimit": {"requestsPerSecond": 0}}"#, #"{"errorRat": 1}"#, #"{"hang": "yes"}"#, "nope"])
    func invalidFaultsAreRefused(body: String) async throws {
        try await H.with { h async throws in
            let response = try await h.send(.put, "/__sandbox/faults", json: body)
            #expect(response.status == 400)
            #expect(response.errorCode == "bad_request")
            #expect(await h.server.faults() == SandboxFaults())
        }
    }

    @Test func seededRandomFaultsRepeatExactly() async throws {
        func pattern() async throws -> [Int] {
            try await H.with(H.configuration(faults: SandboxFaults(errorRate: 0.5, randomSeed: 42))) { h async throws in
                var statuses: [Int] = []
                for _ in 0..<24 { statuses.append(try await h.send(.get, "/apiops/projects/").status) }
                return statuses
            }
        }
        let first = try await pattern()
        let second = try await pattern()
        #expect(first == second)
        #expect(first.contains(200) && first.contains(500))
    }

    @Test func faultedRequestsAreCounted() async throws {
        try await H.with(H.configuration(faults: SandboxFaults(errorRate: 1))) { h async throws in
            _ = try await h.send(.post, H.credentialsPath("MyProject"), json: aliceBody)
            _ = try await h.send(.get, H.credentialsPath("MyProject"))
            let stats = try await h.send(.get, "/__sandbox/stats")
            #expect(stats.json["total"]?.intValue == 2)
            #expect(stats.json["writes"]?.intValue == 1)
        }
    }

    @Test func startRefusesInvalidFaults() async throws {
        await #expect(throws: SandboxError.self) {
            _ = try await SandboxServer.start(H.configuration(faults: SandboxFaults(errorRate: 3)))
        }
    }
}
