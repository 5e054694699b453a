import Crypto
import Foundation

/// A write about to be sent to a server, recorded before it is sent and removed (with the
/// state it led to) after. An intent still there at the next run means credops stopped between
/// the two; that run reads the credential back and settles what the state should say.
public struct Intent: Sendable, Codable, Equatable {
    public var id: String
    public var environment: EnvironmentName
    public var namespace: ProjectName
    public var key: CredentialKey
    /// The server's id of the credential, when known and not the key.
    public var serverID: String?
    public var action: ActionKind
    public var runID: String
    /// The fingerprint of the password the write carries, if any.
    public var secretFingerprint: Fingerprint?
    /// A digest of the field values the write sends (creates and updates).
    public var fieldsDigest: String?
    /// The grants a grant or revoke sends.
    public var grants: [AccessGrant]
    public var createdAt: Date

    public init(id: String, environment: EnvironmentName, namespace: ProjectName, key: CredentialKey, serverID: String? = nil,
                action: ActionKind, runID: String, secretFingerprint: Fingerprint? = nil, fieldsDigest: String? = nil,
                grants: [AccessGrant] = [], createdAt: Date = Date()) {
        self.id = id
        self.environment = environment
        self.namespace = namespace
        self.key = key
        self.serverID = serverID
        self.action = action
        self.runID = runID
        self.secretFingerprint = secretFingerprint
        self.fieldsDigest = fieldsDigest
        self.grants = grants
        self.createdAt = createdAt
    }

    /// A digest of a resource's fields, stable across runs, to recognise our own write on read-back.
    public static func digest(_ resource: Resource, schema: ResourceSchema) -> String {
        var text = resource.id.rawValue
        for spec in schema.declarableFields {
            text += "\u{0}\(spec.name)=\(spec.canonical(resource[spec.name] ?? spec.defaultValue).canonicalText)"
        }
        return Hex.encode(SHA256.hash(data: Array(text.utf8)).prefix(16))
    }
}

/// What an operation's completion writes to state, together with removing its intent.
public enum StateOutcome: Sendable, Equatable {
    /// The credential is managed with this record.
    case record(ManagedCredential)
    /// The credential is gone; forget it.
    case forget
    /// Nothing changed (the write failed before reaching the server).
    case unchanged
}

/// Who holds an environment's lock, for messages and `state list`.
public struct LockInfo: Sendable, Codable, Equatable {
    public var environment: EnvironmentName
    public var lockID: String
    public var user: String
    public var host: String
    public var pid: Int32
    public var command: String
    public var since: Date

    public init(environment: EnvironmentName, lockID: String, user: String, host: String, pid: Int32, command: String, since: Date) {
        self.environment = environment
        self.lockID = lockID
        self.user = user
        self.host = host
        self.pid = pid
        self.command = command
        self.since = since
    }

    /// `apply run 7f3c (ci-runner-12, pid 4311, since 10:02:11 UTC)`.
    public var holderDescription: String {
        let time = Timestamp.format(Int64(since.timeIntervalSince1970 * 1000))
        let clock = String(time.dropFirst(11).prefix(8))
        let who = TextSafety.escaped("\(user)@\(host)")
        return "\(who) (pid \(pid), lock \(TextSafety.escaped(lockID)), since \(time.prefix(10)) \(clock) UTC): \(CommandLineText.redacted(storedCommand: command))"
    }
}

/// Why a state operation could not be done.
public enum StateError: Error, Sendable, CustomStringConvertible {
    /// Another run holds the environment's lock.
    case locked(LockInfo?, waited: Duration)
    /// This run's lock was force-released; its writes are refused.
    case fenced(EnvironmentName)
    case noSuchLock(EnvironmentName, String)
    case storage(String)

    public var description: String {
        switch self {
        case .locked(let holder, let waited):
            let who = holder.map { "is locked by \($0.holderDescription)" } ?? "is locked by another run"
            return "\(who); waited \(waited.shortDescription). Try again later, or if that run is dead: credops state unlock -e \(holder?.environment.rawValue ?? "ENV") --id \(holder?.lockID ?? "ID")"
        case .fenced(let env):
            return "the lock on \(env) was force-released while this run held it; state writes are refused so that two runs cannot interleave"
        case .noSuchLock(let env, let id):
            return "\(env) has no lock with id \(id); `credops state list` shows the current holder"
        case .storage(let message):
            return message
        }
    }
}
