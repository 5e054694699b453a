import Synchronization

/// Every secret one run knows, growing as the run learns more (an access token fetched
/// midway): the redactor every message, report and line of output goes through.
///
/// Shared by reference between the CLI's output, the engine and the providers' sessions, so
/// that a secret learnt by one is redacted by all from then on.
public final class RunSecrets: Sendable {
    private let current: Mutex<Redactor>

    public init(_ secrets: [Secret] = []) {
        current = Mutex(Redactor(secrets: secrets))
    }

    /// A redactor for every secret known now.
    public var redactor: Redactor { current.withLock { $0 } }

    /// Adds secrets (empty ones are ignored).
    public func add(_ secrets: [Secret]) {
        let new = secrets.filter { !$0.isEmpty }
        guard !new.isEmpty else { return }
        current.withLock { $0 = $0.adding(new) }
    }
}
