import Foundation
import Logging
import Synchronization

/// One environment made ready for planning and applying: its session, secrets and state.
public final class PreparedEnvironment: Sendable {
    public let config: EnvironmentConfig
    public let desired: DesiredEnvironment
    public let book: SecretBook
    public let session: (any ProviderSession)?
    public let http: HTTPClient?
    /// State records, with intents of interrupted runs settled.
    public let managed: [ManagedCredential]
    /// What apply writes before its first operation to settle those intents.
    public let repairs: [IntentResolver.Repair]
    /// Every secret of the run, for the messages apply reports and stores.
    public let runSecrets: RunSecrets
    /// Fingerprints a secret credops made at apply, as declared ones are, for state.
    public let fingerprint: @Sendable (ProjectName, CredentialKey, Secret) -> Fingerprint

    init(config: EnvironmentConfig, desired: DesiredEnvironment, book: SecretBook, session: (any ProviderSession)?,
         http: HTTPClient?, managed: [ManagedCredential], repairs: [IntentResolver.Repair], runSecrets: RunSecrets,
         fingerprint: @escaping @Sendable (ProjectName, CredentialKey, Secret) -> Fingerprint) {
        self.fingerprint = fingerprint
        self.runSecrets = runSecrets
        self.config = config
        self.desired = desired
        self.book = book
        self.session = session
        self.http = http
        self.managed = managed
        self.repairs = repairs
    }

    /// Stops the environment's HTTP workers.
    public func close() { http?.shutdown() }
}

/// The stages of a run, as a value: which environments, with which inputs, against which
/// state. The CLI builds one and calls `plan` and then `apply`.
public struct Workflow: Sendable {
    public let inputs: Inputs
    public let providers: ProviderRegistry
    public let connector: any EnvironmentConnector
    public let store: any StateStore
    public let stateKey: FingerprintKey
    public let secrets: SecretResolver
    public let logger: Logger

    public init(inputs: Inputs, providers: ProviderRegistry, connector: any EnvironmentConnector, store: any StateStore,
                stateKey: FingerprintKey, secrets: SecretResolver,
                logger: Logger = Logger(label: "credops", factory: { _ in SwiftLogNoOpLogHandler() })) {
        self.logger = logger
        self.inputs = inputs
        self.providers = providers
        self.connector = connector
        self.store = store
        self.stateKey = stateKey
        self.secrets = secrets
    }

    /// The environments a run works on: all, or those named with `-e` (unknown names are errors).
    public func selectEnvironments(_ names: [String]) -> Result<[EnvironmentConfig], Diagnostic> {
        Self.selectEnvironments(names, from: inputs)
    }

    /// As `selectEnvironments(_:)`, before any workflow (or state) exists.
    public static func selectEnvironments(_ names: [String], from inputs: Inputs) -> Result<[EnvironmentConfig], Diagnostic> {
        guard !names.isEmpty else { return .success(inputs.environments) }
        var selected: [EnvironmentConfig] = []
        for name in names {
            guard let env = inputs.environment(named: EnvironmentName(name)) else {
                var message = "no environment named '\(name)'"
                if let s = Suggestion.closest(to: name, among: inputs.environments.map(\.name.rawValue)) { message += " (did you mean '\(s)'?)" }
                message += "; known: \(inputs.environments.map(\.name.rawValue).joined(separator: ", "))"
                return .failure(.error(message, address: name))
            }
            if !selected.contains(where: { $0.name == env.name }) { selected.append(env) }
        }
        return .success(selected.sorted { $0.name < $1.name })
    }

    /// Resolves every secret the selected environments need; any missing one is an error.
    /// - Parameter authOnly: only the environments' own credentials (for reads that compare
    ///   no declared secret, like `credops expiring`).
    public func resolveSecrets(for environments: [EnvironmentConfig], authOnly: Bool = false) -> ([EnvironmentName: SecretBook], [Diagnostic]) {
        var books: [EnvironmentName: SecretBook] = [:]
        var problems: [Diagnostic] = []
        for env in environments {
            if authOnly {
                let (auth, p) = secrets.auth(for: env)
                books[env.name] = SecretBook(auth: auth)
                problems += p
                continue
            }
            guard let provider = providers[env.provider] else { continue }
            let desired = inputs.desired(for: env, schema: provider.schema)
            let (book, p) = secrets.book(for: desired, key: stateKey)
            books[env.name] = book
            problems += p
        }
        return (books, problems)
    }

    /// Reads every environment's live state (side by side) and plans it. Writes nothing.
    ///
    /// - Parameters:
    ///   - unavailable: environments that must not be planned (e.g. locked by another run), with why.
    ///   - stop: passed to every session, so retries stop waiting once it is requested.
    ///   - runSecrets: every secret of the run; by default those of `books`.
    public func plan(environments: [EnvironmentConfig], books: [EnvironmentName: SecretBook], options: PlanOptions,
                     unavailable: [EnvironmentName: String] = [:], stop: StopSignal? = nil, runID: String = "plan",
                     runSecrets: RunSecrets? = nil) async
        -> (Plan, [EnvironmentName: PreparedEnvironment]) {
        let runSecrets = runSecrets ?? RunSecrets(books.keys.sorted().flatMap { books[$0]!.allSecrets })
        let results = await withTaskGroup(of: (EnvironmentPlan, PreparedEnvironment?).self) { group in
            for env in environments {
                group.addTask {
                    if let reason = unavailable[env.name] {
                        return (EnvironmentPlan(environment: env.name, provider: env.provider, endpoint: env.endpoint.description,
                                                isProtected: env.isProtected, failure: reason), nil)
                    }
                    return await self.planEnvironment(env, book: books[env.name] ?? SecretBook(auth: nil), options: options,
                                                      stop: stop, runID: runID, runSecrets: runSecrets)
                }
            }
            var collected: [(EnvironmentPlan, PreparedEnvironment?)] = []
            for await result in group { collected.append(result) }
            return collected
        }
        var prepared: [EnvironmentName: PreparedEnvironment] = [:]
        for (plan, env) in results { if let env { prepared[plan.environment] = env } }
        let plans = results.map(\.0).sorted { $0.environment < $1.environment }
        return (Plan(environments: plans), prepared)
    }

    private func planEnvironment(_ env: EnvironmentConfig, book: SecretBook, options: PlanOptions, stop: StopSignal?,
                                 runID: String, runSecrets: RunSecrets) async -> (EnvironmentPlan, PreparedEnvironment?) {
        var plan = EnvironmentPlan(environment: env.name, provider: env.provider, endpoint: env.endpoint.description,
                                   isProtected: env.isProtected)
        guard let provider = providers[env.provider] else {
            plan.failure = "unknown provider \(env.provider)"
            return (plan, nil)
        }
        if let described = provider as? ProfileProvider { plan.providerSource = "profile \(described.profile.location.file)" }
        var desired = inputs.desired(for: env, schema: provider.schema)
        var managed: [ManagedCredential]
        let intents: [Intent]
        do {
            managed = try await store.managedCredentials(environment: env.name)
            intents = try await store.pendingIntents(environment: env.name)
        } catch {
            plan.failure = runSecrets.redactor.redact("cannot read state (\(store.displayName)): \(error)")
            return (plan, nil)
        }
        desired.projects = scope(desired, env: env, managed: managed)

        var connection: Connection
        do {
            connection = try await connector.connect(env, credentials: book.auth)
        } catch {
            plan.failure = runSecrets.redactor.redact("\(error)")
            return (plan, nil)
        }
        connection.stop = stop
        let (stateKey, environment) = (stateKey, env.name)
        let fingerprint: @Sendable (ProjectName, CredentialKey, Secret) -> Fingerprint = { namespace, key, secret in
            SecretBook.fingerprint(secret, key: stateKey, environment: environment, project: namespace, id: key)
        }
        connection.fingerprintSecret = fingerprint
        runSecrets.add(connection.secrets)
        connection.runSecrets = runSecrets
        let http = HTTPClient(configuration: HTTPClientConfiguration(environment: env, logger: logger))
        let session = provider.session(for: env, connection: connection, http: http)

        let planner = Planner(schema: provider.schema)
        let resolver = IntentResolver(schema: provider.schema)
        // Records of projects this run does not look at stay as they are.
        let looked = Set(desired.projects.map(\.serverProject))
        let unlooked = managed.filter { !looked.contains($0.namespace) }
        var settled: [ManagedCredential] = []
        settled.reserveCapacity(managed.count)
        // Each project's records are handed over (and let go of) as its turn comes: they and
        // what planning makes of them are not held side by side to the end.
        var byProject = Self.byNamespace(managed)
        managed = []
        // (Cross checks refuse two projects that are one on the server; should two come here
        // anyway, both see the records.)
        let turns = Dictionary(desired.projects.map { ($0.serverProject, 1) }, uniquingKeysWith: +)
        let intentsByProject = Dictionary(grouping: intents, by: \.namespace)
        var repairs: [IntentResolver.Repair] = []
        var failure: String?
        var liveResources: [ProjectName: [Resource]] = [:]
        var liveGrants: [ProjectName: [CredentialKey: [AccessGrant]]] = [:]
        var fingerprints: [(ProjectName, CredentialKey, Fingerprint)] = []
        var expiring: [ExpiringCredential] = []
        // Without namespaces every project sees the whole account: what the others declare is theirs.
        let declaredByProject = Dictionary(desired.projects.map { ($0.serverProject, Set($0.credentials.map(\.key))) },
                                           uniquingKeysWith: { $0.union($1) })
        // The reads run on the HTTP client's own thread: no thread hand-off per request.
        await withTaskExecutorPreference(http.taskExecutor) {
            for project in desired.projects {
                do {
                    var (input, projectRepairs) = try await readProject(
                        project, session: session,
                        managed: (turns[project.serverProject] == 1 ? byProject.removeValue(forKey: project.serverProject) : byProject[project.serverProject]) ?? [],
                        intents: intentsByProject[project.serverProject] ?? [], resolver: resolver, book: book,
                        concurrency: env.concurrency, runID: runID, stop: stop, rotate: options.rotate)
                    if provider.schema.capabilities.namespace == .none {
                        input.declaredElsewhere = declaredByProject.filter { $0.key != project.serverProject }.values
                            .reduce(into: Set<CredentialKey>()) { $0.formUnion($1) }
                    }
                    plan.projects.append(planner.plan(input))
                    expiring += planner.expiring(input, environment: env.name, within: options.expiryWindow)
                    settled += input.managed.values
                    repairs += projectRepairs
                    liveResources[project.serverProject] = input.live
                    liveGrants[project.serverProject] = input.liveGrants
                    fingerprints += input.secrets.map { (project.serverProject, $0.key, $0.value) }
                } catch {
                    failure = runSecrets.redactor.redact("project \(project.project)\(project.serverProject != project.project ? " (\(project.serverProject) on this server)" : ""): \(error)")
                    break
                }
            }
        }
        settled += unlooked
        let prepared = PreparedEnvironment(config: env, desired: desired, book: book, session: session, http: http,
                                           managed: settled, repairs: repairs, runSecrets: runSecrets, fingerprint: fingerprint)
        if let failure {
            plan.failure = failure
            plan.projects = []
            return (plan, prepared)
        }
        plan.expiring = expiring.isEmpty ? nil : expiring.sorted { ($0.due, $0.project, $0.key) < ($1.due, $1.project, $1.key) }
        plan.liveDigest = PlanDigest.live(resources: liveResources, grants: liveGrants, managed: settled)
        plan.secretsDigest = PlanDigest.secrets(fingerprints)
        plan.refusals = plan.guardRailRefusals(options: options, policyLimit: PolicyChecker(policies: inputs.policies).deleteLimit(for: env))
        return (plan, prepared)
    }

    /// State records by namespace. Records all of one namespace (the usual case) are kept as
    /// they are, not copied (2 MB per 10,000 records).
    static func byNamespace(_ records: [ManagedCredential]) -> [ProjectName: [ManagedCredential]] {
        guard let first = records.first?.namespace else { return [:] }
        if records.allSatisfy({ $0.namespace == first }) { return [first: records] }
        return Dictionary(grouping: records, by: \.namespace)
    }

    /// The projects to look at: those declared for the environment, plus declared projects (for
    /// other environments) where the state says credops still manages credentials here, so that
    /// removing an environment from a manifest cleans up after itself.
    private func scope(_ desired: DesiredEnvironment, env: EnvironmentConfig, managed: [ManagedCredential]) -> [DesiredProject] {
        var projects = desired.projects
        let present = Set(projects.map(\.serverProject))
        let managedProjects = Set(managed.map(\.namespace))
        var seen = Set<ProjectName>()
        for manifest in inputs.manifests where manifest.provider == env.provider {
            let server = env.serverProject(for: manifest.project)
            guard !present.contains(server), managedProjects.contains(server), seen.insert(server).inserted else { continue }
            projects.append(DesiredProject(project: manifest.project, serverProject: server,
                                           prune: manifest.prune == .none ? .none : .managed, credentials: [],
                                           location: manifest.projectLocation))
        }
        return projects.sorted { $0.project < $1.project }
    }

    private func readProject(_ project: DesiredProject, session: any ProviderSession, managed: [ManagedCredential],
                             intents: [Intent], resolver: IntentResolver, book: SecretBook, concurrency: Int,
                             runID: String, stop: StopSignal?,
                             rotate: [ProjectName: Set<CredentialKey>]) async throws(ProviderError) -> (Planner.ProjectInput, [IntentResolver.Repair]) {
        let listed = try await session.list(namespace: project.serverProject)
        // Only the keys: a dictionary of the declared credentials themselves held 3 MB per 10,000.
        let declared = Set(project.credentials.map(\.key))
        // Which live credential is which (by the id state pinned, where the server assigns ids).
        var byKey: [CredentialKey: ManagedCredential] = [:]
        byKey.reserveCapacity(managed.count)
        for record in managed where byKey[record.key] == nil { byKey[record.key] = record }
        let match = IdentityMatcher(identity: resolver.schema.capabilities.identity)
            .match(live: listed, managed: byKey, declared: declared)
        let live = match.live
        let recorded = match.managed
        // Grant and revoke intents are settled from the access list, so it is read for them too.
        let grantIntents = Set(intents.filter { $0.action == .grant || $0.action == .revoke }.map(\.key))
        let declaresGrants = Set(project.credentials.filter { !($0.grants?.isEmpty ?? true) }.map(\.key))
        let managedGrants = Set(managed.filter { !$0.grants.isEmpty }.map(\.key))
        let needGrants = Array(live.lazy.map { CredentialAddress(namespace: project.serverProject, key: $0.id, serverID: $0.serverID) }.filter {
            grantIntents.contains($0.key) || Planner.needsGrants(isDeclared: declared.contains($0.key), declaresGrants: declaresGrants.contains($0.key),
                                                             hasManagedGrants: managedGrants.contains($0.key), prune: project.prune)
        })
        // Each answer goes straight into the map (a list of every address with its result,
        // and a copy of it, held 2.5 MB per 10,000 credentials).
        var initial: (grants: [CredentialKey: [AccessGrant]], failed: [(Int, ProviderError)]) = ([:], [])
        initial.grants.reserveCapacity(needGrants.count)
        let read = Mutex(initial)
        await Concurrently.forEach(Array(needGrants.indices), limit: Concurrently.pipelined(concurrency)) { (i: Int) in
            do throws(ProviderError) {
                let grants = try await session.grants(of: needGrants[i])
                read.withLock { $0.grants[needGrants[i].key] = grants }
            } catch {
                read.withLock { $0.failed.append((i, error)) }
            }
        }
        var (liveGrants, failed) = read.withLock { state in
            defer { state = ([:], []) }
            return state
        }
        // One read that failed fails the whole environment's plan, so a read that met a
        // passing fault (a 5xx or rate-limit burst, a dropped connection) even after its
        // retries is sent once more, one at a time, after the others: by then the burst that
        // hit it has usually passed. Anything else fails the plan at once. In list order.
        failed.sort { $0.0 < $1.0 }
        for (i, error) in failed {
            if error.isTransient && !(stop?.isRequested ?? false) {
                liveGrants[needGrants[i].key] = try await session.grants(of: needGrants[i])
            } else {
                throw error
            }
        }
        // Without intents to settle there is nothing to look up (and no index of the live list to build).
        let (settled, repairs) = intents.isEmpty ? (recorded, []) : resolver.resolve(
            intents, live: Dictionary(live.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }),
            liveGrants: liveGrants, managed: recorded, runID: runID, namesakes: match.namesakeResources)
        var secrets: [CredentialKey: Fingerprint] = [:]
        for credential in project.credentials {
            secrets[credential.key] = book.fingerprint(project: project.serverProject, id: credential.key)
        }
        var input = Planner.ProjectInput(desired: project, live: live, liveGrants: liveGrants, managed: settled, secrets: secrets,
                                         conflicts: match.conflicts, namesakes: match.namesakes, stale: match.stale)
        // Namesakes that settling claimed as replaced ones of ours are retiring, not namesakes.
        var retiring = match.retiring
        for (key, record) in settled {
            let claimed = Set(record.retiring.map(\.serverID))
            guard let others = match.namesakeResources[key], others.contains(where: { $0.serverID.map(claimed.contains) ?? false }) else { continue }
            retiring[key, default: []] += others.filter { $0.serverID.map(claimed.contains) ?? false }
            let left = others.filter { !($0.serverID.map(claimed.contains) ?? false) }.compactMap(\.serverID)
            input.namesakes[key] = left.isEmpty ? nil : left
        }
        input.retiring = retiring
        input.rotate = rotate[project.project] ?? []
        return (input, repairs)
    }

    /// Takes the lock of every environment (side by side), waiting up to `timeout` for each.
    /// - Parameter onWait: told the holder of a lock this run is about to wait for (nil when
    ///   the holder could not be read), before the wait starts.
    /// - Returns: the environments that could not be locked, with why.
    public func lock(_ environments: [EnvironmentConfig], run: RunInfo, timeout: Duration, stop: StopSignal,
                     onWait: @escaping @Sendable (EnvironmentName, LockInfo?) -> Void = { _, _ in }) async -> [EnvironmentName: String] {
        await withTaskGroup(of: (EnvironmentName, String?).self) { group in
            for env in environments {
                group.addTask {
                    let info = LockInfo(environment: env.name, lockID: run.runID, user: run.user, host: run.host, pid: run.pid,
                                        command: run.command, since: Date())
                    do {
                        do {
                            try await store.acquireLock(info, timeout: .zero, shouldStop: { stop.isRequested })
                        } catch StateError.locked(let holder, _) where timeout > .zero && !stop.isRequested {
                            onWait(env.name, holder)
                            try await store.acquireLock(info, timeout: timeout, shouldStop: { stop.isRequested })
                        }
                        return (env.name, nil)
                    } catch {
                        return (env.name, "\(env.name) \(error)")
                    }
                }
            }
            var failures: [EnvironmentName: String] = [:]
            for await (name, failure) in group { if let failure { failures[name] = failure } }
            return failures
        }
    }

    /// Releases the locks this run holds.
    public func unlock(_ environments: [EnvironmentConfig]) async {
        for env in environments { await store.releaseLock(environment: env.name) }
    }
}
