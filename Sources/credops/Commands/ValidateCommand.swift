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
                                      allowPlaintextSecrets: input.allowPlaintextSecrets, terminal: terminal, noteSkipped: true)
        let profiles = Composition.profiles
        let envNote = inputs.environments.count == 1 ? "1 environment" : "\(inputs.environments.count) environments"
        let manifests = inputs.manifests.count == 1 ? "1 manifest" : "\(inputs.manifests.count) manifests"
        let profileNote = profiles.isEmpty ? "" : ", \(profiles.count) provider profile\(profiles.count == 1 ? "" : "s")"
        terminal.out("\(manifests) (\(inputs.projectCount) project\(inputs.projectCount == 1 ? "" : "s"), \(inputs.credentialCount) credential\(inputs.credentialCount == 1 ? "" : "s"))\(profileNote) and \(envNote) are valid.")
    }
}

/// Loading inputs with diagnostics printed, shared by the commands.
enum Loading {
    /// - Parameter noteSkipped: mention YAML files under the paths that are not manifests (CI pipelines).
    static func load(paths: [String], environmentsDirectory: String, providersDirectory: String?, allowPlaintextSecrets: Bool,
                     terminal: Terminal, noteSkipped: Bool) throws -> Inputs {
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
        if noteSkipped && !inputs.skippedFiles.isEmpty {
            let list = inputs.skippedFiles.prefix(5).joined(separator: ", ") + (inputs.skippedFiles.count > 5 ? ", ..." : "")
            terminal.err("note: skipped \(inputs.skippedFiles.count) YAML file\(inputs.skippedFiles.count == 1 ? "" : "s") that \(inputs.skippedFiles.count == 1 ? "is" : "are") not a credops manifest: \(list)")
        }
        return inputs
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
