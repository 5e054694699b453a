import Foundation

/// Runs blocking work (SQLite calls, fsync) on one dedicated thread, in order, so that it never
/// holds up Swift's cooperative thread pool (two threads on a two-core machine).
///
/// Invariant: `jobs` and `isShutdown` are touched only with `condition` locked.
public final class BlockingExecutor: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var isShutdown = false

    public init(name: String) {
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the executor's thread and returns its result.
    @discardableResult
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            enqueue {
                continuation.resume(with: Result { try body() })
            }
        }
    }

    /// Runs `body` on the executor's thread and waits for it, from synchronous code.
    public func runSync<T>(_ body: @escaping () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<T, any Error>?
        enqueue {
            result = Result { try body() }
            done.signal()
        }
        done.wait()
        return try result!.get()
    }

    /// Queues `body` without waiting for it.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        enqueue(body)
    }

    /// Ends the thread once the queued work is done.
    public func shutdown() {
        condition.lock()
        isShutdown = true
        condition.broadcast()
        condition.unlock()
    }

    private func enqueue(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !isShutdown { condition.wait() }
            if jobs.isEmpty && isShutdown {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }
}
