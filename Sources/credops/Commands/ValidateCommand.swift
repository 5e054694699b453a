import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check manifests and environment files, without any network access.",
        discussion: """
            Reports every problem at once as `file:line:col: error: message`. Secrets are not \
            resolved, so this runs in a pull request without any secret.

            Example:
              credops validate examples
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var output: OutputOptions

    func validate() throws { try input.requirePaths("validate") }

    func run() throws {
        let terminal = Terminal(noColor: output.noColor)
        let inputs = try Loading.load(paths: input.paths, environmentsDirectory: input.environmentsDirectory, providersDirectory: input.providersDirectory,
                                      policiesDirectory: input.policiesDirectory,
                                      allowPlaintextSecrets: input.allowPlaintextSecrets, terminal: terminal, noteSkipped: true)
        // Every environment's declarations against every policy: nothing is sent anywhere.
        try Loading.checkPolicies(inputs, environments: inputs.environments, terminal: terminal)
        let profiles = Composition.profiles
        let envNote = inputs.environments.count == 1 ? "1 environment" : "\(inputs.environments.count) environments"
        let manifests = inputs.manifests.count == 1 ? "1 manifest" : "\(inputs.manifests.count) manifests"
        let profileNote = (profiles.isEmpty ? "" : ", \(profiles.count) provider profile\(profiles.count == 1 ? "" : "s")")
            + (inputs.policies.isEmpty ? "" : ", \(inputs.policies.count) polic\(inputs.policies.count == 1 ? "y" : "ies")")
        terminal.out("\(manifests) (\(inputs.projectCount) project\(inputs.projectCount == 1 ? "" : "s"), \(inputs.credentialCount) credential\(inputs.credentialCount == 1 ? "" : "s"))\(profileNote) and \(envNote) are valid.")
    }
}

/// Loading inputs with diagnostics printed, shared by the commands.
enum Loading {
    /// - Parameter noteSkipped: mention YAML files under the paths that are not manifests (CI pipelines).
    static func load(paths: [String], environmentsDirectory: String, providersDirectory: String?, policiesDirectory: String? = nil,
                     allowPlaintextSecrets: Bool, terminal: Terminal, noteSkipped: Bool) throws -> Inputs {
        let profileFiles = try profiles(directory: providersDirectory, environmentsDirectory: environmentsDirectory, terminal: terminal)
        let loader = InputLoader(schemas: Composition.providers.schemas, options: LoadOptions(
            allowPlaintextSecrets: allowPlaintextSecrets,
            deliveryRoots: (ProcessInfo.processInfo.environment["CREDOPS_DELIVERY_ROOTS"] ?? "").split(separator: ":").map(String.init)))
        let (inputs, diagnostics) = loader.load(paths: paths, environmentsDirectory: environmentsDirectory)
        terminal.diagnostics(diagnostics)
        guard var inputs else {
            terminal.err(DiagnosticsRenderer.summary(diagnostics))
            throw ExitCode(1)
        }
        inputs.files += profileFiles
        let policyDirectory = policiesDirectory ?? ((environmentsDirectory as NSString).deletingLastPathComponent as NSString).appendingPathComponent("policies")
        let (policies, policyFiles, policyProblems) = InputLoader(schemas: Composition.providers.schemas)
            .loadPolicies(directory: policyDirectory, schemas: Composition.providers.schemas)
        terminal.diagnostics(policyProblems)
        if policyProblems.hasErrors {
            terminal.err(DiagnosticsRenderer.summary(policyProblems))
            throw ExitCode(1)
        }
        inputs.policies = policies
        inputs.files += policyFiles
        if noteSkipped && !inputs.skippedFiles.isEmpty {
            let list = inputs.skippedFiles.prefix(5).joined(separator: ", ") + (inputs.skippedFiles.count > 5 ? ", ..." : "")
            terminal.err("note: skipped \(inputs.skippedFiles.count) YAML file\(inputs.skippedFiles.count == 1 ? "" : "s") that \(inputs.skippedFiles.count == 1 ? "is" : "are") not a credops manifest: \(list)")
        }
        return inputs
    }

    /// Checks what `environments` declare against the policies, printing every failure; exits 1
    /// when any is an error (a `warn` policy's failures are shown and let the run go on).
    static func checkPolicies(_ inputs: Inputs, environments: [EnvironmentConfig], terminal: Terminal) throws {
        let failures = PolicyChecker(policies: inputs.policies).check(inputs, environments: environments, schemas: Composition.providers.schemas)
        terminal.diagnostics(failures)
        let errors = failures.filter(\.isError).count
        if errors > 0 {
            terminal.err("\(errors) policy failure\(errors == 1 ? "" : "s"); nothing was sent to any environment. Fix the manifests, or change the policy in review.")
            throw ExitCode(1)
        }
    }

    /// Reads the provider profiles (`providers/` beside the environments directory, or
    /// `directory`) and adds their providers to the run;
    /// exits 1 on any problem, each one located.
    @discardableResult
    static func profiles(directory: String?, environmentsDirectory: String, terminal: Terminal) throws -> [InputFile] {
        let directory = directory ?? ((environmentsDirectory as NSString).deletingLastPathComponent as NSString).appendingPathComponent("providers")
        let (profiles, files, problems) = InputLoader(schemas: Composition.builtIn.schemas)
            .loadProfiles(directory: directory, builtIn: Set(Composition.builtIn.schemas.keys))
        terminal.diagnostics(problems)
        if problems.hasErrors {
            terminal.err(DiagnosticsRenderer.summary(problems))
            throw ExitCode(1)
        }
        Composition.register(profiles)
        return files
    }
}
