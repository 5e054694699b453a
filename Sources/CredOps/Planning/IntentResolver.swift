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
    ///   - namesakes: other live credentials of a matched key (servers that assign ids).
    public func resolve(_ intents: [Intent], live: [CredentialKey: Resource], liveGrants: [CredentialKey: [AccessGrant]],
                        managed: [CredentialKey: ManagedCredential], runID: String, now: Date = Date(),
                        namesakes: [CredentialKey: [Resource]] = [:])
        -> (managed: [CredentialKey: ManagedCredential], repairs: [Repair]) {
        let generated = schema.capabilities.secret == .generated
        var records = managed
        var repairs: [Repair] = []
        for intent in intents.sorted(by: { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }) {
            let id = intent.key
            let current = live[id]
            var record = records[id] ?? ManagedCredential(
                environment: intent.environment, namespace: intent.namespace, key: id, secretFingerprint: nil, grants: [],
                lastAction: intent.action.rawValue, lastRunID: intent.runID, lastChangedAt: now)
            var outcome = StateOutcome.unchanged
            // A secret made at apply (by the server, or by credops for `generate:`; a declared
            // one always has a fingerprint): whether it reached its sink is unknown.
            let madeSecret = generated || (intent.secretFingerprint == nil && schema.capabilities.secret.isDeclared)
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
                    if madeSecret && intent.action == .create {
                        // Made by us; whether its secret reached the sink is unknown: nobody may have it.
                        record.delivery = .undelivered
                        record.secretCreatedAt = record.secretCreatedAt ?? intent.createdAt
                        claimOrphans(of: intent, namesakes: namesakes[id] ?? [], into: &record, now: now)
                    }
                    outcome = .record(record)
                }
            case .replace:
                if madeSecret, schema.capabilities.identity == .serverAssigned, current != nil, records[id] != nil {
                    // The new one was recorded (undelivered) before its secret went anywhere, so
                    // the record names whichever is current; one made after the intent and not
                    // recorded never reached a sink. Recorded by that run and not completed:
                    // whether it was delivered is unknown.
                    if record.lastRunID == intent.runID { record.delivery = .undelivered }
                    claimOrphans(of: intent, namesakes: namesakes[id] ?? [], into: &record, now: now)
                    outcome = .record(record)
                } else if let current {
                    // Replaced when the live one has our fields; still the old one otherwise.
                    guard intent.fieldsDigest == Intent.digest(current, schema: schema) else { break }
                    record.serverID = current.serverID ?? record.serverID
                    record.secretFingerprint = intent.secretFingerprint
                    record.grants = []
                    if madeSecret { record.delivery = .undelivered }
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

    /// Live credentials of the intent's key that the server made after the intent was written
    /// and that state does not know: made by that interrupted run, never delivered. They go
    /// with the next apply. Without a creation time on the server nothing is claimed.
    private func claimOrphans(of intent: Intent, namesakes: [Resource], into record: inout ManagedCredential, now: Date) {
        guard let field = schema.createdAtField else { return }
        let known = Set(record.retiring.map(\.serverID) + [record.serverID].compactMap { $0 })
        // Server clocks differ from ours: a few minutes of slack before; after, no longer than a
        // run could have gone on (one made later is somebody else's).
        let window = intent.createdAt.addingTimeInterval(-300)...intent.createdAt.addingTimeInterval(6 * 3600)
        for resource in namesakes {
            guard let id = resource.serverID, !known.contains(id), case .string(let text)? = resource[field],
                  let ms = Timestamp.parse(text), window.contains(Date(timeIntervalSince1970: Double(ms) / 1000)) else { continue }
            record.retiring.append(RetiringCredential(serverID: id, deleteAfter: now))
        }
    }
}
