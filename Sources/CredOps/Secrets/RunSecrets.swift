import Synchronization

/// Every secret one run knows, growing as the run learns more (an access token fetched
/// midway): the redactor every message, report and line of output goes through.
///
/// Shared by reference between the CLI's output, the engine and the providers' sessions, so
/// that a secret learnt by one is redacted by all from then on.
public final class RunSecrets: Sendable {
    private struct State: Sendable {
        var redactor: Redactor
        var generation: Int
    }

    private let state: Mutex<State>

    public init(_ secrets: [Secret] = []) {
        state = Mutex(State(redactor: Redactor(secrets: secrets), generation: 0))
    }

    /// A redactor for every secret known now.
    public var redactor: Redactor { state.withLock { $0.redactor } }

    /// Adds secrets (empty ones and known ones are ignored).
    public func add(_ secrets: [Secret]) {
        let new = secrets.filter { !$0.isEmpty }
        guard !new.isEmpty else { return }
        // Prepared outside the lock (a first call with thousands of passwords takes a while);
        // when another addition came first, prepared again on top of it rather than lost.
        while true {
            let (base, generation) = state.withLock { ($0.redactor, $0.generation) }
            let next = base.adding(new)
            let stored = state.withLock { current -> Bool in
                guard current.generation == generation else { return false }
                current = State(redactor: next, generation: generation + 1)
                return true
            }
            if stored { return }
        }
    }
}
