import Foundation

/// Export and adopt as operations of the engine: read one project of one environment and
/// write it as a manifest; optionally record what was exported as managed, through a run record
/// and the environment's lock like every other write to state.
public struct ExportUseCase: Sendable {
    public let provider: any Provider
    public let connector: any EnvironmentConnector

    public init(provider: any Provider, connector: any EnvironmentConnector) {
        self.provider = provider
        self.connector = connector
    }

    /// What an export read and wrote.
    public struct Result: Sendable {
        public var environment: EnvironmentName
        /// As manifests name the project, and as the server does.
        public var project: ProjectName
        public var serverProject: ProjectName
        public var export: Exporter.Export
        /// The live credentials that are in the export, with their grants (safe names only).
        public var exported: [Resource]
        public var grants: [CredentialKey: [AccessGrant]]
        /// A live value holds a secret of this run; the export shows `(redacted)` there.
        public var holdsRunSecret: Bool
        /// Live credentials left out because other projects manage them (APIs without
        /// namespaces, where one account lists every project's credentials).
        public var managedElsewhere: Int = 0
        /// The server generates the secrets: adopted credentials are marked as made by someone else.
        public var secretsGenerated = false
    }

    /// Why an export could not read the server.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        case connect(String)
        case read(ProviderError)

        public var description: String {
            switch self {
            case .connect(let message): message
            case .read(let error): error.description
            }
        }
    }

    /// Reads every live credential of `project` (by its manifest or server name) and its grants.
    ///
    /// - Parameter managed: the environment's state records. Where the API has no namespaces,
    ///   credentials another project manages are left out, and so are names several live
    ///   credentials share (reported as skipped: a manifest cannot tell them apart).
    public func read(environment env: EnvironmentConfig, project named: ProjectName, credentials: Connection.Credentials?,
                     runSecrets: RunSecrets, http: HTTPClient, managed: [ManagedCredential] = []) async throws(Failure) -> Result {
        let manifestProject = env.projects.first { $0.value == named }?.key ?? named
        let serverProject = env.serverProject(for: manifestProject)
        let session: any ProviderSession
        do {
            var connection = try await connector.connect(env, credentials: credentials)
            // What the session learns (an access token) is redacted from this output too.
            runSecrets.add(connection.secrets)
            connection.runSecrets = runSecrets
            session = provider.session(for: env, connection: connection, http: http)
        } catch {
            throw .connect(runSecrets.redactor.redact("\(error)"))
        }
        var live: [Resource]
        var managedElsewhere = 0
        var shared: [CredentialKey: [String]] = [:]
        let grants: [(CredentialKey, [AccessGrant])]
        do throws(ProviderError) {
            live = try await session.list(namespace: serverProject)
            if provider.schema.capabilities.namespace == .none {
                let others = managed.filter { $0.namespace != serverProject }
                let pinned = Set(others.compactMap(\.serverID)), keys = Set(others.filter { $0.serverID == nil }.map(\.key))
                let mine = live.filter { r in !(r.serverID.map(pinned.contains) ?? false) && !keys.contains(r.id) }
                managedElsewhere = live.count - mine.count
                let byName = Dictionary(grouping: mine, by: \.id)
                shared = byName.filter { $0.value.count > 1 }.mapValues { $0.compactMap(\.serverID) }
                live = mine.filter { byName[$0.id]?.count == 1 }
            }
            let addresses = live.map { CredentialAddress(namespace: serverProject, key: $0.id, serverID: $0.serverID) }
            // On the HTTP client's own thread, as a plan reads them: no hand-off per request.
            grants = try await withTaskExecutorPreference(http.taskExecutor) { () async throws(ProviderError) in
                try await Concurrently.map(addresses, limit: env.concurrency) { (address: CredentialAddress) throws(ProviderError) in
                    (address.key, try await session.grants(of: address))
                }
            }
        } catch {
            throw .read(error)
        }
        // Grants as the server named them, but only names that are safe to keep and hold no
        // secret of this run (a server may list a grant named after the token it was sent).
        let redactor = runSecrets.redactor
        let grantsByID = Dictionary(grants, uniquingKeysWith: { a, _ in a }).mapValues { list in
            list.filter { TextSafety.nameProblem($0.name) == nil && redactor.redact($0.name) == $0.name }
        }
        var export = Exporter(schema: provider.schema).export(
            environment: env.name, provider: env.provider, project: manifestProject, live: live, grants: grantsByID)
        for (name, ids) in shared.sorted(by: { $0.key < $1.key }) {
            export.skipped.append(UnaddressableCredential(
                name: name.rawValue, problem: "is held by \(ids.count) credentials on the server (ids \(ids.joined(separator: ", "))); rename all but one there to export it"))
        }
        let exportedIDs = Set(export.keys)
        return Result(environment: env.name, project: manifestProject, serverProject: serverProject, export: export,
                      exported: live.filter { exportedIDs.contains($0.id) }, grants: grantsByID,
                      holdsRunSecret: redactor.redact(export.text) != export.text, managedElsewhere: managedElsewhere,
                      secretsGenerated: provider.schema.capabilities.secret == .generated)
    }

    /// Records the exported credentials as managed (nothing changes on the server): under the
    /// environment's lock, as a run of its own in the history, with one `adopt` per credential.
    ///
    /// - Parameter describe: words the outcome for the history (the renderer's wording).
    public func adopt(_ result: Result, store: any StateStore, run: RunInfo, lockTimeout: Duration = .seconds(60),
                      describe: @Sendable (EnvironmentReport) -> String) async throws -> EnvironmentReport {
        try await store.acquireLock(LockInfo(environment: result.environment, lockID: run.runID, user: run.user, host: run.host, pid: run.pid,
                                             command: run.command, since: Date()), timeout: lockTimeout, shouldStop: { false })
        var record = RunRecord(runID: run.runID, environment: result.environment, command: run.command, user: run.user, host: run.host,
                               pid: run.pid, startedAt: Date())
        do {
            try await store.beginRun(record)
            var results: [OperationResult] = []
            for resource in result.exported {
                try await store.record(ManagedCredential(
                    environment: result.environment, namespace: result.serverProject, key: resource.id, serverID: resource.serverID,
                    secretFingerprint: nil,
                    grants: result.grants[resource.id] ?? [], delivery: result.secretsGenerated ? .external : nil, lastAction: ActionKind.adopt.rawValue, lastRunID: run.runID, lastChangedAt: Date()))
                results.append(OperationResult(project: result.serverProject.rawValue, key: resource.id.rawValue, action: .adopt,
                                               status: .applied))
            }
            var report = EnvironmentReport(environmentName: result.environment.rawValue, results: results)
            report.durationMilliseconds = Int(Date().timeIntervalSince(record.startedAt) * 1000)
            record.finishedAt = Date()
            record.success = true
            record.message = describe(report)
            record.counts = report.changes.stateCounts
            try await store.finishRun(record)
            await store.releaseLock(environment: result.environment)
            return report
        } catch {
            await store.releaseLock(environment: result.environment)
            throw error
        }
    }
}
