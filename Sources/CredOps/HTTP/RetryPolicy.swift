import Foundation

/// When and how long to wait before sending a request again.
///
/// Network errors and 5xx are retried for idempotent requests (GET, PUT, PATCH, DELETE), and
/// 429 for any request (the server did not process it), with exponential backoff and jitter; a server's `Retry-After` (seconds or HTTP date) or body
/// `retry_after` is honoured up to a cap, and garbage there falls back to backoff. 4xx, TLS
/// failures and non-idempotent requests are never retried here: a create whose answer was lost
/// is resolved by reading back, not by sending it again.
public struct RetryPolicy: Sendable {
    public enum Decision: Sendable, Equatable {
        case stop
        case retry(after: Duration)
    }

    public var settings: RetrySettings

    public init(settings: RetrySettings = RetrySettings()) {
        self.settings = settings
    }

    /// - Parameters:
    ///   - retriesSoFar: how many retries were already made for this request.
    ///   - idempotent: whether sending the request again is safe.
    ///   - jitter: a value in 0..<1 (random in use; fixed in tests), drawn only for a backoff:
    ///     a draw is a system call, and most answers need none.
    public func decide(outcome: Result<HTTPResponse, HTTPClientError>, idempotent: Bool, retriesSoFar: Int,
                       now: Date = Date(), jitter: @autoclosure () -> Double = Double.random(in: 0..<1)) -> Decision {
        guard retriesSoFar < settings.maxRetries else { return .stop }
        // 429 says the server did not process the request (RFC 6585): safe to send again, even a POST.
        if case .success(let response) = outcome, response.status == 429 {
            return .retry(after: serverDelay(response, now: now) ?? backoff(retriesSoFar, jitter: jitter()))
        }
        guard idempotent else { return .stop }
        switch outcome {
        case .failure(let error):
            return error.isRetryable ? .retry(after: backoff(retriesSoFar, jitter: jitter())) : .stop
        case .success(let response):
            guard response.status == 429 || (500...599).contains(response.status) else { return .stop }
            if let wait = serverDelay(response, now: now) { return .retry(after: wait) }
            return .retry(after: backoff(retriesSoFar, jitter: jitter()))
        }
    }

    /// Exponential backoff with "equal jitter": half the step fixed, half random.
    func backoff(_ retriesSoFar: Int, jitter: Double) -> Duration {
        let step = min(Double(settings.maxBackoffMilliseconds), Double(settings.initialBackoffMilliseconds) * pow(2, Double(retriesSoFar)))
        let ms = step / 2 + step / 2 * min(max(jitter, 0), 1)
        return .milliseconds(Int64(ms))
    }

    /// The server's requested wait, capped; nil when absent or unreadable.
    func serverDelay(_ response: HTTPResponse, now: Date) -> Duration? {
        var seconds: Double?
        if let header = response.headers[settings.retryAfterHeader]?.trimmingCharacters(in: .whitespaces) {
            if let s = Double(header), s.isFinite, s >= 0, header.allSatisfy({ $0.isNumber || $0 == "." }) {
                seconds = s
            } else if let date = Self.httpDate(header) {
                seconds = max(0, date.timeIntervalSince(now))
            }
        }
        if seconds == nil,
           let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any],
           let value = object["retry_after"] {
            if let n = value as? NSNumber, !(value is Bool), n.doubleValue.isFinite, n.doubleValue >= 0 { seconds = n.doubleValue }
            if let s = value as? String, let n = Double(s), n.isFinite, n >= 0 { seconds = n }
        }
        guard let seconds else { return nil }
        return .milliseconds(Int64(min(seconds, Double(settings.retryAfterCapSeconds)) * 1000))
    }

    /// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP/1.1 senders must use,
    /// parsed on bytes: a DateFormatter per answer was slow and, under fuzzing, leaked inside
    /// Foundation.
    static func httpDate(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 29, b[3] == UInt8(ascii: ","), b[4] == 32, b[7] == 32, b[11] == 32, b[16] == 32,
              b[19] == UInt8(ascii: ":"), b[22] == UInt8(ascii: ":"), b[25] == 32,
              String(decoding: b[26..<29], as: UTF8.self) == "GMT" else { return nil }
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard days.contains(String(decoding: b[0..<3], as: UTF8.self)),
              let monthIndex = months.firstIndex(of: String(decoding: b[8..<11], as: UTF8.self)) else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var v = 0
            for k in range {
                guard b[k] >= 48 && b[k] <= 57 else { return nil }
                v = v * 10 + Int(b[k] - 48)
            }
            return v
        }
        guard let day = number(5..<7), let year = number(12..<16), let hour = number(17..<19), let minute = number(20..<22),
              let second = number(23..<25), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let epochDays = Timestamp.daysFromCivil(year: year, month: monthIndex + 1, day: day)
        return Date(timeIntervalSince1970: Double(epochDays * 86_400 + hour * 3600 + minute * 60 + second))
    }
}

extension HTTPClient {
    /// Sends `request`, retrying as `policy` allows.
    ///
    /// - Parameter idempotent: whether the request may be sent again; defaults to the method's nature.
    /// - Returns: the last answer and how many retries it took.
    /// - Parameter giveUp: checked before each wait; when true the last outcome stands (a run
    ///   that was asked to stop does not wait out a `Retry-After`).
    public func send(_ request: HTTPRequest, policy: RetryPolicy, idempotent: Bool? = nil,
                     giveUp: @Sendable () -> Bool = { false }) async throws(HTTPClientError) -> (HTTPResponse, retries: Int) {
        var retries = 0
        while true {
            let outcome: Result<HTTPResponse, HTTPClientError>
            do throws(HTTPClientError) {
                // A rate limit holds the whole environment, not just the request that met it:
                // workers that kept sending would only collect more 429s and use up their
                // retries.
                do {
                    try await waitForPause(giveUp: giveUp)
                } catch {
                    throw HTTPClientError(.cancelled, request: request.summary, message: "cancelled while the server's rate limit held requests")
                }
                outcome = .success(try await send(request))
            } catch {
                if error.kind == .cancelled { throw error }
                outcome = .failure(error)
            }
            switch policy.decide(outcome: outcome, idempotent: idempotent ?? request.method.isIdempotent, retriesSoFar: retries) {
            case .stop:
                return (try outcome.get(), retries)
            case .retry where giveUp():
                return (try outcome.get(), retries)
            case .retry(let delay):
                retries += 1
                if case .success(let response) = outcome, response.status == 429 {
                    pause(until: ContinuousClock.now + delay)
                }
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw HTTPClientError(.cancelled, request: request.summary, message: "cancelled while waiting to retry")
                }
            }
        }
    }
}
