/// Faults the sandbox injects into API calls (`/apiops/...`, the token call included), for
/// testing how a client copes.
///
/// Decisions are taken per request, in arrival order, in this order: `hang`; the rate limit;
/// `dropRate`; `errorRate`; then, for writes that succeed, `commitThenFailRate`. `latency` is
/// added before every answer. A rate of 1 or more always fires, 0 or less never, and only
/// rates strictly between draw a random number, so that a given `randomSeed` and the same
/// sequence of requests give the same decisions. Calls under `/__sandbox/` are never faulted.
/// `PUT /__sandbox/faults` and `SandboxServer.start` refuse values outside their ranges (see
/// `problems`); `SandboxServer.setFaults` takes them as they are (a rate above 1 acts as 1, below
/// 0 as 0, a negative latency as none).
public struct SandboxFaults: Sendable, Codable, Equatable {
    /// A request budget; requests over it get 429 `rate_limit_exceeded`.
    public struct RateLimit: Sendable, Codable, Equatable {
        /// The sustained rate; bursts of up to `max(1, requestsPerSecond)` requests pass.
        public var requestsPerSecond: Double
        /// Sent in the `Retry-After` header and the body's `retry_after`.
        public var retryAfterSeconds: Int

        /// A budget of `requestsPerSecond`, telling clients to come back after `retryAfterSeconds`.
        public init(requestsPerSecond: Double, retryAfterSeconds: Int = 1) {
            self.requestsPerSecond = requestsPerSecond
            self.retryAfterSeconds = retryAfterSeconds
        }

        private enum CodingKeys: String, CodingKey, CaseIterable { case requestsPerSecond, retryAfterSeconds }

        /// Decodes `{requestsPerSecond, retryAfterSeconds?}`; unknown keys are an error.
        public init(from decoder: any Decoder) throws {
            try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "rateLimit")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            requestsPerSecond = try c.decode(Double.self, forKey: .requestsPerSecond)
            retryAfterSeconds = try c.decodeIfPresent(Int.self, forKey: .retryAfterSeconds) ?? 1
        }
    }

    /// Added before every API answer.
    public var latencyMilliseconds: Int = 0
    /// Share of requests answered 500 `internal_error` before anything is done.
    public var errorRate: Double = 0
    /// Share of requests whose connection is closed without a complete answer, nothing done.
    public var dropRate: Double = 0
    /// Share of successful writes that are stored but answered 502 `internal_error`.
    public var commitThenFailRate: Double = 0
    /// Requests over this budget get 429 with `Retry-After`.
    public var rateLimit: RateLimit? = nil
    /// This gateway's entry in every write's deployment result fails (the change is stored).
    public var failingGateway: String? = nil
    /// Accept requests and never answer them (until the sandbox stops or `hang` is turned off,
    /// when the connection is dropped).
    public var hang: Bool = false
    /// Makes the random decisions repeatable.
    public var randomSeed: UInt64? = nil

    /// Faults as given; the defaults inject nothing.
    public init(latencyMilliseconds: Int = 0, errorRate: Double = 0, dropRate: Double = 0, commitThenFailRate: Double = 0,
                rateLimit: RateLimit? = nil, failingGateway: String? = nil, hang: Bool = false, randomSeed: UInt64? = nil) {
        self.latencyMilliseconds = latencyMilliseconds
        self.errorRate = errorRate
        self.dropRate = dropRate
        self.commitThenFailRate = commitThenFailRate
        self.rateLimit = rateLimit
        self.failingGateway = failingGateway
        self.hang = hang
        self.randomSeed = randomSeed
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case latencyMilliseconds, errorRate, dropRate, commitThenFailRate, rateLimit, failingGateway, hang, randomSeed
    }

    /// Decodes faults; a missing key means "no such fault", an unknown key is an error.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, allowed: CodingKeys.allCases.map(\.rawValue), in: "faults")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        latencyMilliseconds = try c.decodeIfPresent(Int.self, forKey: .latencyMilliseconds) ?? 0
        errorRate = try c.decodeIfPresent(Double.self, forKey: .errorRate) ?? 0
        dropRate = try c.decodeIfPresent(Double.self, forKey: .dropRate) ?? 0
        commitThenFailRate = try c.decodeIfPresent(Double.self, forKey: .commitThenFailRate) ?? 0
        rateLimit = try c.decodeIfPresent(RateLimit.self, forKey: .rateLimit)
        failingGateway = try c.decodeIfPresent(String.self, forKey: .failingGateway)
        hang = try c.decodeIfPresent(Bool.self, forKey: .hang) ?? false
        randomSeed = try c.decodeIfPresent(UInt64.self, forKey: .randomSeed)
    }

    /// Encodes every key, absent ones as `null`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(latencyMilliseconds, forKey: .latencyMilliseconds)
        try c.encode(errorRate, forKey: .errorRate)
        try c.encode(dropRate, forKey: .dropRate)
        try c.encode(commitThenFailRate, forKey: .commitThenFailRate)
        try c.encode(rateLimit, forKey: .rateLimit)
        try c.encode(failingGateway, forKey: .failingGateway)
        try c.encode(hang, forKey: .hang)
        try c.encode(randomSeed, forKey: .randomSeed)
    }

    /// The problems that make these faults unusable (negative latency, a rate outside 0...1,
    /// a non-positive request rate); empty when they are fine.
    public var problems: [String] {
        var problems: [String] = []
        if latencyMilliseconds < 0 { problems.append("latencyMilliseconds must be 0 or more") }
        for (name, rate) in [("errorRate", errorRate), ("dropRate", dropRate), ("commitThenFailRate", commitThenFailRate)]
        where !(0...1).contains(rate) {
            problems.append("\(name) must be between 0 and 1")
        }
        if let rateLimit {
            if !(rateLimit.requestsPerSecond > 0) || !rateLimit.requestsPerSecond.isFinite { problems.append("rateLimit.requestsPerSecond must be more than 0") }
            if rateLimit.retryAfterSeconds < 0 { problems.append("rateLimit.retryAfterSeconds must be 0 or more") }
        }
        return problems
    }
}
