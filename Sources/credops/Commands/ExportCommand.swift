import ArgumentParser
import CredOps
import CredOpsRender
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

    @Option(name: .customLong("providers"), help: "The directory of provider profiles (default: providers beside the environments directory).")
    var providersDirectory: String?

    @OptionGroup var secrets: SecretsRootOption
    @OptionGroup var hosts: HostOptions
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        try Loading.profiles(directory: providersDirectory, environmentsDirectory: environmentsDirectory, terminal: terminal)
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
        let useCase = ExportUseCase(provider: provider, connector: connector)
        let result: ExportUseCase.Result
        do throws(ExportUseCase.Failure) {
            // `payments` or `Payments-Prod`: either name finds the project.
            result = try await useCase.read(environment: env, project: ProjectName(project), credentials: credentials,
                                            runSecrets: terminal.redaction, http: http, managed: await managedElsewhere(env, provider: provider))
        } catch {
            switch error {
            case .connect(let message): terminal.err("error: \(env.name): \(message)")
            case .read(let failure): terminal.err("error: \(env.name)/\(env.serverProject(for: ProjectName(project))): \(failure)")
            }
            try await finish(1)
        }
        let (text, variables, serverProject) = (result.export.text, result.export.variables, result.serverProject)
        if result.holdsRunSecret {
            terminal.err("warning: a live value of \(env.name)/\(serverProject) holds a secret of this run; the export shows (redacted) in its place: check it before applying, or apply would write that")
        }
        for skipped in result.export.skipped {
            terminal.err("warning: \(env.name)/\(serverProject): left out the live credential \(TextSafety.escaped(skipped.name)): its name \(skipped.problem)")
        }
        if result.managedElsewhere > 0 {
            terminal.err("note: \(env.name): left out \(result.managedElsewhere) credential\(result.managedElsewhere == 1 ? "" : "s") that other projects manage in this account")
        }
        let exported = result.exported.count

        if let out {
            let path = (out as NSString).appendingPathComponent("\(result.project.rawValue).yaml")
            do {
                try SecureFiles.writeAtomically(terminal.redacted(Data(text.utf8)), to: path)
            } catch {
                terminal.err("error: cannot write \(path): \(error)")
                try await finish(1)
            }
            terminal.err("Wrote \(path): \(exported) credential\(exported == 1 ? "" : "s") of \(serverProject) in \(env.name).")
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
                _ = try await useCase.adopt(result, store: store, run: run, describe: ReportWording.message)
                await store.close()
            } catch {
                await store.close()
                terminal.err("error: cannot record the adopted credentials: \(error)")
                try await finish(1)
            }
            terminal.err("Adopted \(exported) credential\(exported == 1 ? "" : "s") in \(env.name) (state \(store.displayName)); nothing changed on the server.")
        }
        try await finish(0)
    }
}

extension ExportCommand {
    /// The environment's state records, for a provider without namespaces (one account lists
    /// every project's credentials); none otherwise, or when there is no state yet (export
    /// never creates one).
    func managedElsewhere(_ env: EnvironmentConfig, provider: any Provider) async -> [ManagedCredential] {
        guard provider.schema.capabilities.namespace == .none,
              let location = try? stateOptions.location(environment: ProcessInfo.processInfo.environment) else { return [] }
        if case .sqlite(let path) = location, !FileManager.default.fileExists(atPath: path) { return [] }
        guard let store = try? await Composition.openStore(location) else { return [] }
        let records = (try? await store.managedCredentials(environment: env.name)) ?? []
        await store.close()
        return records
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of manifests (default), environment files, provider profiles or policies, for editors.",
        discussion: """
            Editors with the YAML language server complete and check files that start with \
            `# yaml-language-server: $schema=PATH`. The repository keeps both schemas in schema/.

            Examples:
              credops schema > schema/manifest.schema.json
              credops schema --provider leadconduit > schema/manifest.leadconduit.schema.json
              credops schema environment > schema/environment.schema.json
              credops schema profile > schema/profile.schema.json
              credops schema policy > schema/policy.schema.json
            """)

    @Argument(help: "manifest, environment, profile or policy") var kind: String = "manifest"

    @Option(help: "The provider of the manifests (default: apinizer, for manifests without provider:).")
    var provider: String?

    @Option(name: .customLong("providers"), help: "The directory of provider profiles, whose providers the schemas cover too (default: providers).")
    var providersDirectory = "providers"

    func validate() throws {
        if JSONSchemaDocument.Kind(rawValue: kind) == nil { throw ValidationError("kind must be manifest, environment, profile or policy") }
        if provider != nil && kind != "manifest" { throw ValidationError("--provider is for manifest schemas; one \(kind) schema covers every provider") }
    }

    func run() throws {
        try Loading.profiles(directory: providersDirectory, environmentsDirectory: ".", terminal: Terminal(noColor: true))
        if let provider, Composition.providers[provider] == nil {
            FileHandle.standardError.write(Data("error: --provider \(provider): unknown (\(Composition.providers.schemas.keys.sorted().joined(separator: ", ")))\n".utf8))
            throw ExitCode(1)
        }
        let document = JSONSchemaDocument.json(JSONSchemaDocument.Kind(rawValue: kind)!, schemas: Composition.providers.schemas, provider: provider)
        FileHandle.standardOutput.write(Data(document.utf8))
    }
}
