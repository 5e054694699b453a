import CredOps
import Foundation

/// The default state store: one SQLite file (`.credops/state.db`), WAL mode with
/// synchronous=FULL, every write its own transaction, files 0600 in a 0700 directory.
///
/// All database work runs on one dedicated thread; concurrent callers queue there.
public final class SQLiteStateStore: StateStore {
    public let path: String
    private let executor: BlockingExecutor
    private let database: SQLiteDatabase

    public var displayName: String { "sqlite:\(path)" }

    /// The schema version this build writes; older databases are migrated on open.
    static let schemaVersion: Int64 = 1

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
            guard current < schemaVersion else {
                if current > schemaVersion {
                    throw SQLiteDatabase.Failure(description: "state database \(db.path) was written by a newer credops (schema \(current)); upgrade credops")
                }
                return
            }
            if current < 1 {
                try db.execute(StateSchema.version1)
            }
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
        executor.shutdown()
    }

    // MARK: Managed credentials

    public func managedCredentials(environment: EnvironmentName) async throws -> [ManagedCredential] {
        let db = database
        return try await executor.run {
            try db.query("""
                SELECT project, username, password_fingerprint, grants, pending_redeploy, last_action, last_run_id, last_changed_at
                FROM managed_credentials WHERE environment = ? ORDER BY project, username
                """, [.text(environment.rawValue)]).map { row in
                ManagedCredential(
                    environment: environment, project: ProjectName(row[0].text ?? ""), username: Username(row[1].text ?? ""),
                    passwordFingerprint: row[2].text.map(Fingerprint.init(hex:)),
                    grants: StateCoding.decodeGrants(row[3].text ?? "[]"), pendingRedeploy: row[4].text,
                    lastAction: row[5].text ?? "", lastRunID: row[6].text ?? "",
                    lastChangedAt: StateCoding.date(row[7].text) ?? Date(timeIntervalSince1970: 0))
            }
        }
    }

    public func record(_ credential: ManagedCredential) async throws {
        let db = database
        try await executor.run {
            try db.transaction {
                try db.query("""
                    INSERT INTO managed_credentials (environment, project, username, password_fingerprint, grants, pending_redeploy,
                        last_action, last_run_id, last_changed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (environment, project, username) DO UPDATE SET
                        password_fingerprint = excluded.password_fingerprint, grants = excluded.grants,
                        pending_redeploy = excluded.pending_redeploy, last_action = excluded.last_action,
                        last_run_id = excluded.last_run_id, last_changed_at = excluded.last_changed_at
                    """, [
                        .text(credential.environment.rawValue), .text(credential.project.rawValue), .text(credential.username.rawValue),
                        SQLiteValue(credential.passwordFingerprint?.hex), .text(StateCoding.encodeGrants(credential.grants)),
                        SQLiteValue(credential.pendingRedeploy), .text(credential.lastAction), .text(credential.lastRunID),
                        .text(StateCoding.string(credential.lastChangedAt)),
                    ])
            }
        }
    }

    public func forget(environment: EnvironmentName, project: ProjectName, username: Username) async throws {
        let db = database
        try await executor.run {
            try db.transaction {
                try db.query("DELETE FROM managed_credentials WHERE environment = ? AND project = ? AND username = ?",
                             [.text(environment.rawValue), .text(project.rawValue), .text(username.rawValue)])
            }
        }
    }

    // MARK: History

    public func beginRun(_ run: RunRecord) async throws {
        try await writeRun(run)
    }

    public func finishRun(_ run: RunRecord) async throws {
        try await writeRun(run)
    }

    private func writeRun(_ run: RunRecord) async throws {
        let db = database
        try await executor.run {
            try db.transaction {
                try db.query(StateSchema.upsertRun, StateCoding.runValues(run).map { value in
                    switch value {
                    case .none: return .null
                    case .some(.integer(let n)): return .integer(n)
                    case .some(.text(let s)): return .text(s)
                    }
                })
            }
        }
    }

    public func history(environment: EnvironmentName?, limit: Int) async throws -> [RunRecord] {
        let db = database
        return try await executor.run {
            let rows: [[SQLiteValue]]
            if let environment {
                rows = try db.query("SELECT \(StateSchema.runColumns) FROM runs WHERE environment = ? ORDER BY started_at DESC, run_id DESC LIMIT ?",
                                    [.text(environment.rawValue), .integer(Int64(limit))])
            } else {
                rows = try db.query("SELECT \(StateSchema.runColumns) FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
                                    [.integer(Int64(limit))])
            }
            return rows.map { row in
                StateCoding.run(from: row.map { v -> StateCoding.Value? in
                    switch v {
                    case .null: return nil
                    case .integer(let n): return .integer(n)
                    case .text(let s): return .text(s)
                    }
                })
            }
        }
    }
}
