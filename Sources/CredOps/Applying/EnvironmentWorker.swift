import Foundation

/// Applies the changes of one environment, credential by credential, and keeps its state.
struct EnvironmentWorker: Sendable {
    let environment: EnvironmentName
    let session: any ProviderSession
    let store: any StateStore
    let book: SecretBook
    let planner: Planner
    let runID: String
    let managed: [ManagedCredential]
    /// Every secret of the run; secrets a server generates are added as they arrive.
    let runSecrets: RunSecrets
    let shouldStop: @Sendable () -> Bool

    private func initialRecord(_ change: Change) -> ManagedCredential? {
        managed.first { $0.namespace == change.serverProject && $0.key == change.key }
    }

    /// The intent of every server write of `jobs` (nil for state-only steps), recorded in one
    /// transaction before anything is sent.
    ///
    /// Recording a credential's later steps before its first one is sent is safe: an intent
    /// whose write never went out is settled from the server by the next run, and finds nothing
    /// of it there (a create or grant that is not live, a delete whose credential still is) or
    /// leads to the same write the plan would make anyway (a password or an update).
    func intents(for jobs: [CredentialJob]) -> [[Intent?]] {
        jobs.map { job in
            job.changes.map { change -> Intent? in
                if case .adopt = change.action { return nil }
                var intent = Intent(id: "\(runID)-\(Hex.encode((0..<8).map { _ in UInt8.random(in: 0...255) }))", environment: environment,
                                    namespace: change.serverProject, key: change.key,
                                    serverID: initialRecord(change)?.serverID ?? change.serverID, action: change.action.kind, runID: runID,
                                    secretFingerprint: change.action.secretFingerprint)
                switch change.action {
                case .create(let after, _), .replace(_, let after, _, _, _), .update(_, let after, _, _, _):
                    intent.fieldsDigest = Intent.digest(after, schema: planner.schema)
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
        guard let first = job.changes.first else { return [] }
        var record = initialRecord(first)
        let key = first.serverProject.rawValue + "\u{0}" + first.key.rawValue
        var results: [(OperationResult, String?)] = []
        var failedStep: ActionKind?
        for (index, change) in job.changes.enumerated() {
            let intent = intents[index]
            var result = OperationResult(project: change.serverProject.rawValue, key: change.key.rawValue,
                                         action: change.action.kind, status: .applied)
            switch change.action {
            case .grant(let g), .revoke(let g): result.grants = g
            case .update(_, _, let fields, _, let secretChanged):
                result.fields = fields.map(\.field)
                if secretChanged { result.notes.append(.secretChanged) }
            default: break
            }
            let skipReason: SkipReason? = if let failedStep {
                .earlierStepFailed(failedStep)
            } else if shouldStop() {
                .interrupted
            } else if let stateFailure = outcomes.failure {
                .stateNotWritable(stateFailure)
            } else {
                nil
            }
            if let skipReason {
                result.status = .skipped
                result.skipReason = skipReason
                if let intent { outcomes.submit(intent, .unchanged, key: key) }
                results.append((result, intent?.id))
                continue
            }
            do {
                if let note = try await execute(change, intent: intent, record: &record, outcomes: outcomes, key: key) {
                    result.notes.append(note)
                }
            } catch {
                result.status = .failed
                result.failure = error.failure
                failedStep = change.action.kind
            }
            results.append((result, intent?.id))
        }
        return results
    }

    struct StepError: Error {
        var failure: OperationFailure
    }

    /// Performs one change on the server and hands the state it leads to to `outcomes`.
    /// - Returns: a note for the report, if any.
    private func execute(_ change: Change, intent: Intent?, record: inout ManagedCredential?, outcomes: OutcomeWriter,
                         key: String) async throws(StepError) -> OperationNote? {
        let project = change.serverProject
        let id = change.key
        // The server's id: from state once credops knows it, else from the live credential.
        let address = CredentialAddress(namespace: project, key: id, serverID: record?.serverID ?? change.serverID)
        let declared = book.secret(project: project, id: id)
        if change.action.secretFingerprint != nil && declared == nil {
            if let intent { outcomes.submit(intent, .unchanged, key: key) }
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
            if case .adopt(_, let grants, _) = change.action { next.grants = Array(Set(next.grants).union(grants)).sorted() }
            outcomes.submit(record: next, key: key)
            record = next
            return nil
        }

        var note: OperationNote?
        /// A replace whose delete went through: a failure after it leaves no credential at all.
        var oldOneDeleted = false
        /// A create-first replace whose create went through: the new one is the one to manage.
        var newOneCreated = false
        var serverError: ProviderError?
        do throws(ProviderError) {
            switch change.action {
            case .adopt:
                break
            case .create(let after, let fingerprint):
                let created: CreatedCredential
                (created, note) = try await create(after, in: project, secret: secret)
                next.serverID = created.serverID
                next.secretFingerprint = fingerprint
                next.grants = []
            case .replace(_, let after, _, _, let fingerprint):
                // Where the key is the server's id, delete first: the new one cannot exist beside
                // it. Otherwise create first, so that there is never a moment without a
                // credential, and then the old one goes by its own id.
                let deleteFirst = planner.schema.capabilities.identity == .keyIsID
                if deleteFirst {
                    try await session.delete(address)
                    oldOneDeleted = true
                }
                let created: CreatedCredential
                (created, note) = try await create(after, in: project, secret: secret)
                next.serverID = created.serverID
                next.secretFingerprint = fingerprint
                next.grants = []
                if !deleteFirst {
                    newOneCreated = true
                    try await session.delete(address)
                }
            case .update(_, let after, let fields, let fingerprint, _):
                try await session.update(address, to: after, changes: fields, secret: declared)
                next.secretFingerprint = fingerprint
            case .setSecret(let fingerprint):
                try await session.setSecret(address, secret: secret)
                next.secretFingerprint = fingerprint
            case .grant(let grants):
                try await session.grant(address, grants: grants)
                next.grants = Array(Set(next.grants).union(grants)).sorted()
            case .revoke(let grants):
                try await session.revoke(address, grants: grants)
                next.grants = next.grants.filter { !grants.contains($0) }
            case .delete:
                try await session.delete(address)
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
            } else if newOneCreated {
                // The new one exists and state follows it; the old one is still live (or its
                // delete's outcome is unknown), and the next plan shows it beside the new one.
                outcomes.submit(intent, .record(next), key: key)
                record = next
                throw StepError(failure: error.outcomeUnknown ? .outcomeUnknown(error.description) : .provider(error.description))
            } else if oldOneDeleted && !error.outcomeUnknown {
                // The old one is gone and the new one is not there: state forgets it, and the
                // next plan creates it.
                outcomes.submit(intent, .forget, key: key)
                record = nil
                throw StepError(failure: .provider(error.description))
            } else if error.outcomeUnknown {
                // Whether the server applied it is unknown: the intent stays, and the next run settles it.
                throw StepError(failure: .outcomeUnknown(error.description))
            } else {
                outcomes.submit(intent, .unchanged, key: key)
                throw StepError(failure: .provider(error.description))
            }
        }
        let isDelete = change.action.kind == .delete
        outcomes.submit(intent, isDelete ? .forget : .record(next), key: key)
        record = isDelete ? nil : next
        if let serverError { throw StepError(failure: .provider(serverError.description)) }
        return note
    }

    /// Creates a credential; when the answer was lost, reads back instead of sending it again:
    /// found with our fields, the create is done; found with other fields, it is converged with
    /// an update; not found, it is created again. Up to `rounds` times, like any other retry.
    private func create(_ resource: Resource, in project: ProjectName, secret: Secret,
                        rounds: Int = 4) async throws(ProviderError) -> (CreatedCredential, OperationNote?) {
        var lost: [String] = []
        while true {
            do {
                let created = try await session.create(resource, in: project, secret: secret)
                // A generated secret is redacted from everything that follows, like any other.
                runSecrets.add(Array(created.generated.values))
                return (created, lost.isEmpty ? nil : .answerLost(times: lost.count, lastError: lost.last ?? "", then: .createdAgain))
            } catch where error.outcomeUnknown && lost.count < rounds {
                lost.append(error.message)
            }
            let live: [Resource]
            do {
                live = try await session.list(namespace: project)
            } catch {
                throw ProviderError(error.kind, request: error.request,
                                    message: "\(lost.last ?? ""); reading back to check failed too: \(error.message)", outcomeUnknown: true)
            }
            if let found = live.first(where: { $0.id == resource.id }) {
                let created = CreatedCredential(serverID: found.serverID)
                let changes = planner.fieldChanges(live: found, desired: resource)
                if changes.isEmpty {
                    // Our create went through (same fields; the password came with them).
                    return (created, .answerLost(times: lost.count, lastError: lost.last ?? "", then: .foundCreated))
                }
                try await session.update(CredentialAddress(namespace: project, key: resource.id, serverID: found.serverID),
                                         to: resource, changes: changes, secret: secret)
                return (created, .answerLost(times: lost.count, lastError: lost.last ?? "", then: .foundDifferentAndUpdated))
            }
        }
    }
}
