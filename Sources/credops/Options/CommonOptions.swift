import ArgumentParser
import CredOps
import Foundation

/// Options every command that reads manifests shares.
struct InputOptions: ParsableArguments {
    @Argument(help: "Manifest files, or directories searched recursively for *.yaml and *.yml.")
    var paths: [String] = []

    @Option(name: .customLong("environments"), help: "The directory of environment files.")
    var environmentsDirectory = "environments"

    @Flag(help: "Accept passwords written in manifests (refused by default: manifests live in git).")
    var allowPlaintextSecrets = false

    @OptionGroup var secrets: SecretsRootOption

    func requirePaths(_ command: String) throws {
        if paths.isEmpty { throw ValidationError("name at least one manifest file or directory, e.g. `credops \(command) examples`") }
    }
}

/// Where secret files may be.
struct SecretsRootOption: ParsableArguments {
    @Option(help: ArgumentHelp("Secret files (fromFile) must be inside this directory (default: the directory holding the environments directory).",
                               valueName: "dir"))
    var secretsRoot: String?

    /// The root for a run whose environment files are in `environmentsDirectory`.
    func root(environmentsDirectory: String) -> String {
        if let secretsRoot { return secretsRoot }
        return (SecureFiles.absolutePath(environmentsDirectory) as NSString).deletingLastPathComponent
    }
}

/// Output options.
struct OutputOptions: ParsableArguments {
    @Flag(help: "No colours (also when NO_COLOR is set or output is not a terminal).")
    var noColor = false

    @Flag(help: "Show more: every operation, and each HTTP request (method, URL, status; header values redacted).")
    var verbose = false

    @Flag(help: "Show less: no plan, no progress; errors and the last line only.")
    var quiet = false

    func validate() throws {
        if verbose && quiet { throw ValidationError("--verbose and --quiet exclude each other") }
    }
}

/// Where state lives.
struct StateOptions: ParsableArguments {
    @Option(help: ArgumentHelp("State location: sqlite:PATH or postgres://... (default: $CREDOPS_STATE, else sqlite:.credops/state.db).",
                               valueName: "url"))
    var state: String?

    func location(environment: [String: String]) throws -> StateLocation {
        let text = state ?? environment["CREDOPS_STATE"] ?? "sqlite:.credops/state.db"
        guard let location = StateLocation.parse(text) else {
            throw ValidationError("--state must be sqlite:PATH or postgres://USER@HOST:PORT/DB, found '\(CommandLineText.redactedURLs(TextSafety.escaped(text)))'")
        }
        return location
    }
}

/// Which environments a run covers.
struct EnvironmentSelection: ParsableArguments {
    @Option(name: [.customShort("e"), .customLong("environment")], help: "Limit the run to this environment (repeatable).")
    var environments: [String] = []
}
