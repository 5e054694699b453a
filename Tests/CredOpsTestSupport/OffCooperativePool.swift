import Foundation

/// Runs blocking work (process waits, sleeps, socket setup) on a GCD thread, so that it never
/// holds one of Swift's cooperative threads (two on this machine) and stalls every other test.
public func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
