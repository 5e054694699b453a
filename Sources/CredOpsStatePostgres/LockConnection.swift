import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// A connection used for advisory locks only: never pooled, so that no other work runs in the
/// session that holds a lock, and no other session can release it.
///
/// Every query on it is guarded. PostgresNIO writes a query to the channel without a promise,
/// so a query sent on a connection the server has already ended (a force-unlock terminates
/// the holder's session) is never answered and its caller waits forever. Here a query fails as
/// soon as the connection closes, or after `timeout`, whichever comes first.
final class LockConnection: Sendable {
    let connection: PostgresConnection
    /// The races waiting on this connection, failed together when it closes: one close
    /// callback per connection, not one per query (a lock wait polls every 200 ms).
    private let waiting = Mutex<(next: Int, races: [Int: @Sendable () -> Void], closed: Bool)>((0, [:], false))

    init(connection: PostgresConnection) {
        self.connection = connection
        connection.closeFuture.whenComplete { [weak self] _ in
            guard let self else { return }
            let races = self.waiting.withLock { w in
                w.closed = true
                defer { w.races = [:] }
                return Array(w.races.values)
            }
            for fail in races { fail() }
        }
    }

    /// The connection has closed (or was found closed); the session and its locks are gone.
    struct Closed: Error, CustomStringConvertible {
        var description: String { "the lock connection to the state database closed" }
    }

    /// No answer in time; the connection is closed so the session's locks are released.
    struct TimedOut: Error, CustomStringConvertible {
        var timeout: Duration
        var description: String { "the state database did not answer a lock query within \(timeout)" }
    }

    var isClosed: Bool { connection.isClosed }

    func close() async { try? await connection.close() }

    /// The single value of a one-row, one-column query.
    func value<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type, logger: Logger,
                                                  timeout: Duration = .seconds(30)) async throws -> T? {
        try await guarded(timeout: timeout) { connection in
            var result: T?
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(T.self) {
                result = value
            }
            return result
        }
    }

    /// Two values of a one-row query.
    func values<A: PostgresDecodable & Sendable, B: PostgresDecodable & Sendable>(
        _ sql: String, as types: (A.Type, B.Type), logger: Logger, timeout: Duration = .seconds(30)
    ) async throws -> (A, B)? {
        try await guarded(timeout: timeout) { connection in
            var result: (A, B)?
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode((A, B).self) {
                result = row
            }
            return result
        }
    }

    /// Runs `body`, resuming on its result, on the connection's close, or on the deadline.
    /// A body left waiting on a closed channel is cancelled and abandoned (it holds nothing).
    private func guarded<T: Sendable>(timeout: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        guard !connection.isClosed else { throw Closed() }
        let connection = self.connection
        return try await withCheckedThrowingContinuation { continuation in
            let race = Race(continuation)
            // Registered before the body starts, so that a close at any point ends the race.
            let id: Int? = waiting.withLock { w in
                guard !w.closed else { return nil }
                let id = w.next
                w.next += 1
                w.races[id] = { race.finish(.failure(Closed())) }
                return id
            }
            guard let id else {
                race.finish(.failure(Closed()))
                return
            }
            race.onFinish { [self] in _ = self.waiting.withLock { $0.races.removeValue(forKey: id) } }
            race.add(Task {
                do {
                    race.finish(.success(try await body(connection)))
                } catch {
                    // A server that ends the session fails the query before the close is seen.
                    race.finish(.failure(connection.isClosed ? Closed() : error))
                }
            })
            race.add(Task {
                try? await Task.sleep(for: timeout)
                guard !Task.isCancelled else { return }
                if race.finish(.failure(TimedOut(timeout: timeout))) { try? await connection.close() }
            })
        }
    }
}

/// The first of several outcomes resumes the continuation; the other tasks are cancelled.
///
/// Invariant: `continuation` is taken once, under the mutex, and resumed outside it; tasks and
/// the finish action added after the finish run or are cancelled at once.
private final class Race<T: Sendable>: Sendable {
    private struct Inner {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        var onFinish: (@Sendable () -> Void)?
    }
    private let inner: Mutex<Inner>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        inner = Mutex(Inner(continuation: continuation))
    }

    /// Runs once the race is decided (at once if it already is).
    func onFinish(_ body: @escaping @Sendable () -> Void) {
        let finished = inner.withLock { inner in
            if inner.continuation == nil { return true }
            inner.onFinish = body
            return false
        }
        if finished { body() }
    }

    func add(_ task: Task<Void, Never>) {
        let finished = inner.withLock { inner in
            if inner.continuation == nil { return true }
            inner.tasks.append(task)
            return false
        }
        if finished { task.cancel() }
    }

    /// True for the outcome that won.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let taken = inner.withLock { inner -> (CheckedContinuation<T, any Error>, [Task<Void, Never>], (@Sendable () -> Void)?)? in
            guard let continuation = inner.continuation else { return nil }
            inner.continuation = nil
            defer { inner.tasks = []; inner.onFinish = nil }
            return (continuation, inner.tasks, inner.onFinish)
        }
        guard let (continuation, tasks, onFinish) = taken else { return false }
        for task in tasks { task.cancel() }
        onFinish?()
        continuation.resume(with: result)
        return true
    }
}
