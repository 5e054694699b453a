import Foundation

/// Runs blocking work (process waits, pipe reads, socket setup) on a thread of its own.
///
/// Not on Swift's cooperative pool (two threads here), and not on `DispatchQueue.global()`
/// either: on Linux libdispatch cannot see a blocked worker, keeps its pool at the CPU count,
/// and the cooperative pool lives on the same machinery, so blocking GCD work starves every
/// other test.
public func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Runs `body` on a new thread and returns at once.
public func detachedThread(_ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.stackSize = 1 << 20
    thread.start()
}
