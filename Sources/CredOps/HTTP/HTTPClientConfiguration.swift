import Logging
import Metrics

/// How an `HTTPClient` talks to one environment.
public struct HTTPClientConfiguration: Sendable {
    /// Worker threads, each with its own reused connection: the most requests in flight.
    public var concurrency: Int
    public var connectTimeout: Duration
    /// The deadline of one request, connect included.
    public var requestTimeout: Duration
    /// Larger (decoded) answers are refused: a misbehaving or hostile server cannot fill memory.
    public var maxResponseBytes: Int
    public var tls: TLSSettings
    /// Allow plain http to hosts that are not loopback addresses.
    public var allowInsecureHTTP: Bool
    public var userAgent: String
    /// Where request lines go (debug level): method, URL, status, size and time; header values
    /// of sensitive headers redacted, bodies never.
    public var logger: Logger?
    /// The request-latency timer (`credops_request_duration_seconds{environment}`), through
    /// swift-metrics: a no-op unless a metrics backend is bootstrapped (`credops reconcile`).
    public var requestTimer: Timer?

    public init(concurrency: Int = 8, connectTimeout: Duration = .seconds(10), requestTimeout: Duration = .seconds(30),
                maxResponseBytes: Int = 16 * 1024 * 1024, tls: TLSSettings = TLSSettings(), allowInsecureHTTP: Bool = false,
                userAgent: String = "credops/\(CredOpsVersion.current)") {
        self.concurrency = max(1, concurrency)
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.maxResponseBytes = maxResponseBytes
        self.tls = tls
        self.allowInsecureHTTP = allowInsecureHTTP
        self.userAgent = userAgent
    }

    /// The settings of an environment file.
    public init(environment: EnvironmentConfig, logger: Logger? = nil) {
        self.init(concurrency: environment.concurrency, connectTimeout: .seconds(environment.connectTimeoutSeconds),
                  requestTimeout: .seconds(environment.timeoutSeconds), tls: environment.tls,
                  allowInsecureHTTP: environment.allowInsecureHTTP)
        self.requestTimer = Timer(label: "credops_request_duration_seconds", dimensions: [("environment", environment.name.rawValue)])
        self.logger = logger.map { logger in
            var l = logger
            l[metadataKey: "environment"] = "\(environment.name)"
            return l
        }
    }
}

extension Duration {
    /// Whole milliseconds, for C APIs.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds (for timers).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// The duration in seconds, fractions included (for figures and rates).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// `10 s`, `1.5 s`, `250 ms`: for messages.
    public var shortDescription: String {
        let ms = milliseconds
        if ms < 1000 { return "\(ms) ms" }
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        return String(format: "%.1f s", Double(ms) / 1000)
    }
}
