import Foundation

/// SQL shared by the state stores. Portable SQL only (SQLite and PostgreSQL both run it):
/// TEXT for strings, JSON and timestamps (ISO 8601 UTC, which sorts correctly), BIGINT for numbers.
public enum StateSchema {
    public static let version1 = """
        CREATE TABLE managed_credentials (
            environment TEXT NOT NULL,
            project TEXT NOT NULL,
            username TEXT NOT NULL,
            password_fingerprint TEXT,
            grants TEXT NOT NULL DEFAULT '[]',
            pending_redeploy TEXT,
            last_action TEXT NOT NULL,
            last_run_id TEXT NOT NULL,
            last_changed_at TEXT NOT NULL,
            PRIMARY KEY (environment, project, username)
        );
        CREATE TABLE runs (
            run_id TEXT NOT NULL,
            environment TEXT NOT NULL,
            command TEXT NOT NULL,
            user_name TEXT NOT NULL,
            host TEXT NOT NULL,
            pid BIGINT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            success BIGINT,
            message TEXT,
            created BIGINT NOT NULL DEFAULT 0,
            updated BIGINT NOT NULL DEFAULT 0,
            password_changed BIGINT NOT NULL DEFAULT 0,
            granted BIGINT NOT NULL DEFAULT 0,
            revoked BIGINT NOT NULL DEFAULT 0,
            deleted BIGINT NOT NULL DEFAULT 0,
            adopted BIGINT NOT NULL DEFAULT 0,
            failed BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, environment)
        );
        CREATE INDEX runs_by_environment ON runs (environment, started_at);
        """

    /// Intents and locks (schema version 2).
    public static let version2 = """
        CREATE TABLE intents (
            intent_id TEXT NOT NULL PRIMARY KEY,
            environment TEXT NOT NULL,
            project TEXT NOT NULL,
            username TEXT NOT NULL,
            action TEXT NOT NULL,
            run_id TEXT NOT NULL,
            password_fingerprint TEXT,
            fields_digest TEXT,
            grants TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        );
        CREATE INDEX intents_by_environment ON intents (environment);
        CREATE TABLE locks (
            environment TEXT NOT NULL PRIMARY KEY,
            lock_id TEXT NOT NULL,
            holder_user TEXT NOT NULL,
            holder_host TEXT NOT NULL,
            pid BIGINT NOT NULL,
            command TEXT NOT NULL,
            since TEXT NOT NULL
        );
        """

    /// The holder's database session, so a force-unlock can end it (schema version 3).
    public static let version3 = """
        ALTER TABLE locks ADD COLUMN holder_session BIGINT;
        """

    /// The generic core (schema version 4): a credential is addressed by (environment,
    /// namespace, key) and remembers the id its server gave it; the secret's fingerprint is no
    /// longer a password's; a run's counts are one JSON object keyed by kind, so that a new
    /// action needs no new column. Portable: both engines rename and drop columns in place.
    public static let version4 = """
        ALTER TABLE managed_credentials RENAME COLUMN project TO namespace;
        ALTER TABLE managed_credentials RENAME COLUMN username TO credential_key;
        ALTER TABLE managed_credentials RENAME COLUMN password_fingerprint TO secret_fingerprint;
        ALTER TABLE managed_credentials ADD COLUMN server_id TEXT;
        ALTER TABLE intents RENAME COLUMN project TO namespace;
        ALTER TABLE intents RENAME COLUMN username TO credential_key;
        ALTER TABLE intents RENAME COLUMN password_fingerprint TO secret_fingerprint;
        ALTER TABLE intents ADD COLUMN server_id TEXT;
        ALTER TABLE runs ADD COLUMN counts TEXT NOT NULL DEFAULT '{}';
        UPDATE runs SET counts = '{"adopted":' || adopted || ',"created":' || created || ',"deleted":' || deleted
            || ',"failed":' || failed || ',"granted":' || granted || ',"revoked":' || revoked
            || ',"secretChanged":' || password_changed || ',"updated":' || updated || '}';
        ALTER TABLE runs DROP COLUMN created;
        ALTER TABLE runs DROP COLUMN updated;
        ALTER TABLE runs DROP COLUMN password_changed;
        ALTER TABLE runs DROP COLUMN granted;
        ALTER TABLE runs DROP COLUMN revoked;
        ALTER TABLE runs DROP COLUMN deleted;
        ALTER TABLE runs DROP COLUMN adopted;
        ALTER TABLE runs DROP COLUMN failed
        """

    /// Generated secrets (schema version 5): whether credops delivered the secret a credential
    /// holds, when that secret was made (neither is the secret), and the replaced credentials
    /// still to be deleted.
    public static let version5 = """
        ALTER TABLE managed_credentials ADD COLUMN secret_delivery TEXT;
        ALTER TABLE managed_credentials ADD COLUMN secret_created_at TEXT;
        ALTER TABLE managed_credentials ADD COLUMN retiring TEXT NOT NULL DEFAULT '[]'
        """

    /// Every migration, in order: a store runs those above the version it finds.
    public static let migrations: [(version: Int64, sql: String)] = [(1, version1), (2, version2), (3, version3), (4, version4), (5, version5)]

    /// The schema version this build writes.
    public static var currentVersion: Int64 { migrations.last!.version }

    /// A migration's statements one by one (for drivers that take one statement per call). No
    /// statement holds a `;` inside a literal.
    public static func statements(_ sql: String) -> [String] {
        sql.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    public static let environmentsQuery = """
        SELECT environment FROM managed_credentials UNION SELECT environment FROM intents
        UNION SELECT environment FROM runs ORDER BY environment
        """

    public static let managedColumns = "namespace, credential_key, server_id, secret_fingerprint, grants, pending_redeploy, last_action, last_run_id, last_changed_at, secret_delivery, secret_created_at, retiring"
    public static let managedOrder = "ORDER BY namespace, credential_key"
    public static let deleteManaged = "DELETE FROM managed_credentials WHERE environment = ? AND namespace = ? AND credential_key = ?"

    /// Parameters in the order of `StateCoding.managedValues`.
    public static let upsertManaged = upsertManaged(rows: 1)

    /// The columns of `upsertManaged`, the environment first.
    public static let upsertManagedColumns = 13

    /// One statement that upserts `rows` rows (no two of one key: PostgreSQL refuses to update a
    /// row twice in one statement).
    public static func upsertManaged(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: upsertManagedColumns).joined(separator: ", ") + ")"
        return "INSERT INTO managed_credentials (environment, \(managedColumns))\nVALUES "
            + Array(repeating: row, count: rows).joined(separator: ", ") + "\n" + upsertManagedConflict
    }

    private static let upsertManagedConflict = """
        ON CONFLICT (environment, namespace, credential_key) DO UPDATE SET
            server_id = excluded.server_id, secret_fingerprint = excluded.secret_fingerprint, grants = excluded.grants,
            pending_redeploy = excluded.pending_redeploy, last_action = excluded.last_action,
            last_run_id = excluded.last_run_id, last_changed_at = excluded.last_changed_at,
            secret_delivery = excluded.secret_delivery, secret_created_at = excluded.secret_created_at, retiring = excluded.retiring
        """

    /// Removes a completed intent.
    public static let deleteIntent = "DELETE FROM intents WHERE intent_id = ?"

    public static let intentColumns = "intent_id, environment, namespace, credential_key, server_id, action, run_id, secret_fingerprint, fields_digest, grants, created_at"
    public static let lockColumns = "environment, lock_id, holder_user, holder_host, pid, command, since"

    public static let runColumns = "run_id, environment, command, user_name, host, pid, started_at, finished_at, success, message, counts"

    /// Parameters in the order of `StateCoding.runValues`.
    public static let upsertRun = """
        INSERT INTO runs (\(runColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (run_id, environment) DO UPDATE SET finished_at = excluded.finished_at, success = excluded.success,
            message = excluded.message, counts = excluded.counts
        """
}

/// Conversions between state values and their stored text, shared by the stores.
public enum StateCoding {
    public enum Value: Sendable, Hashable {
        case integer(Int64)
        case text(String)
    }

    /// Outcomes grouped by environment, each group in the given order (a store fences and
    /// commits per environment).
    public static func byEnvironment(_ outcomes: [(intent: Intent, outcome: StateOutcome)])
        -> [(EnvironmentName, [(intent: Intent, outcome: StateOutcome)])] {
        var order: [EnvironmentName] = []
        var groups: [EnvironmentName: [(intent: Intent, outcome: StateOutcome)]] = [:]
        for item in outcomes {
            if groups[item.intent.environment] == nil { order.append(item.intent.environment) }
            groups[item.intent.environment, default: []].append(item)
        }
        return order.map { ($0, groups[$0]!) }
    }

    public static func encodeGrants(_ grants: [AccessGrant]) -> String {
        // Most credentials have none: no encoder for them.
        if grants.isEmpty { return "[]" }
        // Written directly (JSONEncoder was 2 % of an apply's CPU): keys in sorted order, as
        // JSONEncoder.sorted wrote them; rows written by either read back alike.
        let objects = grants.sorted().map { grant -> [(String, JSONWriter.Value)] in [("name", .string(grant.name)), ("type", .string(grant.type))] }
        return String(decoding: JSONWriter.array(objects), as: UTF8.self)
    }

    public static func decodeGrants(_ text: String) -> [AccessGrant] {
        if text == "[]" { return [] }
        return (try? grantDecoder.decode([AccessGrant].self, from: Data(text.utf8))) ?? []
    }

    /// One decoder for every row read.
    private static let grantDecoder = JSONDecoder()

    public static func string(_ date: Date) -> String {
        Timestamp.format(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    public static func date(_ text: String?) -> Date? {
        guard let text, let ms = Timestamp.parse(text) else { return nil }
        return Date(timeIntervalSince1970: Double(ms) / 1000)
    }

    public static func runValues(_ run: RunRecord) -> [Value?] {
        [
            .text(run.runID), .text(run.environment.rawValue), .text(run.command), .text(run.user), .text(run.host),
            .integer(Int64(run.pid)), .text(string(run.startedAt)), run.finishedAt.map { .text(string($0)) },
            run.success.map { .integer($0 ? 1 : 0) }, run.message.map(Value.text), .text(run.counts.json),
        ]
    }

    public static func managedValues(_ c: ManagedCredential) -> [Value?] {
        [.text(c.environment.rawValue), .text(c.namespace.rawValue), .text(c.key.rawValue), c.serverID.map(Value.text),
         c.secretFingerprint.map { .text($0.hex) }, .text(encodeGrants(c.grants)), c.pendingRedeploy.map(Value.text),
         .text(c.lastAction), .text(c.lastRunID), .text(string(c.lastChangedAt)), c.delivery.map { .text($0.rawValue) },
         c.secretCreatedAt.map { .text(string($0)) }, .text(encodeRetiring(c.retiring))]
    }

    /// A row of `managedColumns` for `environment`.
    public static func managed(from row: [Value?], environment: EnvironmentName) -> ManagedCredential {
        var shared = SharedValues()
        return managed(from: row, environment: environment, shared: &shared)
    }

    /// As `managed(from:environment:)`, for many rows: values that rows repeat (one access
    /// list, a run's id) are decoded once and held once by all of them.
    public static func managed(from row: [Value?], environment: EnvironmentName, shared: inout SharedValues) -> ManagedCredential {
        func text(_ i: Int) -> String? { if case .text(let s)? = row[i] { return s } else { return nil } }
        return ManagedCredential(environment: environment, namespace: ProjectName(text(0) ?? ""), key: CredentialKey(text(1) ?? ""),
                                 serverID: text(2), secretFingerprint: text(3).map(Fingerprint.init(hex:)),
                                 grants: shared.grants(text(4) ?? "[]"), pendingRedeploy: text(5),
                                 delivery: text(9).flatMap(SecretDelivery.init(rawValue:)), secretCreatedAt: date(text(10)), lastAction: text(6) ?? "",
                                 lastRunID: shared.text(text(7) ?? ""), lastChangedAt: date(text(8)) ?? Date(timeIntervalSince1970: 0),
                                 retiring: decodeRetiring(text(11) ?? "[]"))
    }

    /// Values decoded once per read of many rows. Holds at most `limit` of each kind, so rows
    /// that all differ cost a lookup each and nothing more.
    public struct SharedValues {
        private var grantLists: [String: [AccessGrant]] = [:]
        private var texts: [String: String] = [:]
        private static let limit = 256

        public init() {}

        mutating func grants(_ text: String) -> [AccessGrant] {
            if let known = grantLists[text] { return known }
            let decoded = decodeGrants(text)
            if grantLists.count < Self.limit { grantLists[text] = decoded }
            return decoded
        }

        mutating func text(_ value: String) -> String {
            if let known = texts[value] { return known }
            if texts.count < Self.limit { texts[value] = value }
            return value
        }
    }

    /// `[{"deleteAfter": "ISO 8601", "serverID": "..."}]`.
    public static func encodeRetiring(_ retiring: [RetiringCredential]) -> String {
        if retiring.isEmpty { return "[]" }
        let items = retiring.map { r in ["serverID": r.serverID].merging(r.deleteAfter.map { ["deleteAfter": string($0)] } ?? [:]) { a, _ in a } }
        let data = (try? JSONSerialization.data(withJSONObject: items, options: [.sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public static func decodeRetiring(_ text: String) -> [RetiringCredential] {
        guard let items = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: String]] else { return [] }
        return items.compactMap { item in
            guard let id = item["serverID"] else { return nil }
            return RetiringCredential(serverID: id, deleteAfter: date(item["deleteAfter"]))
        }
    }

    public static func intentValues(_ i: Intent) -> [Value?] {
        [.text(i.id), .text(i.environment.rawValue), .text(i.namespace.rawValue), .text(i.key.rawValue), i.serverID.map(Value.text),
         .text(i.action.rawValue), .text(i.runID), i.secretFingerprint.map { .text($0.hex) }, i.fieldsDigest.map(Value.text),
         .text(encodeGrants(i.grants)), .text(string(i.createdAt))]
    }

    public static func intent(from row: [Value?]) -> Intent? {
        func text(_ i: Int) -> String? { if case .text(let s)? = row[i] { return s } else { return nil } }
        guard let id = text(0), let env = text(1), let project = text(2), let user = text(3),
              let action = text(5).flatMap(ActionKind.init(rawValue:)), let run = text(6) else { return nil }
        return Intent(id: id, environment: EnvironmentName(env), namespace: ProjectName(project), key: CredentialKey(user),
                      serverID: text(4), action: action, runID: run, secretFingerprint: text(7).map(Fingerprint.init(hex:)),
                      fieldsDigest: text(8), grants: decodeGrants(text(9) ?? "[]"), createdAt: date(text(10)) ?? Date(timeIntervalSince1970: 0))
    }

    public static func lockValues(_ l: LockInfo) -> [Value?] {
        [.text(l.environment.rawValue), .text(l.lockID), .text(l.user), .text(l.host), .integer(Int64(l.pid)), .text(l.command), .text(string(l.since))]
    }

    public static func lock(from row: [Value?]) -> LockInfo? {
        func text(_ i: Int) -> String? { if case .text(let s)? = row[i] { return s } else { return nil } }
        guard let env = text(0), let id = text(1) else { return nil }
        var pid: Int32 = 0
        if case .integer(let n)? = row[4] { pid = Int32(n) }
        return LockInfo(environment: EnvironmentName(env), lockID: id, user: text(2) ?? "", host: text(3) ?? "", pid: pid,
                        command: text(5) ?? "", since: date(text(6)) ?? Date(timeIntervalSince1970: 0))
    }

    public static func run(from row: [Value?]) -> RunRecord {
        func text(_ i: Int) -> String? { if case .text(let s)? = row[i] { return s } else { return nil } }
        func int(_ i: Int) -> Int { if case .integer(let n)? = row[i] { return Int(n) } else { return 0 } }
        let counts = ChangeCounts(json: text(10) ?? "{}")
        let success: Bool? = row[8] == nil ? nil : int(8) != 0
        return RunRecord(runID: text(0) ?? "", environment: EnvironmentName(text(1) ?? ""), command: text(2) ?? "",
                         user: text(3) ?? "", host: text(4) ?? "", pid: Int32(int(5)), startedAt: date(text(6)) ?? Date(timeIntervalSince1970: 0),
                         finishedAt: date(text(7)), success: success, message: text(9), counts: counts)
    }
}

extension JSONEncoder {
    /// Sorted keys: stable bytes for the same value.
    public static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
