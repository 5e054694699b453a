import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

struct RotateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Replace credentials now: a new secret is made and delivered, then the old credential is deleted.",
        discussion: """
            For credentials whose secret the server generates (LeadVibe): each one named is \
            replaced as `rotateAfter` would replace it, whatever its age, and also when credops did \
            not make it (an adopted one, whose secret credops never had). The plan shows every \
            change apply would make, these replaces among them, and asks like apply (or \
            --auto-approve). The new secret reaches its sink before the old credential is \
            deleted; with `overlap:` the old one stays that long.

            Examples:
              credops rotate -e lv-production --project partner-feeds "Partner Feed" --manifests examples
              credops rotate -e lv-dev --project partner-feeds --all --manifests examples --auto-approve
            """)

    @Argument(help: "The names of the credentials to rotate.")
    var names: [String] = []

    @Option(help: "The project (as the manifests name it) the credentials belong to.")
    var project: String

    @Flag(help: "Rotate every credential the project declares for the environment.")
    var all = false

    @Option(name: .customLong("manifests"), help: "Manifest files or directories (repeatable; default: manifests).")
    var manifests: [String] = []

    @Option(name: .customLong("environments"), help: "The directory of environment files.")
    var environmentsDirectory = "environments"

    @Option(name: .customLong("providers"), help: "The directory of provider profiles (default: providers beside the environments directory).")
    var providersDirectory: String?

    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var secrets: SecretsRootOption
    @OptionGroup var hosts: HostOptions
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var guardRails: GuardRailOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var run: ApplyRunOptions

    func validate() throws {
        if selection.environments.isEmpty { throw ValidationError("name the environment to rotate in with -e ENV") }
        if names.isEmpty && !all { throw ValidationError("name the credentials to rotate, or pass --all for every credential of the project") }
        if !names.isEmpty && all { throw ValidationError("--all rotates every credential of the project; name none with it") }
    }

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let session = try await RunSession.open(
            paths: manifests.isEmpty ? ["manifests"] : manifests, environmentsDirectory: environmentsDirectory, providersDirectory: providersDirectory,
            allowPlaintextSecrets: false, secretsRoot: secrets, hosts: hosts, selected: selection.environments,
            state: stateOptions, terminal: terminal, verbose: output.verbose, checkPolicies: true)
        let chosen: Set<CredentialKey>
        switch Self.rotation(names: names, all: all, project: ProjectName(project), environments: session.environments, inputs: session.inputs) {
        case .success(let keys):
            chosen = keys
        case .failure(let problem):
            terminal.err("error: \(problem)")
            await session.close()
            throw ExitCode(1)
        }
        var planOptions = guardRails.planOptions
        planOptions.rotate = [ProjectName(project): chosen]
        try await run.execute(session: session, planOptions: planOptions, saved: nil, planPath: nil, output: output, terminal: terminal)
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The credentials to rotate: each name declared by the project for every selected
    /// environment, of a provider whose secrets the server generates.
    static func rotation(names: [String], all: Bool, project: ProjectName, environments: [EnvironmentConfig],
                         inputs: Inputs) -> Result<Set<CredentialKey>, Problem> {
        var chosen = Set<CredentialKey>()
        for env in environments {
            guard let schema = Composition.providers[env.provider]?.schema else { continue }
            let manifests = inputs.manifests.filter { $0.provider == env.provider && $0.project == project && $0.applies(to: env.name) }
            guard !manifests.isEmpty else {
                let known = Set(inputs.manifests.filter { $0.provider == env.provider }.map(\.project.rawValue)).sorted()
                var text = "no manifest declares project '\(TextSafety.escaped(project.rawValue))' for \(env.name)"
                if let s = Suggestion.closest(to: project.rawValue, among: known) { text += " (did you mean '\(s)'?)" }
                return .failure(Problem(description: text + (known.isEmpty ? "" : "; its projects: \(known.joined(separator: ", "))")))
            }
            let applying = manifests.flatMap(\.credentials).filter { $0.applies(to: env.name) }
            // Rotated: secrets made at apply, by the server or by credops (`generate:`).
            let rotatable = applying.filter { credential in
                let values = credential.overrides[env.name].map { credential.values.overlaid(with: $0) } ?? credential.values
                return schema.capabilities.secret == .generated || values.generateLength != nil
            }
            let declared = rotatable.map(\.key)
            if let name = names.first(where: { n in applying.contains { $0.key.rawValue == n } && !declared.contains(CredentialKey(n)) }) {
                return .failure(Problem(description: "'\(TextSafety.escaped(name))' has a \(schema.secretField) declared in the manifests for \(env.name): "
                                        + "change it there and apply, or write \(schema.secretField): { generate: { length: 32 } } with a deliver: to have credops make and rotate it"))
            }
            if all {
                chosen.formUnion(declared)
                continue
            }
            for name in names {
                let key = CredentialKey(name)
                guard declared.contains(key) else {
                    var text = "project \(project) declares no credential '\(TextSafety.escaped(name))' for \(env.name)"
                    if let s = Suggestion.closest(to: name, among: declared.map(\.rawValue)) { text += " (did you mean '\(s)'?)" }
                    return .failure(Problem(description: text))
                }
                chosen.insert(key)
            }
        }
        return .success(chosen)
    }
}
