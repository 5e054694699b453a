import ArgumentParser
import CredOps
import Foundation

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a manifest from the credentials an environment holds now.",
        discussion: """
            A way in for existing servers: every live credential of the project, with all its \
            fields and access grants. Passwords cannot be read back, so each credential gets \
            `password: { fromEnv: NAME }` with a suggested variable name (listed on stderr). \
            With --adopt, credops also records them as managed in its state, without changing \
            anything on the server; the first apply then sets each password once.

            Examples:
              credops export -e staging --project payments
              credops export -e staging --project payments --out manifests/ --adopt
            """)

    @Option(name: [.customShort("e"), .customLong("environment")], help: "The environment to read.")
    var environment: String

    @Option(help: "The project (as manifests name it, or as the server does).")
    var project: String

    @Option(help: "Write PROJECT.yaml into this directory instead of printing it.")
    var out: String?

    @Flag(help: "Record the exported credentials as managed by credops (changes nothing on the server).")
    var adopt = false

    @Option(name: .customLong("environments"), help: "The directory of environment files.")
    var environmentsDirectory = "environments"

    @OptionGroup var secrets: SecretsRootOption
    @OptionGroup var hosts: HostOptions
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let loader = InputLoader(schemas: Composition.providers.schemas)
        let (environments, diagnostics) = loader.loadEnvironments(directory: environmentsDirectory)
        terminal.diagnostics(diagnostics)
        guard !diagnostics.hasErrors else { throw ExitCode(1) }
        guard let env = environments.first(where: { $0.name.rawValue == environment }) else {
            var message = "no environment named '\(environment)'"
            if let s = Suggestion.closest(to: environment, among: environments.map(\.name.rawValue)) { message += " (did you mean '\(s)'?)" }
            terminal.err("error: \(message)")
            throw ExitCode(1)
        }
        guard let provider = Composition.providers[env.provider] else { throw ExitCode(1) }
        if let problem = TextSafety.nameProblem(project) {
            terminal.err("error: --project \(problem); name a project")
            throw ExitCode(1)
        }
        // `payments` or `Payments-Prod`: either name finds the project.
        let named = ProjectName(project)
        let manifestProject = env.projects.first { $0.value == named }?.key ?? named
        let serverProject = env.serverProject(for: manifestProject)

        let refusals = try hosts.refusals(for: [env], environment: ProcessInfo.processInfo.environment)
        if !refusals.isEmpty {
            for refusal in refusals { terminal.err("error: \(refusal)") }
            throw ExitCode(1)
        }
        let resolver = SecretResolver(environment: ProcessInfo.processInfo.environment,
                                      secretsRoot: try secrets.root(environmentsDirectory: environmentsDirectory))
        let (credentials, problems) = resolver.auth(for: env)
        terminal.redaction.add(credentials.map { Connection(baseURL: "", credentials: $0, retry: env.retry).secrets } ?? [])
        terminal.diagnostics(problems)
        guard !problems.hasErrors else { throw ExitCode(1) }
        let connector = Composition.connector()
        let http = HTTPClient(configuration: HTTPClientConfiguration(environment: env, logger: CLILogging.logger(verbose: output.verbose, terminal: terminal)))
        func finish(_ code: Int32) async throws -> Never {
            http.shutdown()
            await connector.shutdown()
            throw ExitCode(code)
        }
        let session: any ProviderSession
        do {
            var connection = try await connector.connect(env, credentials: credentials)
            // What the session learns (an access token) is redacted from this output too.
            terminal.redaction.add(connection.secrets)
            connection.runSecrets = terminal.redaction
            session = provider.session(for: env, connection: connection, http: http)
        } catch {
            terminal.err("error: \(env.name): \(error)")
            try await finish(1)
        }
        let live: [Resource]
        let grants: [(Username, [AccessGrant])]
        do {
            live = try await session.list(project: serverProject)
            grants = try await Concurrently.map(live.map(\.id), limit: env.concurrency) { (id: Username) throws(ProviderError) in
                (id, try await session.grants(project: serverProject, id: id))
            }
        } catch {
            terminal.err("error: \(env.name)/\(serverProject): \(error)")
            try await finish(1)
        }
        // Grants as the server named them, but only names that are safe to keep and hold no
        // secret of this run (a server may list a grant named after the token it was sent).
        let redactor = terminal.redaction.redactor
        let grantsByID = Dictionary(grants, uniquingKeysWith: { a, _ in a }).mapValues { list in
            list.filter { TextSafety.nameProblem($0.name) == nil && redactor.redact($0.name) == $0.name }
        }
        let export = Exporter(schema: provider.schema).export(
            environment: env.name, provider: env.provider, project: manifestProject, live: live, grants: grantsByID)
        let (text, variables) = (export.text, export.variables)
        if redactor.redact(text) != text {
            terminal.err("warning: a live value of \(env.name)/\(serverProject) holds a secret of this run; the export shows (redacted) in its place: check it before applying, or apply would write that")
        }
        for skipped in export.skipped {
            terminal.err("warning: \(env.name)/\(serverProject): left out the live credential \(TextSafety.escaped(skipped.name)): its name \(skipped.problem)")
        }
        let exported = Set(variables.map(\.0))

        if let out {
            let path = (out as NSString).appendingPathComponent("\(manifestProject.rawValue).yaml")
            do {
                try SecureFiles.writeAtomically(terminal.redacted(Data(text.utf8)), to: path)
            } catch {
                terminal.err("error: cannot write \(path): \(error)")
                try await finish(1)
            }
            terminal.err("Wrote \(path): \(exported.count) credential\(exported.count == 1 ? "" : "s") of \(serverProject) in \(env.name).")
        } else {
            terminal.out(text, terminator: "")
        }
        if !variables.isEmpty {
            terminal.err("Set these variables to the credentials' passwords before applying:")
            for (id, variable) in variables { terminal.err("  \(variable)  (\(id))") }
        }

        if adopt {
            let location = try stateOptions.location(environment: ProcessInfo.processInfo.environment)
            let store = try await Composition.openStore(location)
            let run = RunInfo(runID: RunInfo.newID(), command: ApplyCommand.commandLine(), user: ProcessIdentity.user,
                              host: ProcessIdentity.host, pid: getpid())
            do {
                try await store.acquireLock(LockInfo(environment: env.name, lockID: run.runID, user: run.user, host: run.host, pid: run.pid,
                                                     command: run.command, since: Date()), timeout: .seconds(60), shouldStop: { false })
                for resource in live where exported.contains(resource.id) {
                    try await store.record(ManagedCredential(
                        environment: env.name, project: serverProject, username: resource.id, passwordFingerprint: nil,
                        grants: grantsByID[resource.id] ?? [], lastAction: "adopt", lastRunID: run.runID, lastChangedAt: Date()))
                }
                await store.releaseLock(environment: env.name)
                await store.close()
            } catch {
                await store.close()
                terminal.err("error: cannot record the adopted credentials: \(error)")
                try await finish(1)
            }
            terminal.err("Adopted \(exported.count) credential\(exported.count == 1 ? "" : "s") in \(env.name) (state \(store.displayName)); nothing changed on the server.")
        }
        try await finish(0)
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of manifests (default) or of environment files, for editors.",
        discussion: """
            Editors with the YAML language server complete and check files that start with \
            `# yaml-language-server: $schema=PATH`. The repository keeps both schemas in schema/.

            Examples:
              credops schema > schema/manifest.schema.json
              credops schema environment > schema/environment.schema.json
            """)

    @Argument(help: "manifest or environment") var kind: String = "manifest"

    func validate() throws {
        if JSONSchemaDocument.Kind(rawValue: kind) == nil { throw ValidationError("kind must be manifest or environment") }
    }

    func run() throws {
        let document = JSONSchemaDocument.json(JSONSchemaDocument.Kind(rawValue: kind)!, schemas: Composition.providers.schemas)
        FileHandle.standardOutput.write(Data(document.utf8))
    }
}
