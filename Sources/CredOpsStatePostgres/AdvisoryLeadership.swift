import CredOps
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Leadership among replicas sharing a PostgreSQL state: a session-level advisory lock held on
/// a connection of its own. A leader that dies (SIGKILL, a lost machine) ends its session and
/// the lock with it, so a standby's next try succeeds; a leader whose connection stops
/// answering within `checkTimeout` is told it no longer leads (and closes the connection, which
/// ends the session) before anyone else can lead.
final class AdvisoryLeadership: Leadership {
    private let location: PostgresLocation
    private let key: Int64
    private let checkTimeout: Duration
    private let logger: Logger
    private let held = Mutex<LockConnection?>(nil)

    init(location: PostgresLocation, name: String, checkTimeout: Duration, logger: Logger) {
        self.location = location
        self.key = PostgresStateStore.lockKey("credops-leader:\(name)")
        self.checkTimeout = checkTimeout
        self.logger = logger
    }

    func tryLead() async throws -> Bool {
        if held.withLock({ $0 != nil }) { return await isStillLeading() }
        let connection: LockConnection
        do {
            connection = LockConnection(connection: try await PostgresConnection.connect(configuration: try location.connectionConfiguration,
                                                                                          id: 3, logger: logger))
        } catch {
            throw StateError.storage("cannot reach the state \(location) to lead: \(PostgresStateStore.describe(error))")
        }
        do {
            let locked = try await connection.value("SELECT pg_try_advisory_lock(\(key))", as: Bool.self, logger: logger, timeout: checkTimeout)
            guard locked == true else {
                await connection.close()
                return false
            }
            held.withLock { $0 = connection }
            return true
        } catch {
            await connection.close()
            throw StateError.storage("cannot take the leader lock in the state \(location): \(PostgresStateStore.describe(error))")
        }
    }

    func isStillLeading() async -> Bool {
        guard let connection = held.withLock({ $0 }) else { return false }
        // The lock lives as long as the session: a session that answers still holds it.
        let alive = (try? await connection.value("SELECT 1", as: Int32.self, logger: logger, timeout: checkTimeout)) == 1
        if !alive {
            // Closed so that the session (and the lock) ends on the server as soon as it can.
            held.withLock { $0 = nil }
            await connection.close()
        }
        return alive
    }

    func release() async {
        guard let connection = held.withLock({ c in defer { c = nil }; return c }) else { return }
        _ = try? await connection.value("SELECT pg_advisory_unlock(\(key))", as: Bool.self, logger: logger, timeout: .seconds(5))
        await connection.close()
    }
}

extension PostgresStateStore: LeaderElecting {
    public func leadership(name: String, checkTimeout: Duration) -> any Leadership {
        AdvisoryLeadership(location: location, name: name, checkTimeout: checkTimeout, logger: leaderLogger)
    }
}
