import Foundation

/// Settles intents left by a run that stopped between sending a write and recording its
/// outcome, by looking at what the server holds now. Pure: the plan uses the settled state in
/// memory, and apply writes the repairs before its first operation.
public struct IntentResolver: Sendable {
    public let schema: ResourceSchema

    public init(schema: ResourceSchema) { self.schema = schema }

    /// A settled intent: what the state must say now.
    public struct Repair: Sendable {
        public var intent: Intent
        public var outcome: StateOutcome
    }

    /// - Parameters:
    ///   - intents: this project's intents, oldest first.
    ///   - live: the project's live credentials.
    ///   - liveGrants: access lists read from the server (absent: not read).
    ///   - managed: the project's state records by username.
    /// - Returns: the records as they should be, and the repairs that make the state say so.
    public func resolve(_ intents: [Intent], live: [CredentialKey: Resource], liveGrants: [CredentialKey: [AccessGrant]],
                        managed: [CredentialKey: ManagedCredential], runID: String, now: Date = Date())
        -> (managed: [CredentialKey: ManagedCredential], repairs: [Repair]) {
        var records = managed
        var repairs: [Repair] = []
        for intent in intents.sorted(by: { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }) {
            let id = intent.key
            let current = live[id]
            var record = records[id] ?? ManagedCredential(
                environment: intent.environment, namespace: intent.namespace, key: id, secretFingerprint: nil, grants: [],
                lastAction: intent.action.rawValue, lastRunID: intent.runID, lastChangedAt: now)
            var outcome = StateOutcome.unchanged
            switch intent.action {
            case .create, .update:
                if let current {
                    // Our own write is recognised by its fields; then its secret is ours too.
                    let ours = intent.fieldsDigest == Intent.digest(current, schema: schema)
                    // Pinned by the id the server gave it, so that a namesake made later is not a conflict.
                    record.serverID = current.serverID ?? record.serverID
                    record.secretFingerprint = ours ? intent.secretFingerprint : nil
                    if intent.action == .create && !ours && records[id] == nil {
                        // Someone else's credential under this name: not ours to manage.
                        break
                    }
                    outcome = .record(record)
                }
            case .replace:
                if let current {
                    // Replaced when the live one has our fields; still the old one otherwise.
                    guard intent.fieldsDigest == Intent.digest(current, schema: schema) else { break }
                    record.serverID = current.serverID ?? record.serverID
                    record.secretFingerprint = intent.secretFingerprint
                    record.grants = []
                    outcome = .record(record)
                } else {
                    // Deleted, and the new one never made: the next plan creates it.
                    outcome = .forget
                }
            case .secret:
                if current != nil, records[id] != nil {
                    // Whether the new secret landed cannot be read back: send it again.
                    record.secretFingerprint = nil
                    outcome = .record(record)
                }
            case .grant:
                if current != nil, let grants = liveGrants[id] {
                    let landed = Set(intent.grants).intersection(grants)
                    record.grants = Array(Set(record.grants).union(landed)).sorted()
                    outcome = .record(record)
                }
            case .revoke:
                if current != nil, let grants = liveGrants[id], records[id] != nil {
                    let gone = Set(intent.grants).subtracting(grants)
                    record.grants = record.grants.filter { !gone.contains($0) }
                    outcome = .record(record)
                }
            case .delete:
                if current == nil { outcome = .forget }
            case .adopt:
                break
            }
            switch outcome {
            case .record(var settled):
                settled.lastRunID = runID
                settled.lastChangedAt = now
                records[id] = settled
                repairs.append(Repair(intent: intent, outcome: .record(settled)))
            case .forget:
                records[id] = nil
                repairs.append(Repair(intent: intent, outcome: .forget))
            case .unchanged:
                repairs.append(Repair(intent: intent, outcome: .unchanged))
            }
        }
        return (records, repairs)
    }
}
