/// Decides, request by request, which fault (if any) the sandbox injects.
struct FaultInjector: Sendable {
    /// What to do with one API request.
    struct Decision: Sendable {
        enum Action: Sendable, Equatable {
            case proceed
            case hang
            case drop
            case internalError
            case rateLimited(retryAfterSeconds: Int)
        }

        var action: Action
        var latency: Duration
        /// The request is a write whose success must be answered 502 (the change is kept).
        var commitThenFail: Bool
    }

    private(set) var faults: SandboxFaults
    private var random: SplitMix64
    private var bucket: Double = 0
    private var bucketTime: ContinuousClock.Instant

    init(_ faults: SandboxFaults, now: ContinuousClock.Instant) {
        self.faults = faults
        self.random = SplitMix64(seed: faults.randomSeed ?? UInt64.random(in: .min ... .max))
        self.bucketTime = now
        self.bucket = faults.rateLimit.map { max(1, $0.requestsPerSecond) } ?? 0
    }

    /// The decision for the next request.
    mutating func decide(isWrite: Bool, now: ContinuousClock.Instant) -> Decision {
        let latency = Duration.milliseconds(max(0, faults.latencyMilliseconds))
        if faults.hang { return Decision(action: .hang, latency: .zero, commitThenFail: false) }
        if let limit = faults.rateLimit {
            let capacity = max(1, limit.requestsPerSecond)
            let elapsed = bucketTime.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket = min(capacity, bucket + seconds * limit.requestsPerSecond)
            bucketTime = now
            if bucket >= 1 {
                bucket -= 1
            } else {
                return Decision(action: .rateLimited(retryAfterSeconds: limit.retryAfterSeconds), latency: latency, commitThenFail: false)
            }
        }
        if fires(faults.dropRate) { return Decision(action: .drop, latency: latency, commitThenFail: false) }
        if fires(faults.errorRate) { return Decision(action: .internalError, latency: latency, commitThenFail: false) }
        let commitThenFail = isWrite && fires(faults.commitThenFailRate)
        return Decision(action: .proceed, latency: latency, commitThenFail: commitThenFail)
    }

    private mutating func fires(_ rate: Double) -> Bool {
        if rate >= 1 { return true }
        if !(rate > 0) { return false }
        return Double.random(in: 0..<1, using: &random) < rate
    }
}
