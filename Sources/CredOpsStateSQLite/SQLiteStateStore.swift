import CredOps
import Foundation

/// The default state store: one SQLite file (`.credops/state.db`), WAL mode with
/// synchronous=FULL, files 0600 in a 0700 directory.
///
/// All database work runs on one dedicated thread. Writes use group commit: writes that arrive
/// while a commit is on disk are committed together in the next transaction, each inside its
/// own savepoint (so one failing write does not take the others with it), and no caller is
/// answered before the transaction holding its write is durable.
///
/// Locks: one file per environment under `locks/` beside the database, held with `flock`, so
/// the operating system releases it when the holder dies; a row in `locks` names the holder.
/// While this store holds an environment's lock, every write for that environment checks, in
/// its transaction, that the row still carries this store's lock id (fencing).
public final class SQLiteStateStore: StateStore {
    public let path: String
    private let executor: BlockingExecutor
    private let database: SQLiteDatabase
    private let batch = WriteBatch()
    private let held = HeldLocks()

    public var displayName: String { "sqlite:\(path)" }

    /// The schema version this build writes; older databases are migrated on open.
    static let schemaVersion: Int64 = StateSchema.currentVersion

    /// Opens (creating if needed) the state database at `path`.
    public static func open(path: String) async throws -> SQLiteStateStore {
        let executor = BlockingExecutor(name: "credops-sqlite")
        do {
            let database = try await executor.run { () throws -> SQLiteDatabase in
                try SecureFiles.createPrivateFile(path)
                let db = try SQLiteDatabase(path: path)
                try db.execute("PRAGMA busy_timeout = 10000")
                try db.execute("PRAGMA journal_mode = WAL")
                try db.execute("PRAGMA synchronous = FULL")
                try db.execute("PRAGMA foreign_keys = ON")
                try migrate(db)
                return db
            }
            return SQLiteStateStore(path: path, executor: executor, database: database)
        } catch {
            executor.shutdown()
            throw error
        }
    }

    private init(path: String, executor: BlockingExecutor, database: SQLiteDatabase) {
        self.path = path
        self.executor = executor
        self.database = database
    }

    static func migrate(_ db: SQLiteDatabase) throws {
        try db.transaction {
            try db.execute("CREATE TABLE IF NOT EXISTS credops_schema (version INTEGER NOT NULL)")
            let current = try db.query("SELECT MAX(version) FROM credops_schema").first?.first?.integer ?? 0
            if current > schemaVersion {
                throw SQLiteDatabase.Failure(description: "state database \(db.path) was written by a newer credops (schema \(current)); upgrade credops")
            }
            guard current < schemaVersion else { return }
            for (version, sql) in StateSchema.migrations where current < version { try db.execute(sql) }
            try db.query("INSERT INTO credops_schema (version) VALUES (?)", [.integer(schemaVersion)])
        }
    }

    /// The journal mode and synchronous level in effect (for checks and `state` commands).
    public func settings() async throws -> (journalMode: String, synchronous: Int) {
        let db = database
        return try await executor.run {
            let mode = try db.query("PRAGMA journal_mode").first?.first?.text ?? ""
            let sync = try db.query("PRAGMA synchronous").first?.first?.integer ?? -1
            return (mode, Int(sync))
        }
    }

    public func close() async {
        for env in held.environments { await releaseLock(environment: env) }
        executor.shutdown()
    }

    // MARK: Group commit

    /// Queues `body` for the next transaction and returns once that transaction is committed.
    /// - Parameters:
    ///   - environment: the environment written; fenced when this store holds its lock.
    ///   - durable: false for a write an intent covers (an operation's outcome): its commit
    ///     survives a crash of the process but need not survive a power loss, since the intent,
    ///     committed durably before the operation went out, makes the next run settle it from
    ///     the server. A transaction waits for the disk only when one of its writes needs it.
    private func write(environment: EnvironmentName?, durable: Bool = true,
                       _ body: @escaping @Sendable (SQLiteDatabase) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let fence = environment.flatMap { env in held.lockID(env).map { (env, $0) } }
            if batch.add(WriteBatch.Job(fence: fence, durable: durable, body: body, continuation: continuation)) {
                let db = database
                let batch = self.batch
                executor.execute { Self.flush(batch, db) }
            }
        }
    }

    /// Commits every queued write in one transaction (runs on the executor thread). Writes
    /// that arrive while a commit runs wait for the next one (in an apply, each environment's
    /// outcome writer already hands over its outcomes as one write).
    private static func flush(_ batch: WriteBatch, _ db: SQLiteDatabase) {
        let jobs = batch.takeAll()
        guard !jobs.isEmpty else { return }
        var results: [Result<Void, any Error>] = []
        // WAL with synchronous NORMAL: the commit is in the WAL file (safe from a crash of this
        // process) without waiting for the disk. A durable commit makes sure of FULL before it
        // begins (a failure fails it), and the connection goes back to FULL after an outcome
        // commit, so that `settings()` tells the level durable writes get.
        let durable = jobs.contains { $0.durable }
        defer { if !durable { try? batch.setSynchronous(full: true, db) } }
        do {
            // Only FULL must hold: an outcome commit left at FULL is merely slower.
            if durable { try batch.setSynchronous(full: true, db) } else { try? batch.setSynchronous(full: false, db) }
            try db.execute("BEGIN IMMEDIATE")
            // The write lock is held from BEGIN IMMEDIATE to COMMIT: no other process can take
            // a lock row away in between, so each environment's fence is read once (again after
            // an unfenced write, which may be this process's own lock change).
            var holders: [EnvironmentName: String] = [:]
            for job in jobs {
                do {
                    // Prepared once and kept (query caches statements; exec parses every time).
                    _ = try db.query("SAVEPOINT credops_write")
                    do {
                        if let (env, lockID) = job.fence {
                            if holders[env] == nil {
                                holders[env] = try db.query("SELECT lock_id FROM locks WHERE environment = ?", [.text(env.rawValue)]).first?.first?.text ?? ""
                            }
                            guard holders[env] == lockID else { throw StateError.fenced(env) }
                        }
                        try job.body(db)
                        if job.fence == nil { holders.removeAll() }
                        _ = try db.query("RELEASE credops_write")
                        results.append(.success(()))
                    } catch {
                        _ = try db.query("ROLLBACK TO credops_write")
                        _ = try db.query("RELEASE credops_write")
                        results.append(.failure(error))
                    }
                }
            }
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            results = jobs.map { _ in .failure(error) }
        }
        for (job, result) in zip(jobs, results) { job.continuation.resume(with: result) }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> T) async throws -> T {
        let db = database
        return try await executor.run { try body(db) }
    }

    // MARK: Managed credentials

    public func environments() async throws -> [EnvironmentName] {
        try await read { db in try db.query(StateSchema.environmentsQuery).compactMap { $0.first?.text.map(EnvironmentName.init) } }
    }

    public func managedCredentials(environment: EnvironmentName) async throws -> [ManagedCredential] {
        try await read { db in
            var shared = StateCoding.SharedValues()
            return try db.query("SELECT \(StateSchema.managedColumns) FROM managed_credentials WHERE environment = ? \(StateSchema.managedOrder)",
                                [.text(environment.rawValue)]) { StateCoding.managed(from: $0.map(\.codingValue), environment: environment, shared: &shared) }
        }
    }

    public func record(_ credential: ManagedCredential) async throws {
        try await write(environment: credential.environment) { db in try Self.upsert(credential, db) }
    }

    public func forget(environment: EnvironmentName, namespace: ProjectName, key: CredentialKey) async throws {
        try await write(environment: environment) { db in try Self.delete(environment, namespace, key, db) }
    }

    private static func upsert(_ credential: ManagedCredential, _ db: SQLiteDatabase) throws {
        try db.query(StateSchema.upsertManaged, StateCoding.managedValues(credential).map(SQLiteValue.init))
    }

    private static func delete(_ environment: EnvironmentName, _ namespace: ProjectName, _ key: CredentialKey, _ db: SQLiteDatabase) throws {
        try db.query(StateSchema.deleteManaged, [.text(environment.rawValue), .text(namespace.rawValue), .text(key.rawValue)])
    }

    // MARK: Intents

    public func recordIntents(_ intents: [Intent]) async throws {
        guard let environment = intents.first?.environment else { return }
        try await write(environment: environment) { db in
            for intent in intents {
                try db.query("INSERT OR REPLACE INTO intents (\(StateSchema.intentColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             StateCoding.intentValues(intent).map(SQLiteValue.init))
            }
        }
    }

    public func complete(_ outcomes: [(intent: Intent, outcome: StateOutcome)]) async throws {
        for (environment, group) in StateCoding.byEnvironment(outcomes) {
            // The intents are deleted in the same transaction: if a power loss takes this
            // commit back, they are there again and the next run settles them.
            try await write(environment: environment, durable: false) { db in
                for (intent, outcome) in group {
                    switch outcome {
                    case .record(let credential): try Self.upsert(credential, db)
                    case .forget: try Self.delete(intent.environment, intent.namespace, intent.key, db)
                    case .unchanged: break
                    }
                    try db.query(StateSchema.deleteIntent, [.text(intent.id)])
                }
            }
        }
    }

    public func pendingIntents(environment: EnvironmentName) async throws -> [Intent] {
        try await read { db in
            try db.query("SELECT \(StateSchema.intentColumns) FROM intents WHERE environment = ? ORDER BY created_at, intent_id",
                         [.text(environment.rawValue)]).compactMap { StateCoding.intent(from: $0.map(\.codingValue)) }
        }
    }

    // MARK: History

    public func beginRun(_ run: RunRecord) async throws { try await writeRun(run) }

    public func finishRun(_ run: RunRecord) async throws { try await writeRun(run) }

    private func writeRun(_ run: RunRecord) async throws {
        // History is not fenced: a run whose lock was taken away still says how it ended.
        try await write(environment: nil) { db in
            try db.query(StateSchema.upsertRun, StateCoding.runValues(run).map(SQLiteValue.init))
        }
    }

    public func history(environment: EnvironmentName?, limit: Int) async throws -> [RunRecord] {
        try await read { db in
            let rows: [[SQLiteValue]]
            if let environment {
                rows = try db.query("SELECT \(StateSchema.runColumns) FROM runs WHERE environment = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
                                    [.text(environment.rawValue), .integer(Int64(limit))])
            } else {
                rows = try db.query("SELECT \(StateSchema.runColumns) FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
                                    [.integer(Int64(limit))])
            }
            return rows.map { StateCoding.run(from: $0.map(\.codingValue)) }
        }
    }

    // MARK: Locks

    private var lockDirectory: String { ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("locks") }

    private func lockFile(_ environment: EnvironmentName) -> String {
        (lockDirectory as NSString).appendingPathComponent("\(environment.rawValue).lock")
    }

    public func acquireLock(_ info: LockInfo, timeout: Duration, shouldStop: @escaping @Sendable () -> Bool) async throws {
        try SecureFiles.ensureDirectory(lockDirectory)
        let file = lockFile(info.environment)
        let start = ContinuousClock.now
        while true {
            if let fd = FileLock.tryLock(file) {
                do {
                    try await write(environment: nil) { db in
                        try db.query("INSERT OR REPLACE INTO locks (\(StateSchema.lockColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     StateCoding.lockValues(info).map(SQLiteValue.init))
                    }
                } catch {
                    FileLock.unlock(fd)
                    throw error
                }
                held.add(info.environment, lockID: info.lockID, fd: fd)
                return
            }
            let waited = ContinuousClock.now - start
            if waited >= timeout || shouldStop() {
                let holder = await lockHolder(info.environment)
                throw StateError.locked(holder, waited: waited)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    public func releaseLock(environment: EnvironmentName) async {
        guard let (lockID, fd) = held.remove(environment) else { return }
        try? await write(environment: nil) { db in
            try db.query("DELETE FROM locks WHERE environment = ? AND lock_id = ?", [.text(environment.rawValue), .text(lockID)])
        }
        FileLock.unlock(fd)
    }

    public func locks() async throws -> [LockInfo] {
        try await read { db in
            try db.query("SELECT \(StateSchema.lockColumns) FROM locks ORDER BY environment").compactMap { StateCoding.lock(from: $0.map(\.codingValue)) }
        }
    }

    public func forceUnlock(environment: EnvironmentName, lockID: String) async throws {
        let file = lockFile(environment)
        try await write(environment: nil) { db in
            let current = try db.query("SELECT lock_id FROM locks WHERE environment = ?", [.text(environment.rawValue)]).first?.first?.text
            guard current == lockID else { throw StateError.noSuchLock(environment, lockID) }
            try db.query("DELETE FROM locks WHERE environment = ?", [.text(environment.rawValue)])
            // A live holder keeps its flock on the old file; the next run locks a new one, and the
            // old holder's writes are fenced because the row is gone.
            unlink(file)
        }
    }

    /// True when nobody holds the environment's file lock (a recorded holder is then dead).
    public func isLockFree(_ environment: EnvironmentName) -> Bool {
        guard let fd = FileLock.tryLock(lockFile(environment), create: false) else {
            return !FileManager.default.fileExists(atPath: lockFile(environment))
        }
        FileLock.unlock(fd)
        return true
    }
}

/// Writes waiting for the next group commit.
///
/// Invariant: `jobs` and `scheduled` are touched only with `lock` held.
private final class WriteBatch: @unchecked Sendable {
    struct Job {
        var fence: (EnvironmentName, String)?
        var durable: Bool
        var body: @Sendable (SQLiteDatabase) throws -> Void
        var continuation: CheckedContinuation<Void, any Error>
    }

    private let lock = NSLock()
    private var jobs: [Job] = []
    private var scheduled = false
    /// The connection's synchronous level as last set; only the executor thread touches it.
    private var synchronousFull = true

    /// Sets `PRAGMA synchronous` (exec, not a cached statement: a pragma takes effect when it
    /// is prepared) when it differs; runs on the executor thread.
    func setSynchronous(full: Bool, _ db: SQLiteDatabase) throws {
        guard full != synchronousFull else { return }
        try db.execute(full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        synchronousFull = full
    }

    /// Adds a job; true when the caller must schedule a flush.
    func add(_ job: Job) -> Bool {
        lock.withLock {
            jobs.append(job)
            if scheduled { return false }
            scheduled = true
            return true
        }
    }

    func takeAll() -> [Job] {
        lock.withLock {
            let taken = jobs
            jobs = []
            scheduled = false
            return taken
        }
    }
}

/// The environment locks this store holds: lock id and the open, flocked file.
private final class HeldLocks: @unchecked Sendable {
    private let lock = NSLock()
    private var held: [EnvironmentName: (String, Int32)] = [:]

    func add(_ env: EnvironmentName, lockID: String, fd: Int32) { lock.withLock { held[env] = (lockID, fd) } }
    func lockID(_ env: EnvironmentName) -> String? { lock.withLock { held[env]?.0 } }
    func remove(_ env: EnvironmentName) -> (String, Int32)? { lock.withLock { held.removeValue(forKey: env) } }
    var environments: [EnvironmentName] { lock.withLock { Array(held.keys) } }
}

/// `flock` on a lock file: released by the operating system when the process dies.
enum FileLock {
    /// Opens and locks `path` without waiting; nil when someone else holds it.
    static func tryLock(_ path: String, create: Bool = true) -> Int32? {
        while true {
            let fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o600)
            guard fd >= 0 else { return nil }
            fchmod(fd, 0o600)
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                return nil
            }
            // A force-unlock may have removed the file between open and flock: lock the new one.
            var locked = stat(), current = stat()
            if fstat(fd, &locked) == 0, stat(path, &current) == 0, locked.st_ino == current.st_ino { return fd }
            flock(fd, LOCK_UN)
            close(fd)
            if !create { return nil }
        }
    }

    static func unlock(_ fd: Int32) {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

extension SQLiteValue {
    init(_ value: StateCoding.Value?) {
        switch value {
        case .none: self = .null
        case .some(.integer(let n)): self = .integer(n)
        case .some(.text(let s)): self = .text(s)
        }
    }

    var codingValue: StateCoding.Value? {
        switch self {
        case .null: nil
        case .integer(let n): .integer(n)
        case .text(let s): .text(s)
        }
    }
}
