import CCurl
import Foundation
import Logging
import Metrics
import Synchronization

/// An HTTP client over libcurl for one environment, with async/await.
///
/// One thread drives libcurl's multi interface with at most `concurrency` transfers in flight;
/// the multi handle's connection cache reuses connections across them. Redirects are never
/// followed, TLS is verified, answers are capped, and plain http goes only to loopback unless
/// allowed.
public final class HTTPClient: Sendable {
    public let configuration: HTTPClientConfiguration
    private let pool: CurlMultiLoop
    /// Host → is it a loopback address; an environment talks to one or two hosts.
    private let loopbackHosts = Mutex<[String: Bool]>([:])
    /// Until when the server asked this client to hold off (a 429): every request waits for it.
    private let pausedUntil = Mutex<ContinuousClock.Instant?>(nil)

    /// Holds every request of this client until `instant` (the latest such instant wins).
    func pause(until instant: ContinuousClock.Instant) {
        pausedUntil.withLock { current in
            if current.map({ $0 < instant }) ?? true { current = instant }
        }
    }

    /// Waits out a pause a rate-limited answer asked for, if one is running; returns early
    /// when `giveUp` turns true (checked every quarter second).
    func waitForPause(giveUp: () -> Bool) async throws {
        while let until = pausedUntil.withLock({ $0 }), until > ContinuousClock.now, !giveUp() {
            try await Task.sleep(until: min(until, ContinuousClock.now + .milliseconds(250)), clock: .continuous)
        }
    }

    public init(configuration: HTTPClientConfiguration) {
        CurlGlobal.initializeOnce()
        self.configuration = configuration
        self.pool = CurlMultiLoop(maxInFlight: configuration.concurrency, configuration: configuration)
    }

    deinit { pool.shutdown() }

    /// The client's transfer thread as an executor: work that mostly sends requests through
    /// this client runs cheapest there (`withTaskExecutorPreference(client.taskExecutor)`).
    /// Keep blocking calls off it: they hold up every transfer of the client.
    public var taskExecutor: any TaskExecutor { pool }

    /// Stops the transfer thread after the requests already queued.
    public func shutdown() { pool.shutdown() }

    /// Sends one request and returns the answer, whatever its status.
    ///
    /// - Parameter timeout: the request's deadline, if shorter than the configured one.
    /// - Throws: `HTTPClientError` when no complete answer arrived, or on cancellation.
    public func send(_ request: HTTPRequest, timeout: Duration? = nil) async throws(HTTPClientError) -> HTTPResponse {
        let target = try checkURL(request)
        try Self.checkHeaders(request)
        if Task.isCancelled { throw HTTPClientError(.cancelled, request: request.summary, message: "cancelled before sending") }
        let deadline = min(timeout ?? configuration.requestTimeout, configuration.requestTimeout)
        let job = CurlJob(request: request, target: target, timeout: deadline, maxBody: configuration.maxResponseBytes)
        let started = ContinuousClock.now
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, HTTPClientError>, Never>) in
                if job.attach(continuation) { pool.submit(job) }
            }
        } onCancel: {
            if job.cancel() { pool.checkCancellations() }
        }
        configuration.requestTimer?.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        if let logger = configuration.logger, logger.logLevel <= .debug {
            let took = (ContinuousClock.now - started).shortDescription
            let headers = request.headers.redacted.map { "\($0.name): \($0.value)" }.joined(separator: ", ")
            switch result {
            case .success(let response):
                logger.debug("\(request.summary) [\(headers)] → \(response.status) (\(response.body.count) bytes, \(took))")
            case .failure(let error):
                logger.debug("\(request.summary) [\(headers)] → \(error.message) (\(took))")
            }
        }
        return try result.get()
    }

    /// Refuses a header whose name is not a token or whose value holds a control character (CR
    /// or LF there would end the header and start another). The error names the header, never
    /// its value.
    static func checkHeaders(_ request: HTTPRequest) throws(HTTPClientError) {
        for field in request.headers {
            let nameOK = !field.name.isEmpty && field.name.utf8.allSatisfy { b in
                (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || "!#$%&'*+-.^_`|~".utf8.contains(b)
            }
            let valueOK = field.value.utf8.allSatisfy { $0 == 9 || ($0 >= 32 && $0 != 127) }
            guard nameOK && valueOK else {
                throw HTTPClientError(.invalidRequest, request: request.summary,
                                      message: "the \(nameOK ? "value of the header \(field.name)" : "name of a header") holds a control character or a character a header cannot carry; refused (the value is not shown)")
            }
        }
    }

    private func isLoopback(_ host: String) -> Bool {
        if let known = loopbackHosts.withLock({ $0[host] }) { return known }
        let answer = HostAddress.isLoopback(host)
        loopbackHosts.withLock { $0[host] = answer }
        return answer
    }

    /// Where the request goes, once it passed the checks.
    private func checkURL(_ request: HTTPRequest) throws(HTTPClientError) -> RequestTarget {
        guard let origin = URLParts.origin(request.url) else {
            throw HTTPClientError(.invalidURL, request: request.summary, message: "not an absolute http(s) URL")
        }
        let target = RequestTarget(host: origin.host, port: origin.port, isLoopback: isLoopback(origin.host))
        switch origin.scheme {
        case "https":
            return target
        case "http":
            guard configuration.allowInsecureHTTP || target.isLoopback else {
                throw HTTPClientError(.insecureURL, request: request.summary,
                                      message: "plain http:// to \(origin.host) is refused (only loopback hosts); use https, or set allowInsecureHTTP: true in the environment file")
            }
            return target
        default:
            throw HTTPClientError(.invalidURL, request: request.summary, message: "unsupported scheme \(origin.scheme)://")
        }
    }
}

/// `curl_global_init` exactly once per process, before the first handle.
enum CurlGlobal {
    private static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
        return true
    }()

    static func initializeOnce() { _ = initialized }
}

/// Where a request goes: decided once per request, used for the proxy choice and messages.
struct RequestTarget: Sendable {
    var host: String
    var port: Int
    var isLoopback: Bool

    /// `host:port`, IPv6 in brackets.
    var place: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// One request on its way through the pool.
///
/// Invariant: `state` and `continuation` are read and written only with `lock` held; the
/// continuation is resumed exactly once, outside the lock.
final class CurlJob: @unchecked Sendable {
    enum State { case pending, running, finished }

    let request: HTTPRequest
    let target: RequestTarget
    let timeout: Duration
    let transfer: UnsafeMutablePointer<ccurl_transfer>
    /// The request's header list while its transfer runs; touched only by the transfer thread.
    var headerList: UnsafeMutablePointer<curl_slist>?

    private let lock = NSLock()
    private var state = State.pending
    private var continuation: CheckedContinuation<Result<HTTPResponse, HTTPClientError>, Never>?
    private var earlyResult: Result<HTTPResponse, HTTPClientError>?

    init(request: HTTPRequest, target: RequestTarget, timeout: Duration, maxBody: Int) {
        self.request = request
        self.target = target
        self.timeout = timeout
        guard let t = ccurl_transfer_create(maxBody, 256 * 1024) else { fatalError("out of memory") }
        self.transfer = t
    }

    deinit { ccurl_transfer_destroy(transfer) }

    /// Stores the continuation; false when the job already ended (cancelled before it started).
    func attach(_ c: CheckedContinuation<Result<HTTPResponse, HTTPClientError>, Never>) -> Bool {
        lock.lock()
        if state == .finished, let early = earlyResult {
            lock.unlock()
            c.resume(returning: early)
            return false
        }
        continuation = c
        lock.unlock()
        return true
    }

    /// Called by the transfer thread; false when the job was cancelled while queued.
    func start() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard state == .pending else { return false }
        state = .running
        return true
    }

    func finish(_ result: Result<HTTPResponse, HTTPClientError>) {
        lock.lock()
        guard state != .finished else { lock.unlock(); return }
        finishLocked(result)
    }

    /// Marks the job finished and resumes its caller; called with `lock` held, returns without it.
    private func finishLocked(_ result: Result<HTTPResponse, HTTPClientError>) {
        state = .finished
        let c = continuation
        continuation = nil
        if c == nil { earlyResult = result }
        lock.unlock()
        c?.resume(returning: result)
    }

    /// Ends a queued job at once, or flags a running one; true when a running transfer was
    /// flagged (the transfer thread then has to look: see `CurlMultiLoop.checkCancellations`).
    func cancel() -> Bool {
        lock.lock()
        switch state {
        case .pending:
            // Finished under the same lock: the transfer thread cannot start it in between.
            finishLocked(.failure(HTTPClientError(.cancelled, request: request.summary, message: "cancelled before sending")))
            return false
        case .running:
            // The transfer thread sees the flag and ends the transfer.
            ccurl_transfer_cancel(transfer)
            lock.unlock()
            return true
        case .finished:
            lock.unlock()
            return false
        }
    }

    var isCancelled: Bool { ccurl_transfer_is_cancelled(transfer) != 0 }
}
