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

    @Option(name: .customLong("providers"),
            help: "The directory of provider profiles (kind: ProviderProfile; default: providers beside the environments directory).")
    var providersDirectory: String?

    @Option(name: .customLong("policies"),
            help: "The directory of policies (kind: Policies; default: policies beside the environments directory).")
    var policiesDirectory: String?

    @OptionGroup var secrets: SecretsRootOption
    @OptionGroup var hosts: HostOptions

    func requirePaths(_ command: String) throws {
        if paths.isEmpty { throw ValidationError("name at least one manifest file or directory, e.g. `credops \(command) examples`") }
    }
}

/// The hosts credentials may be sent to (see `HostPolicy`).
struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Send credentials only to these hosts (host or host:port, comma-separated, repeatable; also $CREDOPS_ALLOWED_HOSTS). Required in pull-request builds unless --pinned-hosts is given.",
                               valueName: "hosts"))
    var allowedHosts: [String] = []

    @Option(help: ArgumentHelp("A file of allowed hosts, one host or host:port per line (# comments), kept where a pull request cannot change it.",
                               valueName: "file"))
    var pinnedHosts: String?

    /// The policy the options and `CREDOPS_ALLOWED_HOSTS` give; nil when none restricts hosts.
    func policy(environment: [String: String]) throws -> HostPolicy? {
        var texts = allowedHosts
        if let variable = environment["CREDOPS_ALLOWED_HOSTS"], !variable.isEmpty { texts.append(variable) }
        if let pinnedHosts {
            switch SecureFiles.readRegularFile(pinnedHosts, limit: 1024 * 1024) {
            case .success(let file): texts.append(String(decoding: file.bytes, as: UTF8.self))
            case .failure: throw ValidationError("--pinned-hosts \(pinnedHosts) cannot be read as a regular file")
            }
        }
        guard !texts.isEmpty || pinnedHosts != nil else { return nil }
        var entries: [HostPolicy.Entry] = []
        for text in texts {
            switch HostPolicy.parse(text) {
            case .success(let policy): entries += policy.entries
            case .failure(let error): throw ValidationError("allowed hosts: \(error)")
            }
        }
        return HostPolicy(entries: entries)
    }

    /// Why credentials may not be sent to some of `environments`: each one outside the policy,
    /// or, in a pull-request build without a policy, every environment on a real server.
    func refusals(for environments: [EnvironmentConfig], environment: [String: String]) throws -> [String] {
        if let policy = try policy(environment: environment) {
            return environments.compactMap(policy.violation)
        }
        guard let build = HostPolicy.pullRequestBuild(environment) else { return [] }
        let remote = environments.filter { if case .url = $0.endpoint { return true } else { return false } }
        guard !remote.isEmpty else { return [] }
        return ["this is a pull-request build (\(build)): its environment files are under review, so credops sends credentials to none of \(remote.map(\.name.rawValue).joined(separator: ", ")) without --allowed-hosts or --pinned-hosts (or CREDOPS_ALLOWED_HOSTS), given from where a pull request cannot change them: a CI variable, or a file of the default branch"]
    }
}

/// Where secret files may be.
struct SecretsRootOption: ParsableArguments {
    @Option(help: ArgumentHelp("Secret files (fromFile) must be inside this directory (default: the directory holding the environments directory).",
                               valueName: "dir"))
    var secretsRoot: String?

    /// The root for a run whose environment files are in `environmentsDirectory`.
    /// - Throws: when that root would be `/` (environments at the top of the file system, as in
    ///   a container with a volume at `/environments`): every file would be inside it.
    func root(environmentsDirectory: String) throws -> String {
        if let secretsRoot { return secretsRoot }
        let parent = (SecureFiles.absolutePath(environmentsDirectory) as NSString).deletingLastPathComponent
        guard parent != "/" && !parent.isEmpty else {
            throw ValidationError("the environments directory \(environmentsDirectory) is at the top of the file system, so its parent cannot be where secret files are kept; pass --secrets-root DIR")
        }
        return parent
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

    @Flag(help: "In CI (CI=true), keep a local state's fingerprint key in the runner's config directory instead of requiring CREDOPS_STATE_KEY (also CREDOPS_ALLOW_LOCAL_KEY=1).")
    var allowLocalKey = false

    /// The flag, or `CREDOPS_ALLOW_LOCAL_KEY=1`.
    func allowsLocalKey(environment: [String: String]) -> Bool {
        allowLocalKey || ["1", "true", "yes"].contains(environment["CREDOPS_ALLOW_LOCAL_KEY"]?.lowercased() ?? "")
    }

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
