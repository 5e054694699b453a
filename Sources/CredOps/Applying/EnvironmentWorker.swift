import Foundation

/// Applies the changes of one environment, credential by credential, and keeps its state.
struct EnvironmentWorker: Sendable {
    let environment: EnvironmentName
    let session: any ProviderSession
    let store: any StateStore
    let book: SecretBook
    let planner: Planner
    let runID: String
    /// The state records as the plan settled them.
    let managed: ManagedRecords
    /// Every secret of the run; secrets a server generates are added as they arrive.
    let runSecrets: RunSecrets
    let shouldStop: @Sendable () -> Bool
    /// Ids of the other live credentials of each key when the plan was made (namespace NUL
    /// key): a read-back after a lost create never takes one of them for the new credential.
    var namesakes: [String: Set<String>] = [:]
    let deliverer = Deliverer()
    /// The record of each credential as this run last left it: the deletes of a later phase
    /// start from it, not from the record the plan saw.
    let latest = LatestRecords()
    /// The credentials (namespace NUL key) a later phase works on again: only their records
    /// are kept in `latest` (all of them held 6 MB per 10,000 credentials to the end).
    var laterPhases: Set<String> = []
    /// Why the intents of later jobs could not be recorded, once that happened: state is not
    /// writable, so no further write is sent (even one whose own intent is recorded).
    var intentFailure: (@Sendable () -> String?)?
    /// Deletes and read-back listings take turns (see `ListingGate`).
    let gate = ListingGate()
    /// Fingerprints a secret credops made, for state (as declared secrets are).
    var fingerprint: (@Sendable (ProjectName, CredentialKey, Secret) -> Fingerprint)?

    private func initialRecord(_ change: Change) -> ManagedCredential? {
        managed[change.serverProject, change.key]
    }

    /// The intent of every server write of `jobs` (nil for state-only steps), step by step;
    /// `IntentFeed` records them before the first of these jobs starts.
    ///
    /// Recording a credential's later steps before its first one is sent is safe: an intent
    /// whose write never went out is settled from the server by the next run, and finds nothing
    /// of it there (a create or grant that is not live, a delete whose credential still is) or
    /// leads to the same write the plan would make anyway (a password or an update).
    /// - Parameter next: the last intent number used; ids are unique within the run (one
    ///   random start, counted up), and the run id makes them unique across runs.
    func intents(for jobs: ArraySlice<CredentialJob>, next: inout UInt64) -> [[Intent?]] {
        jobs.map { job in
            job.changes.map { change -> Intent? in
                if case .adopt = change.action { return nil }
                next &+= 1
                let suffix = withUnsafeBytes(of: next.bigEndian) { Hex.encode(Array($0)) }
                var intent = Intent(id: "\(runID)-\(suffix)", environment: environment,
                                    namespace: change.serverProject, key: change.key,
                                    serverID: initialRecord(change)?.serverID ?? change.serverID, action: change.action.kind, runID: runID,
                                    secretFingerprint: change.action.secretFingerprint)
                if let after = change.action.desired { intent.fieldsDigest = Intent.digest(after, schema: planner.schema) }
                switch change.action {
                case .grant(let g), .revoke(let g): intent.grants = g
                default: break
                }
                return intent
            }
        }
    }

    /// Runs one credential's steps in order; after a failure the rest are skipped. Outcomes go
    /// to state through `outcomes`, in the background and in order.
    /// - Returns: each step's result with the id of its intent.
    func run(_ job: CredentialJob, intents: [Intent?], outcomes: OutcomeWriter) async -> [(OperationResult, String?)] {
        let changes = job.changes
        guard let first = changes.first else { return [] }
        let key = CredentialJob.groupKey(first)
        var record = latest[key] ?? initialRecord(first)
        defer { if laterPhases.contains(key) { latest[key] = .some(record) } }
        var results: [(OperationResult, String?)] = []
        results.reserveCapacity(changes.count)
        var failedStep: ActionKind?
        for (index, change) in changes.enumerated() {
            let intent = intents[index]
            var result = Self.result(of: change)
            // Before the checks: the writer's state may change while this waits.
            await outcomes.waitForRoom()
            let skipReason: SkipReason? = if let failedStep {
                .earlierStepFailed(failedStep)
            } else if shouldStop() {
                .interrupted
            } else if let stateFailure = outcomes.failure ?? intentFailure?() {
                .stateNotWritable(stateFailure)
            } else {
                nil
            }
            if let skipReason {
                result.status = .skipped
                result.skipReason = skipReason
                if let intent { outcomes.submit(intent, .unchanged) }
                results.append((result, intent?.id))
                continue
            }
            do {
                result.notes += try await execute(change, intent: intent, record: &record, outcomes: outcomes)
            } catch {
                result.status = .failed
                result.failure = error.failure
                failedStep = change.action.kind
            }
            results.append((result, intent?.id))
        }
        return results
    }

    /// A step's result before it runs: applied, with what the report says of it.
    private static func result(of change: Change) -> OperationResult {
        var result = OperationResult(project: change.serverProject.rawValue, key: change.key.rawValue,
                                     action: change.action.kind, status: .applied)
        switch change.action {
        case .grant(let g), .revoke(let g): result.grants = g
        case .update(_, _, let fields, _, let secretChanged):
            result.fields = fields.map(\.field)
            if secretChanged { result.notes.append(.secretChanged) }
        default: break
        }
        return result
    }

    /// The results of a job none of whose steps is sent, because its intents could not be
    /// recorded (or the run was stopped before they were).
    func skipped(_ job: CredentialJob, because reason: SkipReason) -> [(OperationResult, String?)] {
        job.changes.map { change in
            var result = Self.result(of: change)
            result.status = .skipped
            result.skipReason = reason
            return (result, nil)
        }
    }

    struct StepError: Error {
        var failure: OperationFailure
    }

    /// Performs one change on the server and hands the state it leads to to `outcomes`.
    /// - Returns: a note for the report, if any.
    private func execute(_ change: Change, intent: Intent?, record: inout ManagedCredential?,
                         outcomes: OutcomeWriter) async throws(StepError) -> [OperationNote] {
        let project = change.serverProject
        let id = change.key
        // The server's id: from state once credops knows it, else from the live credential.
        // A delete names the credential it deletes (a replaced one, too); others act on the one state follows.
        let address = CredentialAddress(namespace: project, key: id,
                                        serverID: change.action.kind == .delete ? (change.serverID ?? record?.serverID) : (record?.serverID ?? change.serverID))
        // A secret credops makes (`generate:`): made here for this one write, delivered after it,
        // never kept.
        var madeSecret: Secret?
        if let length = change.delivery?.secretLength, [.create, .replace, .update, .secret].contains(change.action.kind) {
            let made = Secret.random(length: length)
            runSecrets.add([made])
            madeSecret = made
        }
        let declared = madeSecret ?? book.secret(project: project, id: id)
        if change.action.secretFingerprint != nil && declared == nil {
            if let intent { outcomes.submit(intent, .unchanged) }
            throw StepError(failure: .noSecret)
        }
        let secret = declared ?? Secret("")
        var next = record ?? ManagedCredential(environment: environment, namespace: project, key: id, secretFingerprint: nil,
                                               grants: [], lastAction: "", lastRunID: runID, lastChangedAt: Date())
        // The server's id as the plan found it: what an adopted credential is pinned by, and
        // what a record made before ids were kept learns.
        if case .adopt = change.action { next.serverID = change.serverID ?? next.serverID }
        if next.serverID == nil { next.serverID = change.serverID }
        next.lastAction = change.action.kind.rawValue
        next.lastRunID = runID
        next.lastChangedAt = Date()

        guard let intent else {
            // State only (adopt): nothing is sent.
            if case .adopt(_, let grants, let credential) = change.action {
                next.grants = Array(Set(next.grants).union(grants)).sorted()
                // Whoever made it holds its generated secret; credops has delivered none.
                if credential && (planner.schema.capabilities.secret == .generated || change.delivery != nil) { next.delivery = .external }
            }
            outcomes.submit(record: next)
            record = next
            return []
        }

        var note: OperationNote?
        var notes: [OperationNote] = []
        /// A replace whose delete went through: a failure after it leaves no credential at all.
        var oldOneDeleted = false
        var serverError: ProviderError?
        /// What a create made, to deliver once the provider's part is done.
        var made: CreatedCredential?
        if madeSecret != nil, change.action.kind == .update || change.action.kind == .secret {
            // The old secret stops working when the new one is set: state says "undelivered"
            // before, so that a run that ends before the delivery is followed by a new secret.
            var pending = next
            pending.delivery = .undelivered
            do {
                try await outcomes.recordNow(pending)
            } catch {
                outcomes.submit(intent, .unchanged)
                throw StepError(failure: .stateNotWritten(store: store.displayName, error: runSecrets.redactor.redact("\(error)")))
            }
        }
        do throws(ProviderError) {
            switch change.action {
            case .adopt:
                break
            case .create(let after, let fingerprint):
                let created: CreatedCredential
                let orphans: [String]
                (created, note, orphans) = try await create(after, in: project, secret: declared, known: known(change, record: record))
                next.serverID = created.serverID
                next.secretFingerprint = fingerprint
                next.grants = []
                // Made by a create whose answer was lost: nobody has their secrets; they go at once.
                next.retiring += orphans.map { RetiringCredential(serverID: $0, deleteAfter: Date()) }
                made = created
            case .replace(_, let after, _, _, let fingerprint):
                // Where the key is the server's id, delete first: the new one cannot exist beside
                // it. Otherwise create first, so that there is never a moment without a
                // credential; the old one is recorded as retiring and goes by its own id once
                // the new one is recorded (and its secret delivered).
                let deleteFirst = planner.schema.capabilities.identity == .keyIsID
                if deleteFirst {
                    try await delete(address)
                    oldOneDeleted = true
                }
                let created: CreatedCredential
                let orphans: [String]
                (created, note, orphans) = try await create(after, in: project, secret: declared, known: known(change, record: record))
                next.serverID = created.serverID
                next.secretFingerprint = fingerprint
                next.grants = []
                if !deleteFirst {
                    // The old one stays until the new one's secret is delivered (and the overlap
                    // is over); orphans of lost answers go at once.
                    if let old = address.serverID, old != created.serverID { next.retiring.append(RetiringCredential(serverID: old, deleteAfter: nil)) }
                    next.retiring += orphans.filter { $0 != created.serverID }.map { RetiringCredential(serverID: $0, deleteAfter: Date()) }
                }
                made = created
            case .update(_, let after, let fields, let fingerprint, _):
                try await session.update(address, to: after, changes: fields, secret: declared)
                next.secretFingerprint = fingerprint
                if madeSecret != nil { made = CreatedCredential(serverID: address.serverID) }
            case .setSecret(let fingerprint):
                try await session.setSecret(address, secret: secret)
                next.secretFingerprint = fingerprint
                if madeSecret != nil { made = CreatedCredential(serverID: address.serverID) }
            case .grant(let grants):
                try await session.grant(address, grants: grants)
                next.grants = Array(Set(next.grants).union(grants)).sorted()
            case .revoke(let grants):
                try await session.revoke(address, grants: grants)
                next.grants = next.grants.filter { !grants.contains($0) }
            case .delete:
                try await delete(address)
            }
            next.pendingRedeploy = nil
        } catch {
            if error.isStoredButNotDeployed {
                // The manager stored the change; remember it, and that it must be sent again.
                serverError = error
                if let fp = change.action.secretFingerprint { next.secretFingerprint = fp }
                switch change.action {
                case .grant(let grants): next.grants = Array(Set(next.grants).union(grants)).sorted()
                case .revoke(let grants): next.grants = next.grants.filter { !grants.contains($0) }
                default: break
                }
                next.pendingRedeploy = error.message
            } else if oldOneDeleted && !error.outcomeUnknown {
                // The old one is gone and the new one is not there: state forgets it, and the
                // next plan creates it.
                outcomes.submit(intent, .forget)
                record = nil
                throw StepError(failure: .provider(error.description))
            } else if error.outcomeUnknown {
                // Whether the server applied it is unknown: the intent stays, and the next run settles it.
                throw StepError(failure: .outcomeUnknown(error.description))
            } else {
                outcomes.submit(intent, .unchanged)
                throw StepError(failure: .provider(error.description))
            }
        }
        if var made {
            if let madeSecret {
                made.generated[planner.schema.secretField] = madeSecret
                next.secretFingerprint = fingerprint?(project, id, madeSecret)
            }
            do {
                notes = try await finishCreate(made, change: change, next: &next, intent: intent, outcomes: outcomes)
            } catch {
                record = next
                throw error
            }
        }
        let isDelete = change.action.kind == .delete
        if isDelete, let current = record, let deleted = address.serverID, let currentID = current.serverID, currentID != deleted {
            // A replaced credential gone: the record of its successor stays, without it (and
            // is never forgotten for the delete of another credential than the one it names).
            next = current
            next.retiring.removeAll { $0.serverID == deleted }
            next.lastRunID = runID
            outcomes.submit(intent, .record(next))
            record = next
            return []
        }
        outcomes.submit(intent, isDelete ? .forget : .record(next))
        record = isDelete ? nil : next
        if let serverError { throw StepError(failure: .provider(serverError.description)) }
        return (note.map { [$0] } ?? []) + notes
    }

    /// After a create (or the create of a replace): the new credential is recorded before its
    /// generated secret goes anywhere (undelivered, with what it replaces kept), then the secret
    /// is delivered, and only then are the credentials it replaces deleted (at once, or after
    /// the overlap). A sink therefore never holds a secret the server does not accept.
    private func finishCreate(_ made: CreatedCredential, change: Change, next: inout ManagedCredential, intent: Intent,
                              outcomes: OutcomeWriter) async throws(StepError) -> [OperationNote] {
        var notes: [OperationNote] = []
        if let delivery = change.delivery {
            next.delivery = .undelivered
            next.secretCreatedAt = Date()
            do {
                // Durable before delivery: a run killed while the sink is written leaves a record
                // that says which credential may be out there, never a delivered unknown.
                try await outcomes.recordNow(next)
            } catch {
                throw StepError(failure: .stateNotWritten(store: store.displayName, error: runSecrets.redactor.redact("\(error)")))
            }
            var values = made.delivered
            // What a consumer needs besides the secret: the credential's text fields (a user
            // name, a package), its key and the server's id.
            if let after = change.action.desired { values.merge(Self.textFields(after, schema: planner.schema)) { a, _ in a } }
            values[planner.schema.identifierField] = values[planner.schema.identifierField] ?? change.key.rawValue
            if let id = made.serverID, values["id"] == nil, planner.schema.capabilities.identity == .serverAssigned { values["id"] = id }
            values["name"] = values["name"] ?? change.key.rawValue
            values["environment"] = environment.rawValue
            values["project"] = change.project.rawValue
            do throws(DeliveryError) {
                let output = try await deliverer.deliver(DeliveryPayload(values: values, secrets: made.generated), to: delivery)
                notes.append(.delivered(to: delivery.shown, serverID: made.serverID,
                                        output: output.map { runSecrets.redactor.serverText($0, limit: 2000) }))
            } catch {
                outcomes.submit(intent, .record(next))
                throw StepError(failure: .notDelivered(runSecrets.redactor.serverText(error.description, limit: 2000)))
            }
            next.delivery = .delivered
        }
        // What this one replaces goes now, or when the overlap ends.
        let overlap = change.delivery?.overlapSeconds ?? 0
        let due = Date().addingTimeInterval(Double(overlap))
        var waiting: [String] = []
        for i in next.retiring.indices where next.retiring[i].deleteAfter == nil {
            next.retiring[i].deleteAfter = due
            if overlap > 0 { waiting.append(next.retiring[i].serverID) }
        }
        if !waiting.isEmpty { notes.append(.retiringUntil(waiting, due)) }
        var retired: [String] = []
        for old in next.retiring where (old.deleteAfter ?? .distantFuture) <= Date() {
            do throws(ProviderError) {
                try await delete(CredentialAddress(namespace: change.serverProject, key: change.key, serverID: old.serverID))
                retired.append(old.serverID)
            } catch {
                // The new one is in place (and delivered); the old one stays listed and the next
                // apply deletes it.
                next.retiring.removeAll { retired.contains($0.serverID) }
                outcomes.submit(intent, .record(next))
                throw StepError(failure: error.outcomeUnknown ? .outcomeUnknown(error.description) : .provider(error.description))
            }
        }
        next.retiring.removeAll { retired.contains($0.serverID) }
        if !retired.isEmpty { notes.append(.retired(retired)) }
        return notes
    }

    /// The declarable text fields of `resource`, for a sink.
    static func textFields(_ resource: Resource, schema: ResourceSchema) -> [String: String] {
        var values: [String: String] = [:]
        for spec in schema.declarableFields where spec.kind == .string {
            if case .string(let text)? = resource[spec.name], !text.isEmpty { values[spec.name] = text }
        }
        return values
    }

    /// Ids a read-back must not take for a credential this step creates.
    private func known(_ change: Change, record: ManagedCredential?) -> Set<String> {
        var ids = namesakes[CredentialJob.groupKey(change)] ?? []
        if let id = change.serverID { ids.insert(id) }
        if let id = record?.serverID { ids.insert(id) }
        for old in record?.retiring ?? [] { ids.insert(old.serverID) }
        return ids
    }

    /// Lists `project` through the gate: no delete of this run moves the pages meanwhile.
    private func readBack(_ project: ProjectName) async throws(ProviderError) -> [Resource] {
        await gate.enterListing()
        let listed: Result<[Resource], ProviderError>
        do {
            listed = .success(try await session.list(namespace: project))
        } catch {
            listed = .failure(error)
        }
        await gate.leaveListing()
        return try listed.get()
    }

    /// Deletes through the gate, so that no read-back listing is between pages meanwhile.
    private func delete(_ address: CredentialAddress) async throws(ProviderError) {
        await gate.enterDelete()
        do {
            try await session.delete(address)
        } catch {
            await gate.leaveDelete()
            throw error
        }
        await gate.leaveDelete()
    }

    /// Creates a credential; when the answer was lost, reads back instead of sending it again:
    /// found with our fields, the create is done; found with other fields, it is converged with
    /// an update; not found, it is created again. Up to `rounds` times, like any other retry.
    ///
    /// Where the server generates the secret, a credential found on read-back is of no use: its
    /// secret was in the lost answer. It is created again, and the one found is returned as an
    /// orphan, to be deleted once the new one's secret is delivered.
    /// - Parameter known: ids of live credentials of this key that are not the new one.
    private func create(_ resource: Resource, in project: ProjectName, secret: Secret?, known: Set<String>,
                        rounds: Int = 4) async throws(ProviderError) -> (CreatedCredential, OperationNote?, [String]) {
        let generated = planner.schema.capabilities.secret == .generated
        var lost: [String] = []
        var orphans: [String] = []
        while true {
            let lastLost: ProviderError
            do {
                let created = try await session.create(resource, in: project, secret: secret)
                // A generated secret is redacted from everything that follows, like any other.
                runSecrets.add(Array(created.generated.values))
                return (created, lost.isEmpty ? nil : .answerLost(times: lost.count, lastError: lost.last ?? "", then: .createdAgain), orphans)
            } catch where error.outcomeUnknown {
                lost.append(error.message)
                lastLost = error
            }
            // Every lost answer is read back, the last one too: only what reading back cannot
            // settle stays unknown.
            let live: [Resource]
            do {
                live = try await readBack(project)
            } catch {
                throw ProviderError(error.kind, request: error.request,
                                    message: "\(lost.last ?? ""); reading back to check failed too: \(error.message)", outcomeUnknown: true)
            }
            let found = live.filter { $0.id == resource.id && !($0.serverID.map { known.contains($0) || orphans.contains($0) } ?? false) }
            if generated {
                orphans += found.compactMap(\.serverID)
                if lost.count > rounds { throw lastLost }
                continue
            }
            if let found = found.first {
                let created = CreatedCredential(serverID: found.serverID)
                let changes = planner.fieldChanges(live: found, desired: resource)
                if changes.isEmpty {
                    // Our create went through (same fields; the password came with them).
                    return (created, .answerLost(times: lost.count, lastError: lost.last ?? "", then: .foundCreated), [])
                }
                try await session.update(CredentialAddress(namespace: project, key: resource.id, serverID: found.serverID),
                                         to: resource, changes: changes, secret: secret)
                return (created, .answerLost(times: lost.count, lastError: lost.last ?? "", then: .foundDifferentAndUpdated), [])
            }
            if lost.count > rounds { throw lastLost }
        }
    }
}

/// State records found by project and key. A search of the list for each change made an
/// apply that touched every one of 10,000 records quadratic (a third of its CPU).
struct ManagedRecords: Sendable {
    private let records: FirstByKey<ProjectCredential, ManagedCredential>

    init(_ records: [ManagedCredential]) {
        self.records = FirstByKey(records) { ProjectCredential(project: $0.namespace, key: $0.key) }
    }

    subscript(namespace: ProjectName, key: CredentialKey) -> ManagedCredential? {
        records[ProjectCredential(project: namespace, key: key)]
    }
}

/// The records a run left, by namespace NUL key (`.some(nil)`: forgotten).
final class LatestRecords: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [String: ManagedCredential?] = [:]

    subscript(key: String) -> ManagedCredential?? {
        get { lock.withLock { records[key] } }
        set {
            lock.withLock {
                if let value = newValue { records[key] = .some(value) } else { records[key] = nil }
            }
        }
    }
}
