import CredOps
import Foundation
import Testing

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy()
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func response(_ status: Int, headers: [(String, String)] = [], body: String = "") -> Result<HTTPResponse, HTTPClientError> {
        .success(HTTPResponse(status: status, headers: HTTPHeaders(headers), body: Data(body.utf8)))
    }

    @Test func retryAfterSecondsIsHonoured() {
        #expect(policy.decide(outcome: response(429, headers: [("Retry-After", "3")]), idempotent: true, retriesSoFar: 0, now: now) == .retry(after: .seconds(3)))
    }

    @Test func retryAfterHTTPDateIsHonoured() {
        let date = "Fri, 15 Jan 2027 08:00:05 GMT"
        let now = RetryPolicyTests.httpDate("Fri, 15 Jan 2027 08:00:00 GMT")
        #expect(policy.decide(outcome: response(503, headers: [("Retry-After", date)]), idempotent: true, retriesSoFar: 0, now: now) == .retry(after: .seconds(5)))
    }

    static func httpDate(_ s: String) -> Date {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s)!
    }

    @Test func bodyRetryAfterIsHonoured() {
        #expect(policy.decide(outcome: response(429, body: #"{"error":"rate_limit_exceeded","retry_after":2}"#), idempotent: true, retriesSoFar: 0, now: now) == .retry(after: .seconds(2)))
    }

    @Test func hugeRetryAfterIsCapped() {
        #expect(policy.decide(outcome: response(429, headers: [("Retry-After", "3600")]), idempotent: true, retriesSoFar: 0, now: now) == .retry(after: .seconds(60)))
    }

    @Test(arguments: ["soon", "-5", "1e309", "", "Tue, 99 Foo"])
    func garbageRetryAfterFallsBackToBackoff(_ value: String) {
        let decision = policy.decide(outcome: response(429, headers: [("Retry-After", value)]), idempotent: true, retriesSoFar: 0, now: now, jitter: 0)
        #expect(decision == .retry(after: .milliseconds(100)))
    }

    @Test func backoffGrowsExponentiallyWithJitterAndIsCapped() {
        let error = HTTPClientError(.connectionDropped, request: "GET x", message: "dropped")
        func wait(_ n: Int, _ jitter: Double) -> RetryPolicy.Decision {
            var settings = RetrySettings()
            settings.maxRetries = 10
            return RetryPolicy(settings: settings).decide(outcome: .failure(error), idempotent: true, retriesSoFar: n, now: now, jitter: jitter)
        }
        #expect(wait(0, 0) == .retry(after: .milliseconds(100)))
        #expect(wait(0, 1) == .retry(after: .milliseconds(200)))
        #expect(wait(3, 0) == .retry(after: .milliseconds(800)))
        #expect(wait(9, 1) == .retry(after: .milliseconds(10_000)))
    }

    @Test func atMostFourRetries() {
        #expect(policy.decide(outcome: response(500), idempotent: true, retriesSoFar: 3, now: now, jitter: 0) != .stop)
        #expect(policy.decide(outcome: response(500), idempotent: true, retriesSoFar: 4, now: now, jitter: 0) == .stop)
    }

    @Test(arguments: [400, 401, 403, 404, 409, 422])
    func clientErrorsAreNotRetried(_ status: Int) {
        #expect(policy.decide(outcome: response(status), idempotent: true, retriesSoFar: 0, now: now) == .stop)
    }

    @Test func nonIdempotentRequestsAreNotRetriedExceptAfterA429() {
        #expect(policy.decide(outcome: response(503), idempotent: false, retriesSoFar: 0, now: now) == .stop)
        #expect(policy.decide(outcome: response(429, headers: [("Retry-After", "2")]), idempotent: false, retriesSoFar: 0, now: now) == .retry(after: .seconds(2)))
        let error = HTTPClientError(.timeout, request: "POST x", message: "t")
        #expect(policy.decide(outcome: .failure(error), idempotent: false, retriesSoFar: 0, now: now) == .stop)
    }

    @Test func tlsAndURLFailuresAreNotRetried() {
        for kind in [HTTPClientError.Kind.tls, .invalidURL, .insecureURL, .responseTooLarge] {
            #expect(policy.decide(outcome: .failure(HTTPClientError(kind, request: "GET x", message: "m")), idempotent: true, retriesSoFar: 0, now: now) == .stop)
        }
    }
}
