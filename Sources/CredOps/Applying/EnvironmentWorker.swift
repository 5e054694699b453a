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
    let shouldStop: @Sendable () -> Bool

    private func initialRecord(_ change: Change) -> ManagedCredential? {
        managed.first { $0.project == change.serverProject && $0.username == change.username }
    }

    /// Runs one credential's steps in order; after a failure the rest are skipped.
    func run(_ job: CredentialJob) async -> [OperationResult] {
        guard let first = job.changes.first else { return [] }
        var record = initialRecord(first)
        var results: [OperationResult] = []
        var failedStep: ActionKind?
        for change in job.changes {
            var result = OperationResult(project: change.serverProject.rawValue, username: change.username.rawValue,
                                         action: change.action.kind, status: .applied)
            switch change.action {
            case .grant(let g), .revoke(let g): result.grants = g
            case .update(_, _, let fields, _, let passwordChanged):
                result.fields = fields.map(\.field)
                if passwordChanged { result.note = "password changed" }
            default: break
            }
            if let failedStep {
                result.status = .skipped
                result.error = "skipped: the \(failedStep.rawValue) of this credential failed"
                results.append(result)
                continue
            }
            if shouldStop() {
                result.status = .skipped
                result.error = "skipped: apply was interrupted"
                results.append(result)
                continue
            }
            do {
                let note = try await execute(change, record: &record)
                if let note { result.note = [result.note, note].compactMap { $0 }.joined(separator: "; ") }
            } catch {
                result.status = .failed
                result.error = error.description
                failedStep = change.action.kind
            }
            results.append(result)
        }
        return results
    }

    struct StepError: Error, CustomStringConvertible {
        var description: String
    }

    /// Performs one change on the server, then writes the state it leads to.
    ///
    /// Every server write is bracketed in state: an intent before it is sent, and its outcome
    /// (with the intent removed) after, so that a crash in between is settled by the next run.
    /// - Returns: a note for the report, if any.
    private func execute(_ change: Change, record: inout ManagedCredential?) async throws(StepError) -> String? {
        let project = change.serverProject
        let id = change.username
        let password = book.password(project: project, id: id)
        if change.action.passwordFingerprint != nil && password == nil {
            throw StepError(description: "no password resolved for \(id)")
        }
        let secret = password ?? Secret("")
        var next = record ?? ManagedCredential(environment: environment, project: project, username: id, passwordFingerprint: nil,
                                               grants: [], lastAction: "", lastRunID: runID, lastChangedAt: Date())
        next.lastAction = change.action.kind.rawValue
        next.lastRunID = runID
        next.lastChangedAt = Date()

        if case .adopt(_, let grants, _) = change.action {
            // State only: nothing is sent.
            next.grants = Array(Set(next.grants).union(grants)).sorted()
            do {
                try await store.record(next)
            } catch {
                throw StepError(description: "the state could not be written (\(store.displayName)): \(error)")
            }
            record = next
            return nil
        }

        var intent = Intent(id: "\(runID)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))", environment: environment,
                            project: project, username: id, action: change.action.kind, runID: runID,
                            passwordFingerprint: change.action.passwordFingerprint)
        switch change.action {
        case .create(let after, _), .update(_, let after, _, _, _): intent.fieldsDigest = Intent.digest(after, schema: planner.schema)
        case .grant(let g), .revoke(let g): intent.grants = g
        default: break
        }
        do {
            try await store.recordIntent(intent)
        } catch {
            throw StepError(description: "not sent: the state could not record it first (\(store.displayName)): \(error)")
        }

        var note: String?
        var serverError: ProviderError?
        do throws(ProviderError) {
            switch change.action {
            case .adopt:
                break
            case .create(let after, let fingerprint):
                note = try await create(project: project, resource: after, secret: secret)
                next.passwordFingerprint = fingerprint
                next.grants = []
            case .update(_, let after, _, let fingerprint, _):
                try await session.update(project: project, resource: after, secret: secret)
                next.passwordFingerprint = fingerprint
            case .setPassword(let fingerprint):
                try await session.setSecret(project: project, id: id, secret: secret)
                next.passwordFingerprint = fingerprint
            case .grant(let grants):
                try await session.grant(project: project, id: id, grants: grants)
                next.grants = Array(Set(next.grants).union(grants)).sorted()
            case .revoke(let grants):
                try await session.revoke(project: project, id: id, grants: grants)
                next.grants = next.grants.filter { !grants.contains($0) }
            case .delete:
                try await session.delete(project: project, id: id)
            }
            next.pendingRedeploy = nil
        } catch {
            if error.isStoredButNotDeployed {
                // The manager stored the change; remember it, and that it must be sent again.
                serverError = error
                if let fp = change.action.passwordFingerprint { next.passwordFingerprint = fp }
                switch change.action {
                case .grant(let grants): next.grants = Array(Set(next.grants).union(grants)).sorted()
                case .revoke(let grants): next.grants = next.grants.filter { !grants.contains($0) }
                default: break
                }
                next.pendingRedeploy = error.message
            } else if error.outcomeUnknown {
                // Whether the server applied it is unknown: the intent stays, and the next run settles it.
                throw StepError(description: error.description + " (outcome unknown; the next run checks it)")
            } else {
                try? await store.complete(intent, outcome: .unchanged)
                throw StepError(description: error.description)
            }
        }
        let isDelete = change.action.kind == .delete
        do {
            try await store.complete(intent, outcome: isDelete ? .forget : .record(next))
            record = isDelete ? nil : next
        } catch {
            throw StepError(description: "applied on the server, but the state could not be written (\(store.displayName)): \(error); the next run settles it")
        }
        if let serverError { throw StepError(description: serverError.description) }
        return note
    }

    /// Creates a credential; when the answer was lost, reads back instead of sending it again:
    /// found with our fields, the create is done; found with other fields, it is converged with
    /// an update; not found, it is created again. Up to `rounds` times, like any other retry.
    private func create(project: ProjectName, resource: Resource, secret: Secret, rounds: Int = 4) async throws(ProviderError) -> String? {
        var lost: [String] = []
        while true {
            do {
                try await session.create(project: project, resource: resource, secret: secret)
                return lost.isEmpty ? nil : "answer lost \(lost.count)×; not found on read-back, created again"
            } catch where error.outcomeUnknown && lost.count < rounds {
                lost.append(error.message)
            }
            let live: [Resource]
            do {
                live = try await session.list(project: project)
            } catch {
                throw ProviderError(error.kind, request: error.request,
                                    message: "\(lost.last ?? ""); reading back to check failed too: \(error.message)", outcomeUnknown: true)
            }
            if let found = live.first(where: { $0.id == resource.id }) {
                if planner.fieldChanges(live: found, desired: resource).isEmpty {
                    // Our create went through (same fields; the password came with them).
                    return "answer lost (\(lost.last ?? "")); found created on read-back"
                }
                try await session.update(project: project, resource: resource, secret: secret)
                return "answer lost (\(lost.last ?? "")); found with other fields on read-back and updated"
            }
        }
    }
}
