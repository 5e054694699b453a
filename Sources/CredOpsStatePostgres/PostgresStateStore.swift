import CredOps
import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The shared state store for teams: one PostgreSQL database for every runner.
///
/// Data goes through a connection pool; writes that arrive together share one transaction
/// (group commit, see `write`). Each environment's lock is a
/// session-level advisory lock held on a connection of its own (never a pooled one, so that no
/// other work can release it or run under it); when the holder dies, its connection drops and
/// the lock with it. A row in `locks` names the holder and its database session. While this
/// store holds an environment's lock, every write for that environment checks in its
/// transaction (`FOR SHARE`) that the row still carries this store's lock id: a holder whose
/// lock was force-released can no longer write (fencing).
public final class PostgresStateStore: StateStore {
    public let location: PostgresLocation
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// The logger leadership connections use.
    var leaderLogger: Logger { logger }
    private let held = Mutex<[EnvironmentName: Held]>([:])
    private let pending = Mutex(Pending())
    /// Lock connections whose lock was released cleanly, kept for the next lock: they are never
    /// pooled or used for anything but locks.
    private let idleLockConnections = Mutex<[LockConnection]>([])

    private struct Held: Sendable {
        var lockID: String
        var connection: LockConnection
        var key: Int64
    }

    public var displayName: String { location.description }

    static let schemaVersion: Int64 = StateSchema.currentVersion

    /// Connects, and creates or migrates the schema (safely when many runners start at once).
    public static func open(_ location: PostgresLocation, logger: Logger = Logger(label: "credops.state", factory: { _ in SwiftLogNoOpLogHandler() })) async throws -> PostgresStateStore {
        let client = PostgresClient(configuration: try location.clientConfiguration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = PostgresStateStore(location: location, client: client, runner: runner, logger: logger)
        do {
            try await store.migrate()
        } catch {
            runner.cancel()
            throw StateError.storage("cannot open the state \(location): \(Self.describe(error))")
        }
        return store
    }

    private init(location: PostgresLocation, client: PostgresClient, runner: Task<Void, Never>, logger: Logger) {
        self.location = location
        self.client = client
        self.runner = runner
        self.logger = logger
    }

    /// A short message for a database error (no query text, no password).
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            // The cause (refused connection, TLS failure) says more than the code alone.
            if let underlying = e.underlying { return "\(e.code): \(describe(underlying))" }
            return "\(e.code)"
        }
        return "\(error)"
    }

    /// Schema changes run under a database-wide advisory lock, on a connection of their own.
    private func migrate() async throws {
        let connection = try await PostgresConnection.connect(configuration: try location.connectionConfiguration, id: 1, logger: logger)
        defer { Task { try? await connection.close() } }
        let key = Self.lockKey("credops-schema")
        try await connection.query("SELECT pg_advisory_lock(\(key))", logger: logger)
        do {
            try await connection.query("CREATE TABLE IF NOT EXISTS credops_schema (version BIGINT NOT NULL)", logger: logger)
            var current: Int64 = 0
            for try await (v) in try await connection.query("SELECT COALESCE(MAX(version), 0) FROM credops_schema", logger: logger).decode(Int64.self) {
                current = v
            }
            if current > Self.schemaVersion {
                throw StateError.storage("the state was written by a newer credops (schema \(current)); upgrade credops")
            }
            if current < Self.schemaVersion {
                try await connection.query("BEGIN", logger: logger)
                for (version, ddl) in StateSchema.migrations where current < version {
                    for statement in StateSchema.statements(ddl) {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                try await connection.query("INSERT INTO credops_schema (version) VALUES (\(Self.schemaVersion))", logger: logger)
                try await connection.query("COMMIT", logger: logger)
            }
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(key))", logger: logger)
            throw error
        }
        try await connection.query("SELECT pg_advisory_unlock(\(key))", logger: logger)
    }

    public func close() async {
        for env in held.withLock({ Array($0.keys) }) { await releaseLock(environment: env) }
        for idle in idleLockConnections.withLock({ c in defer { c.removeAll() }; return c }) { await idle.close() }
        runner.cancel()
    }

    /// A store dropped without `close()` (a run that threw) still lets go of its locks: closing
    /// a lock connection ends its session and the advisory lock with it. Each connection is kept
    /// alive until closed.
    deinit {
        let open = held.withLock { $0.values.map(\.connection.connection) } + idleLockConnections.withLock { $0.map(\.connection) }
        for connection in open {
            connection.close().whenComplete { _ in _ = connection }
        }
        runner.cancel()
    }

    /// An idle lock connection that is still open, or a new one.
    private func lockConnection() async throws -> LockConnection {
        while let idle = idleLockConnections.withLock({ $0.popLast() }) {
            if !idle.isClosed { return idle }
        }
        return LockConnection(connection: try await PostgresConnection.connect(configuration: try location.connectionConfiguration, id: 2, logger: logger))
    }

    // MARK: SQL

    /// The shared, portable SQL (with `?` placeholders) as a PostgreSQL query.
    static func query(_ sql: String, _ values: [StateCoding.Value?] = []) -> PostgresQuery {
        var text: [UInt8] = []
        text.reserveCapacity(sql.utf8.count + values.count * 4)
        var n = 0
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "?") {
                n += 1
                text.append(UInt8(ascii: "$"))
                text.append(contentsOf: String(n).utf8)
            } else {
                text.append(byte)
            }
        }
        var binds = PostgresBindings(capacity: values.count)
        for value in values {
            switch value {
            case .none: binds.appendNull()
            case .some(.integer(let i)): binds.append(i)
            case .some(.text(let s)): binds.append(s)
            }
        }
        return PostgresQuery(unsafeSQL: String(decoding: text, as: UTF8.self), binds: binds)
    }

    /// Rows as the shared coding's values.
    static func rows(_ sequence: PostgresRowSequence) async throws -> [[StateCoding.Value?]] {
        try await rows(sequence) { $0 }
    }

    /// Makes each row into a `T` as it arrives, so that a large result is not also held as
    /// rows of column values.
    static func rows<T>(_ sequence: PostgresRowSequence, _ transform: ([StateCoding.Value?]) -> T) async throws -> [T] {
        var result: [T] = []
        var values: [StateCoding.Value?] = []
        for try await row in sequence {
            values.removeAll(keepingCapacity: true)
            for cell in row {
                if cell.bytes == nil {
                    values.append(nil)
                } else if cell.dataType == .int8 || cell.dataType == .int4 || cell.dataType == .int2 {
                    values.append(.integer(try cell.decode(Int64.self)))
                } else {
                    values.append(.text(try cell.decode(String.self)))
                }
            }
            result.append(transform(values))
        }
        return result
    }

    private func read(_ sql: String, _ values: [StateCoding.Value?] = []) async throws -> [[StateCoding.Value?]] {
        try await read(sql, values) { $0 }
    }

    private func read<T>(_ sql: String, _ values: [StateCoding.Value?] = [], row transform: ([StateCoding.Value?]) -> T) async throws -> [T] {
        do {
            return try await Self.rows(try await client.query(Self.query(sql, values), logger: logger), transform)
        } catch {
            throw StateError.storage("state \(location): \(Self.describe(error))")
        }
    }

    /// A write waiting for the next group commit.
    private struct Job: Sendable {
        var fence: (EnvironmentName, String)?
        /// False for an operation's outcome, which its intent covers (see `write`).
        var durable: Bool
        var statements: [(String, [StateCoding.Value?])]
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// Writes queued while a commit runs; `flushing` while a flusher task drains them.
    private struct Pending: Sendable {
        var jobs: [Job] = []
        var flushing = false
    }

    /// Commits `statements` as one unit and returns once they are committed; fenced when this
    /// store holds `environment`'s lock.
    ///
    /// `durable: false` is for a write an intent covers (an operation's outcome): a transaction
    /// of only such writes commits with `synchronous_commit` off, so the server does not wait
    /// for its WAL flush. A crash of the server may take such a commit back (never half of it);
    /// the intent, committed durably before the operation went out, is then still there and the
    /// next run settles it from the live state.
    ///
    /// Group commit: writes that arrive while a transaction is being committed wait for the
    /// next one, which takes them all, so a busy apply pays a commit (and its round trips) per
    /// batch, not per operation. A batch that fails is retried one write per transaction, so a
    /// bad write fails alone.
    private func write(environment: EnvironmentName?, durable: Bool = true, _ statements: [(String, [StateCoding.Value?])]) async throws {
        let fence = environment.flatMap { env in held.withLock { $0[env]?.lockID }.map { (env, $0) } }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startFlusher = pending.withLock { p -> Bool in
                p.jobs.append(Job(fence: fence, durable: durable, statements: statements, continuation: continuation))
                if p.flushing { return false }
                p.flushing = true
                return true
            }
            if startFlusher { Task { await self.flushAll() } }
        }
    }

    private func flushAll() async {
        while true {
            let jobs = pending.withLock { p -> [Job] in
                let taken = p.jobs
                p.jobs = []
                if taken.isEmpty { p.flushing = false }
                return taken
            }
            if jobs.isEmpty { return }
            do {
                try await commit(jobs)
                for job in jobs { job.continuation.resume() }
            } catch {
                if jobs.count == 1 {
                    jobs[0].continuation.resume(throwing: Self.stateError(error, location))
                    continue
                }
                for job in jobs {
                    do {
                        try await commit([job])
                        job.continuation.resume()
                    } catch {
                        job.continuation.resume(throwing: Self.stateError(error, location))
                    }
                }
            }
        }
    }

    /// One transaction for `jobs`: each fence checked once (the row is held `FOR SHARE` until
    /// the commit, so no force-unlock can slip in between), then every statement, coalesced.
    private func commit(_ jobs: [Job]) async throws {
        let logger = self.logger
        let durable = jobs.contains { $0.durable }
        try await client.withTransaction(logger: logger) { connection in
            if !durable { try await connection.query("SET LOCAL synchronous_commit TO off", logger: logger) }
            var checked: [EnvironmentName: String] = [:]
            for job in jobs {
                if let (env, lockID) = job.fence {
                    if checked[env] == nil {
                        let rows = try await Self.rows(try await connection.query(
                            Self.query("SELECT lock_id FROM locks WHERE environment = ? FOR SHARE", [.text(env.rawValue)]), logger: logger))
                        if case .text(let holder)? = rows.first?.first { checked[env] = holder } else { checked[env] = "" }
                    }
                    guard checked[env] == lockID else { throw StateError.fenced(env) }
                }
            }
            for (sql, values) in Self.coalesced(jobs.flatMap(\.statements)) {
                try await connection.query(Self.query(sql, values), logger: logger)
            }
        }
    }

    /// The statements of one transaction in fewer round trips, with the same end state: runs of
    /// upserts of managed credentials become multi-row upserts (a key's last row wins, as it
    /// would one by one), and the intents it completes are deleted by one statement at the end
    /// (an intent is recorded before its operation, so no statement after its delete can need
    /// it). A group commit of N completed operations costs a few round trips, not 2N.
    static func coalesced(_ statements: [(String, [StateCoding.Value?])]) -> [(String, [StateCoding.Value?])] {
        var out: [(String, [StateCoding.Value?])] = []
        var completed: [StateCoding.Value?] = []
        var upserts: [[StateCoding.Value?]] = []
        func flushUpserts() {
            guard !upserts.isEmpty else { return }
            // The last row of each key, in the order the keys first came.
            var last: [[StateCoding.Value?]: Int] = [:]
            for (i, row) in upserts.enumerated() { last[Array(row.prefix(3))] = i }
            let rows = upserts.enumerated().filter { last[Array($0.element.prefix(3))] == $0.offset }.map(\.element)
            // Well below PostgreSQL's 65,535 parameters a statement.
            for start in stride(from: 0, to: rows.count, by: 2_000) {
                let chunk = rows[start..<min(rows.count, start + 2_000)]
                out.append((chunk.count == 1 ? StateSchema.upsertManaged : StateSchema.upsertManaged(rows: chunk.count), chunk.flatMap { $0 }))
            }
            upserts = []
        }
        for (sql, values) in statements {
            if sql == StateSchema.deleteIntent {
                completed += values
            } else if sql == StateSchema.upsertManaged && values.count == StateSchema.upsertManagedColumns {
                upserts.append(values)
            } else {
                flushUpserts()
                out.append((sql, values))
            }
        }
        flushUpserts()
        for start in stride(from: 0, to: completed.count, by: 10_000) {
            let chunk = Array(completed[start..<min(completed.count, start + 10_000)])
            out.append(("DELETE FROM intents WHERE intent_id IN (" + Array(repeating: "?", count: chunk.count).joined(separator: ", ") + ")", chunk))
        }
        return out
    }

    static func stateError(_ error: any Error, _ location: PostgresLocation) -> any Error {
        if let error = error as? StateError { return error }
        if let inner = (error as? PostgresTransactionError)?.closureError as? StateError { return inner }
        return StateError.storage("state \(location): \(describe(error))")
    }

    // MARK: Managed credentials

    public func environments() async throws -> [EnvironmentName] {
        try await read(StateSchema.environmentsQuery).compactMap { row in
            if case .text(let s)? = row.first { return EnvironmentName(s) }
            return nil
        }
    }

    public func managedCredentials(environment: EnvironmentName) async throws -> [ManagedCredential] {
        var shared = StateCoding.SharedValues()
        return try await read("SELECT \(StateSchema.managedColumns) FROM managed_credentials WHERE environment = ? \(StateSchema.managedOrder)",
                              [.text(environment.rawValue)]) { StateCoding.managed(from: $0, environment: environment, shared: &shared) }
    }

    public func record(_ credential: ManagedCredential) async throws {
        try await write(environment: credential.environment, [(StateSchema.upsertManaged, StateCoding.managedValues(credential))])
    }

    public func forget(environment: EnvironmentName, namespace: ProjectName, key: CredentialKey) async throws {
        try await write(environment: environment, [Self.deleteManaged(environment, namespace, key)])
    }

    static func deleteManaged(_ e: EnvironmentName, _ p: ProjectName, _ u: CredentialKey) -> (String, [StateCoding.Value?]) {
        (StateSchema.deleteManaged, [.text(e.rawValue), .text(p.rawValue), .text(u.rawValue)])
    }

    // MARK: Intents

    public func recordIntents(_ intents: [Intent]) async throws {
        guard let environment = intents.first?.environment else { return }
        // Many rows per statement (PostgreSQL takes up to 65,535 parameters).
        var statements: [(String, [StateCoding.Value?])] = []
        let columns = StateSchema.intentColumns.split(separator: ",").count
        for chunk in stride(from: 0, to: intents.count, by: 1000) {
            let slice = intents[chunk..<min(intents.count, chunk + 1000)]
            let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
            let sql = "INSERT INTO intents (\(StateSchema.intentColumns)) VALUES " + Array(repeating: row, count: slice.count).joined(separator: ", ")
                + " ON CONFLICT (intent_id) DO NOTHING"
            statements.append((sql, slice.flatMap(StateCoding.intentValues)))
        }
        try await write(environment: environment, statements)
    }

    public func complete(_ outcomes: [(intent: Intent, outcome: StateOutcome)]) async throws {
        for (environment, group) in StateCoding.byEnvironment(outcomes) {
            var statements: [(String, [StateCoding.Value?])] = []
            for (intent, outcome) in group {
                switch outcome {
                case .record(let credential): statements.append((StateSchema.upsertManaged, StateCoding.managedValues(credential)))
                case .forget: statements.append(Self.deleteManaged(intent.environment, intent.namespace, intent.key))
                case .unchanged: break
                }
                statements.append((StateSchema.deleteIntent, [.text(intent.id)]))
            }
            try await write(environment: environment, durable: false, statements)
        }
    }

    public func pendingIntents(environment: EnvironmentName) async throws -> [Intent] {
        try await read("SELECT \(StateSchema.intentColumns) FROM intents WHERE environment = ? ORDER BY created_at, intent_id",
                       [.text(environment.rawValue)]).compactMap(StateCoding.intent(from:))
    }

    // MARK: History

    public func beginRun(_ run: RunRecord) async throws {
        try await write(environment: nil, [(StateSchema.upsertRun, StateCoding.runValues(run))])
    }

    public func finishRun(_ run: RunRecord) async throws {
        try await write(environment: nil, [(StateSchema.upsertRun, StateCoding.runValues(run))])
    }

    public func history(environment: EnvironmentName?, limit: Int) async throws -> [RunRecord] {
        let rows: [[StateCoding.Value?]]
        if let environment {
            rows = try await read("SELECT \(StateSchema.runColumns) FROM runs WHERE environment = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
                                  [.text(environment.rawValue), .integer(Int64(limit))])
        } else {
            rows = try await read("SELECT \(StateSchema.runColumns) FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?", [.integer(Int64(limit))])
        }
        return rows.map(StateCoding.run(from:))
    }

    // MARK: Locks

    /// The advisory lock key of a name: 63 bits of its SHA-256 (non-negative, so that the
    /// (classid, objid) pair of `pg_locks` maps back to it plainly).
    static func lockKey(_ name: String) -> Int64 {
        let digest = Array(SHA256.hash(data: Array(name.utf8)))
        return digest.prefix(8).reduce(Int64(0)) { ($0 << 8) | Int64($1) } & Int64.max
    }

    /// The advisory lock key of an environment's lock.
    static func lockKey(environment: EnvironmentName) -> Int64 { lockKey("credops-environment:\(environment.rawValue)") }

    public func acquireLock(_ info: LockInfo, timeout: Duration, shouldStop: @escaping @Sendable () -> Bool) async throws {
        let key = Self.lockKey(environment: info.environment)
        let start = ContinuousClock.now
        var connection: LockConnection?
        var lostConnections = 0
        while true {
            do {
                let current: LockConnection
                if let connection { current = connection } else { current = try await lockConnection() }
                connection = current
                let answer = try await current.values("SELECT pg_try_advisory_lock(\(key)), pg_backend_pid()::bigint",
                                                      as: (Bool.self, Int64.self), logger: logger)
                if let (locked, session) = answer, locked {
                    var values = StateCoding.lockValues(info)
                    values.append(.integer(session))
                    do {
                        try await write(environment: nil, [(
                            "INSERT INTO locks (\(StateSchema.lockColumns), holder_session) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                                + "ON CONFLICT (environment) DO UPDATE SET lock_id = excluded.lock_id, holder_user = excluded.holder_user, "
                                + "holder_host = excluded.holder_host, pid = excluded.pid, command = excluded.command, since = excluded.since, "
                                + "holder_session = excluded.holder_session", values)])
                    } catch {
                        // Not recorded, so not held: ending the session lets go of the advisory lock.
                        await current.close()
                        throw error
                    }
                    held.withLock { $0[info.environment] = Held(lockID: info.lockID, connection: current, key: key) }
                    return
                }
            } catch let error as StateError {
                throw error
            } catch where (error is LockConnection.Closed || error is LockConnection.TimedOut) && lostConnections < 2 {
                // The server ended that session (a restart, an idle timeout), or it stopped
                // answering (the connection is closed by then): try a new one.
                lostConnections += 1
                connection = nil
                continue
            } catch {
                await connection?.close()
                throw StateError.storage("cannot lock \(info.environment) in the state \(location): \(Self.describe(error))")
            }
            let waited = ContinuousClock.now - start
            if waited >= timeout || shouldStop() || Task.isCancelled {
                if let connection { idleLockConnections.withLock { $0.append(connection) } }
                let holder = await lockHolder(info.environment)
                throw StateError.locked(holder, waited: waited)
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    public func releaseLock(environment: EnvironmentName) async {
        guard let h = held.withLock({ $0.removeValue(forKey: environment) }) else { return }
        try? await write(environment: nil, [("DELETE FROM locks WHERE environment = ? AND lock_id = ?", [.text(environment.rawValue), .text(h.lockID)])])
        // A connection whose session was ended (force-unlocked) or that fails to unlock is closed:
        // the session, and with it the lock, is then gone for sure.
        let unlocked = (try? await h.connection.value("SELECT pg_advisory_unlock(\(h.key))", as: Bool.self, logger: logger, timeout: .seconds(10))) ?? nil
        if unlocked == true {
            idleLockConnections.withLock { $0.append(h.connection) }
        } else {
            await h.connection.close()
        }
    }

    public func locks() async throws -> [LockInfo] {
        try await read("SELECT \(StateSchema.lockColumns) FROM locks ORDER BY environment").compactMap(StateCoding.lock(from:))
    }

    public func forceUnlock(environment: EnvironmentName, lockID: String) async throws {
        // The row goes only while it names this lock id; it tells which session held the lock.
        let deleted = try await read("DELETE FROM locks WHERE environment = ? AND lock_id = ? RETURNING holder_session",
                                     [.text(environment.rawValue), .text(lockID)])
        guard let row = deleted.first else { throw StateError.noSuchLock(environment, lockID) }
        guard case .integer(let session)? = row.first else { return }
        // A live but stuck holder keeps its advisory lock until its session ends. End that
        // session only if it still holds this environment's lock: a holder that released has
        // put its connection back to serve other locks, and a dead one's number may be reused.
        let key = Self.lockKey(environment: environment)
        let holders = try await read(Self.advisoryHolders + " AND pid = ?", [.integer(key), .integer(session)])
        guard !holders.isEmpty else { return }
        do {
            _ = try await read("SELECT pg_terminate_backend(CAST(? AS integer))::text", [.integer(session)])
        } catch {
            throw StateError.storage("the lock of \(environment) is released, but its holder's database session \(session) still holds "
                                     + "the advisory lock and could not be ended (\(error)); a database administrator can end it: "
                                     + "SELECT pg_terminate_backend(\(session))")
        }
    }

    /// Sessions holding an advisory lock by key (bound first) in this database.
    static let advisoryHolders = "SELECT pid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        + "AND ((classid::bigint << 32) | objid::bigint) = ?"

    /// True when nobody holds the environment's advisory lock (a recorded holder is then gone).
    public func isLockFree(_ environment: EnvironmentName) async -> Bool {
        let key = Self.lockKey(environment: environment)
        guard let rows = try? await read(Self.advisoryHolders, [.integer(key)]) else { return false }
        return rows.isEmpty
    }
}
