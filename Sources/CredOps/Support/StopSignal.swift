import Synchronization

/// Set once when a run must stop starting new work (Ctrl-C, SIGTERM, the run deadline).
/// Checked before every operation and before every retry wait.
public final class StopSignal: Sendable {
    private let state = Mutex<String?>(nil)

    public init() {}

    /// Asks the run to stop; the first reason given is kept.
    public func request(_ reason: String) {
        state.withLock { if $0 == nil { $0 = reason } }
    }

    public var isRequested: Bool { state.withLock { $0 != nil } }

    /// Why the run was asked to stop, if it was.
    public var reason: String? { state.withLock { $0 } }
}
