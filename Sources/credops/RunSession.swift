import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

/// Everything a plan or apply run holds: inputs, selected environments, state, connector.
final class RunSession: @unchecked Sendable {
    let inputs: Inputs
    let environments: [EnvironmentConfig]
    let store: any StateStore
    let workflow: Workflow
    let books: [EnvironmentName: SecretBook]
    let connector: SandboxConnector
    let terminal: Terminal
    private var closed = false

    private init(inputs: Inputs, environments: [EnvironmentConfig], store: any StateStore, workflow: Workflow,
                 books: [EnvironmentName: SecretBook], connector: SandboxConnector, terminal: Terminal) {
        self.inputs = inputs
        self.environments = environments
        self.store = store
        self.workflow = workflow
        self.books = books
        self.connector = connector
        self.terminal = terminal
    }

    /// Loads and checks the inputs, opens the state and resolves every secret; exits 1 on any problem.
    /// - Parameter authOnly: resolve only the environments' own credentials, not the declared
    ///   secrets (a read that compares none).
    ///   - checkPolicies: check the selected environments against the policies first (plan,
    ///     apply, rotate); a failing `error` policy stops the run before anything is sent.
    static func open(input: InputOptions, selection: EnvironmentSelection, state: StateOptions, terminal: Terminal,
                     verbose: Bool = false, authOnly: Bool = false, checkPolicies: Bool = false) async throws -> RunSession {
        try await open(paths: input.paths, environmentsDirectory: input.environmentsDirectory, providersDirectory: input.providersDirectory,
                       policiesDirectory: input.policiesDirectory,
                       allowPlaintextSecrets: input.allowPlaintextSecrets, secretsRoot: input.secrets, hosts: input.hosts,
                       selected: selection.environments, state: state, terminal: terminal, verbose: verbose, authOnly: authOnly,
                       checkPolicies: checkPolicies)
    }

    static func open(paths: [String], environmentsDirectory: String, providersDirectory: String?, policiesDirectory: String? = nil,
                     allowPlaintextSecrets: Bool, secretsRoot: SecretsRootOption,
                     hosts: HostOptions, selected: [String], state: StateOptions, terminal: Terminal, verbose: Bool,
                     authOnly: Bool = false, checkPolicies: Bool = false) async throws -> RunSession {
        let processEnvironment = ProcessInfo.processInfo.environment
        let inputs = try Loading.load(paths: paths, environmentsDirectory: environmentsDirectory, providersDirectory: providersDirectory,
                                      policiesDirectory: policiesDirectory,
                                      allowPlaintextSecrets: allowPlaintextSecrets, terminal: terminal, noteSkipped: verbose)
        // The selection first: a mistyped -e opens no state and makes no key.
        let environments: [EnvironmentConfig]
        switch Workflow.selectEnvironments(selected, from: inputs) {
        case .success(let envs): environments = envs
        case .failure(let diagnostic):
            terminal.diagnostics([diagnostic])
            throw ExitCode(1)
        }
        if checkPolicies { try Loading.checkPolicies(inputs, environments: environments, terminal: terminal) }
        let location = try state.location(environment: processEnvironment)
        let store: any StateStore
        let key: FingerprintKey
        do {
            let notes: [String]
            (store, key, notes) = try await Composition.openState(location, environment: processEnvironment,
                                                                   allowLocalKey: state.allowsLocalKey(environment: processEnvironment))
            for note in notes { terminal.err("note: \(note)") }
        } catch {
            terminal.err("error: \(error)")
            throw ExitCode(1)
        }
        let connector = Composition.connector()
        let workflow = Workflow(inputs: inputs, providers: Composition.providers, connector: connector, store: store,
                                stateKey: key,
                                secrets: SecretResolver(environment: processEnvironment,
                                                        secretsRoot: try secretsRoot.root(environmentsDirectory: environmentsDirectory)),
                                logger: CLILogging.logger(verbose: verbose, terminal: terminal))
        // Before any secret is resolved or any request made: hosts a pull request may not reach.
        let refusals = try hosts.refusals(for: environments, environment: processEnvironment)
        if !refusals.isEmpty {
            for refusal in refusals { terminal.err("error: \(refusal)") }
            terminal.err("Nothing was sent to any environment.")
            await store.close()
            throw ExitCode(1)
        }
        for env in environments where env.tls.insecureSkipVerify {
            terminal.err("warning: \(env.name): tls.insecureSkipVerify is on; the server's certificate is not checked")
        }
        let (books, problems) = workflow.resolveSecrets(for: environments, authOnly: authOnly)
        // From here on, nothing printed or written may show any of them.
        terminal.redaction.add(environments.compactMap { books[$0.name] }.flatMap(\.allSecrets))
        Self.showWarnings(problems.filter { !$0.isError }, terminal: terminal)
        if problems.hasErrors {
            terminal.diagnostics(problems.filter(\.isError))
            terminal.err("\(problems.filter(\.isError).count) secret\(problems.count == 1 ? "" : "s") could not be resolved; nothing was sent to any environment.")
            await store.close()
            throw ExitCode(1)
        }
        return RunSession(inputs: inputs, environments: environments, store: store, workflow: workflow, books: books,
                          connector: connector, terminal: terminal)
    }

    /// Warnings about secret sources, once each (a file shared by environments is read for
    /// each), and in one line when there are many of the same kind.
    static func showWarnings(_ warnings: [Diagnostic], terminal: Terminal) {
        var seen = Set<String>()
        let unique = warnings.filter { seen.insert("\($0.location.map(\.description) ?? "")|\($0.message)").inserted }
        let readable = unique.filter { $0.message.contains("can be read by other users") }
        if readable.count > 3 {
            let files = readable.compactMap { $0.message.components(separatedBy: "secret file ").dropFirst().first?.components(separatedBy: " can be read").first }
            terminal.err("warning: \(readable.count) secret files can be read by other users: \(files.joined(separator: ", ")); run chmod 600 on each")
            terminal.diagnostics(unique.filter { !$0.message.contains("can be read by other users") })
        } else {
            terminal.diagnostics(unique)
        }
    }

    /// `Read 2 manifests (2 projects, 7 credentials) and 3 environments.`
    var readSummary: String {
        let m = inputs.manifests.count, p = inputs.projectCount, c = inputs.credentialCount, e = environments.count
        return "Read \(m) manifest\(m == 1 ? "" : "s") (\(p) project\(p == 1 ? "" : "s"), \(c) credential\(c == 1 ? "" : "s")) and \(e) environment\(e == 1 ? "" : "s")."
    }

    func plan(options: PlanOptions, unavailable: [EnvironmentName: String] = [:], stop: StopSignal? = nil,
              runID: String = "plan") async -> (Plan, [EnvironmentName: PreparedEnvironment]) {
        await workflow.plan(environments: environments, books: books, options: options, unavailable: unavailable, stop: stop, runID: runID,
                            runSecrets: terminal.redaction)
    }

    func close() async {
        guard !closed else { return }
        closed = true
        await connector.shutdown()
        await store.close()
    }
}
