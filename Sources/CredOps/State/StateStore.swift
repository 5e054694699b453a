import Foundation

/// What credops remembers between runs, behind one contract so that SQLite (one person, one
/// runner) and PostgreSQL (a team) behave the same.
///
/// Every method is one transaction. Writers call `record`/`forget` after each successful
/// operation, never only at the end, so an interrupted apply loses nothing.
public protocol StateStore: Sendable {
    /// A human description without any password (`sqlite:.credops/state.db`).
    var displayName: String { get }

    /// Every environment the state knows of (managed credentials, unsettled writes or history).
    func environments() async throws -> [EnvironmentName]

    /// Every credential credops manages in `environment`.
    func managedCredentials(environment: EnvironmentName) async throws -> [ManagedCredential]

    /// Inserts or replaces one managed credential.
    func record(_ credential: ManagedCredential) async throws

    /// Forgets one credential (it was deleted, or it is gone from the server).
    func forget(environment: EnvironmentName, namespace: ProjectName, key: CredentialKey) async throws

    // MARK: Intents (crash safety)

    /// Records writes about to be sent, in one transaction.
    func recordIntents(_ intents: [Intent]) async throws

    /// Writes operations' outcomes and removes their intents, in one transaction per
    /// environment.
    ///
    /// An outcome's intent covers it, so its commit need not wait for the disk. Many passed
    /// together share one transaction, which costs about what one outcome's does.
    func complete(_ outcomes: [(intent: Intent, outcome: StateOutcome)]) async throws

    /// Intents left by runs that stopped between sending a write and recording its outcome.
    func pendingIntents(environment: EnvironmentName) async throws -> [Intent]

    // MARK: Locks

    /// Takes the environment's lock, waiting up to `timeout` for another holder to finish.
    /// Writes for the environment through this store are then fenced: they fail once the lock
    /// is force-released.
    /// - Throws: `StateError.locked` naming the holder when the wait runs out.
    func acquireLock(_ info: LockInfo, timeout: Duration, shouldStop: @escaping @Sendable () -> Bool) async throws

    /// Releases a lock this store holds.
    func releaseLock(environment: EnvironmentName) async

    /// Every recorded lock holder.
    func locks() async throws -> [LockInfo]

    /// Releases a stuck lock, only when `lockID` is the holder's exact id.
    func forceUnlock(environment: EnvironmentName, lockID: String) async throws

    /// True when nobody holds `environment`'s lock, so that a recorded holder is gone (its
    /// process died) and the next apply takes over.
    func isLockFree(_ environment: EnvironmentName) async -> Bool

    /// Starts the history entry of an apply on one environment.
    func beginRun(_ run: RunRecord) async throws

    /// Completes the history entry with its outcome and counts.
    func finishRun(_ run: RunRecord) async throws

    /// Recent applies, newest first.
    func history(environment: EnvironmentName?, limit: Int) async throws -> [RunRecord]

    /// Releases resources (connections, threads).
    func close() async
}

extension StateStore {
    /// Writes one operation's outcome and removes its intent (see `complete(_:)`).
    public func complete(_ intent: Intent, outcome: StateOutcome) async throws {
        try await complete([(intent, outcome)])
    }

    /// Who holds `environment`'s lock, for the message of a run that found it taken. A holder
    /// records itself just after it takes the lock, so a run that lost the race by moments may
    /// find no record yet: it looks again for up to `settle` before saying "another run".
    public func lockHolder(_ environment: EnvironmentName, settle: Duration = .seconds(1)) async -> LockInfo? {
        let start = ContinuousClock.now
        while true {
            if let holder = try? await locks().first(where: { $0.environment == environment }) { return holder }
            if ContinuousClock.now - start >= settle { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// A credential credops created or adopted in one environment.
public struct ManagedCredential: Sendable, Codable, Equatable {
    public var environment: EnvironmentName
    /// The namespace as the server names it (a project), or credops' own grouping for an API
    /// without namespaces.
    public var namespace: ProjectName
    public var key: CredentialKey
    /// The id the server gave the credential, when it is not the key (server-assigned ids).
    public var serverID: String?
    /// HMAC-SHA256 of the password credops last applied; nil when it never set one (adopted).
    public var secretFingerprint: Fingerprint?
    /// Grants credops applied or adopted for this credential (sorted).
    public var grants: [AccessGrant]
    /// Set when the last write was stored on the manager but not deployed to every gateway;
    /// the next plan sends the credential again.
    public var pendingRedeploy: String?
    /// For a secret the server generates: whether credops delivered the one the server holds.
    public var delivery: SecretDelivery?
    /// When the secret the server holds was made (by credops' create), for rotation when the
    /// server does not say.
    public var secretCreatedAt: Date?
    /// Credentials this one replaced that are still to be deleted (server-assigned ids): kept
    /// through a rotation's overlap, or because a run ended before it deleted them.
    public var retiring: [RetiringCredential] = []
    /// The last action applied (`create`, `update`, `password`, `grant`, `revoke`, `adopt`).
    public var lastAction: String
    public var lastRunID: String
    public var lastChangedAt: Date

    public init(environment: EnvironmentName, namespace: ProjectName, key: CredentialKey, serverID: String? = nil,
                secretFingerprint: Fingerprint?, grants: [AccessGrant], pendingRedeploy: String? = nil,
                delivery: SecretDelivery? = nil, secretCreatedAt: Date? = nil, lastAction: String,
                lastRunID: String, lastChangedAt: Date, retiring: [RetiringCredential] = []) {
        self.retiring = retiring
        self.delivery = delivery
        self.secretCreatedAt = secretCreatedAt
        self.environment = environment
        self.namespace = namespace
        self.key = key
        self.serverID = serverID
        self.secretFingerprint = secretFingerprint
        self.grants = grants
        self.pendingRedeploy = pendingRedeploy
        self.lastAction = lastAction
        self.lastRunID = lastRunID
        self.lastChangedAt = lastChangedAt
    }
}

/// A credential replaced by a new one of the same key, deleted once `deleteAfter` has passed.
public struct RetiringCredential: Sendable, Codable, Equatable {
    public var serverID: String
    /// nil: kept until a new secret has been delivered (the sink may still hold this one's).
    public var deleteAfter: Date?

    public init(serverID: String, deleteAfter: Date?) {
        self.serverID = serverID
        self.deleteAfter = deleteAfter
    }
}

/// What credops knows of a generated secret's way to its sink.
public enum SecretDelivery: String, Sendable, Codable, Equatable {
    /// Created by credops and handed to its sink.
    case delivered
    /// Created by credops, but the sink did not take it (or the run ended first): nobody holds
    /// the secret, and the next apply replaces the credential.
    case undelivered
    /// Not created by credops (adopted): whoever made it holds the secret; credops leaves it
    /// alone until it is rotated.
    case external
}

/// One apply on one environment, as kept in the history.
public struct RunRecord: Sendable, Codable, Equatable {
    public var runID: String
    public var environment: EnvironmentName
    public var command: String
    public var user: String
    public var host: String
    public var pid: Int32
    public var startedAt: Date
    public var finishedAt: Date?
    public var success: Bool?
    public var message: String?
    public var counts: ChangeCounts

    public init(runID: String, environment: EnvironmentName, command: String, user: String, host: String, pid: Int32,
                startedAt: Date, finishedAt: Date? = nil, success: Bool? = nil, message: String? = nil, counts: ChangeCounts = ChangeCounts()) {
        self.runID = runID
        self.environment = environment
        self.command = command
        self.user = user
        self.host = host
        self.pid = pid
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.success = success
        self.message = message
        self.counts = counts
    }
}

/// Counts of applied changes, in the report's words. Kept in the history as one JSON object
/// keyed by kind (`{"created":3,"granted":1}`, zeros left out), so that a new kind needs no new
/// column; kinds this build does not know are ignored when read.
public struct ChangeCounts: Sendable, Codable, Equatable {
    public var created = 0
    public var updated = 0
    public var replaced = 0
    /// Secrets set (a secret change, or an update that carried a new secret).
    public var secretChanged = 0
    public var granted = 0
    public var revoked = 0
    public var deleted = 0
    public var adopted = 0
    public var failed = 0

    public init() {}

    public var total: Int { created + updated + secretChanged + granted + revoked + deleted + adopted + replaced }

    /// The stored form: sorted keys, non-zero counts only.
    public var json: String {
        let pairs = [("adopted", adopted), ("created", created), ("deleted", deleted), ("failed", failed), ("granted", granted),
                     ("replaced", replaced), ("revoked", revoked), ("secretChanged", secretChanged), ("updated", updated)]
        return "{" + pairs.filter { $0.1 != 0 }.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// Reads the stored form; unknown kinds, and anything that is not a count, are ignored.
    public init(json: String) {
        let counts = (try? JSONDecoder().decode(StoredCounts.self, from: Data(json.utf8)))?.counts ?? [:]
        func count(_ key: String) -> Int { max(0, counts[key] ?? 0) }
        (adopted, created, deleted, failed, granted) = (count("adopted"), count("created"), count("deleted"), count("failed"), count("granted"))
        (replaced, revoked, secretChanged, updated) = (count("replaced"), count("revoked"), count("secretChanged"), count("updated"))
    }

    /// A JSON object read key by key, keeping the integer values.
    private struct StoredCounts: Decodable {
        var counts: [String: Int] = [:]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            for key in container.allKeys {
                if let n = try? container.decode(Int.self, forKey: key) { counts[key.stringValue] = n }
            }
        }
    }
}

/// A state location from `--state` or `CREDOPS_STATE`.
public enum StateLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    public static let defaultSQLite = StateLocation.sqlite(path: ".credops/state.db")

    /// Parses `sqlite:PATH` or `postgres://...` (`postgresql://` too).
    public static func parse(_ text: String) -> StateLocation? {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            return path.isEmpty ? nil : .sqlite(path: path)
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") { return .postgres(url: text) }
        return nil
    }

    /// Never shows a password that a PostgreSQL URL may hold.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url):
            guard var c = URLComponents(string: url) else { return "postgres://(unreadable url)" }
            if c.password != nil { c.password = "(redacted)" }
            return c.string ?? "postgres://"
        }
    }
}
