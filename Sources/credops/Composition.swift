import ApinizerProvider
import ApinizerSandbox
import CredOps
import CredOpsStatePostgres
import CredOpsStateSQLite
import Foundation
import LeadConduitProvider
import LeadVibeProvider
import Synchronization

/// The one place that knows every provider, every state store and the built-in sandbox.
enum Composition {
    /// The providers built into this binary.
    static let builtIn = ProviderRegistry([ApinizerProvider(), LeadConduitProvider(), LeadVibeProvider()])

    /// The built-in providers and those the run's provider profiles describe. A command
    /// reads its profiles once, before anything else uses a provider (`Loading.profiles`), so
    /// this is the process's composition, set up once like the rest of this file.
    private static let registry = Mutex(builtIn)

    /// Every provider this run knows.
    static var providers: ProviderRegistry { registry.withLock { $0 } }

    /// The provider profiles this run read.
    static var profiles: [ProviderProfile] { providers.all.compactMap { ($0 as? ProfileProvider)?.profile } }

    /// Sets the providers `profiles` describe beside the built-in ones (replacing those of an
    /// earlier read: a reconcile cycle reads the profiles again).
    static func register(_ profiles: [ProviderProfile]) {
        registry.withLock { $0 = builtIn.adding(profiles.map(ProfileProvider.init)) }
    }

    /// The built-in providers that have a built-in emulator (`sandbox://`, `credops sandbox
    /// serve --provider`); every profile has one too, the generic emulator.
    static let emulatedBuiltIn = ["apinizer", "leadconduit", "leadvibe"]

    static var emulated: [String] { emulatedBuiltIn + profiles.map(\.name).sorted() }

    /// Opens the state store at `location`, with its fingerprint key.
    /// - Returns: the store, its key, and notes for the user (a key moved out of the state directory).
    static func openState(_ location: StateLocation, environment: [String: String], allowLocalKey: Bool) async throws
        -> (any StateStore, FingerprintKey, [String]) {
        switch location {
        case .sqlite(let path):
            let (key, notes) = try StateKey.loadLocal(statePath: path, environment: environment, allowLocalKeyInCI: allowLocalKey)
            return (try await openStore(location), key, notes)
        case .postgres:
            // Runners share the store, so they must share the key too: no key file here.
            guard !(environment["CREDOPS_STATE_KEY"] ?? "").isEmpty else {
                throw CLIError("a shared PostgreSQL state needs CREDOPS_STATE_KEY, the same on every runner (create one with `openssl rand -hex 32`)")
            }
            let key = try StateKey.load(environment: environment, keyFile: "", createIfMissing: false)
            return (try await openStore(location, environment: environment), key, [])
        }
    }

    /// The fingerprint key alone (to verify a saved plan before anything it names is read).
    static func stateKey(_ location: StateLocation, environment: [String: String], allowLocalKey: Bool) throws -> FingerprintKey {
        switch location {
        case .sqlite(let path):
            return try StateKey.loadLocal(statePath: path, environment: environment, allowLocalKeyInCI: allowLocalKey).key
        case .postgres:
            return try StateKey.load(environment: environment, keyFile: "", createIfMissing: false)
        }
    }

    /// Opens the state store alone (no key), for the `state` commands.
    static func openStore(_ location: StateLocation, environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> any StateStore {
        switch location {
        case .sqlite(let path):
            return try await SQLiteStateStore.open(path: path)
        case .postgres(let url):
            return try await PostgresStateStore.open(try PostgresLocation(url: url, environment: environment))
        }
    }

    static func connector() -> SandboxConnector { SandboxConnector(root: ".credops/sandbox") }
}

/// A provider's emulator running in this process.
struct RunningEmulator: Sendable {
    var baseURL: String
    /// What the emulator accepts when the environment file names no auth.
    var credentials: Connection.Credentials
    var stop: @Sendable () async -> Void
}

/// Connects `sandbox://NAME` environments to an in-process emulator of their provider (data in
/// ROOT/NAME.json, or ROOT/NAME.PROVIDER.json for providers other than Apinizer; seed from the
/// environment file) and every other environment to its URL.
final class SandboxConnector: EnvironmentConnector, @unchecked Sendable {
    private let root: String
    private let lock = NSLock()
    private var started: [String: RunningEmulator] = [:]
    private var starting: [String: Task<RunningEmulator, any Error>] = [:]

    init(root: String) { self.root = root }

    func connect(_ environment: EnvironmentConfig, credentials: Connection.Credentials?) async throws -> Connection {
        guard case .sandbox(let name) = environment.endpoint else {
            return try await DirectConnector().connect(environment, credentials: credentials)
        }
        let id = environment.provider == "apinizer" ? name : "\(name).\(environment.provider)"
        let task: Task<RunningEmulator, any Error> = lock.withLock {
            if let existing = starting[id] { return existing }
            let task = Task { try await self.start(id: id, provider: environment.provider, settings: environment.emulator) }
            starting[id] = task
            return task
        }
        let emulator = try await task.value
        lock.withLock { started[id] = emulator }
        return Connection(baseURL: emulator.baseURL, credentials: credentials ?? emulator.credentials, retry: environment.retry)
    }

    private func start(id: String, provider: String, settings: EmulatorSettings?) async throws -> RunningEmulator {
        let secret = FingerprintKey.random().withBytes { $0.map { String(format: "%02x", $0) }.joined() }
        let dataFile = (root as NSString).appendingPathComponent("\(id).json")
        try SecureFiles.ensureDirectory(root)
        // Every provider profile is served by the generic emulator.
        if let profile = (Composition.providers[provider] as? ProfileProvider)?.profile {
            var configuration = ProfileEmulatorConfiguration(profile: profile, keys: [secret], dataFile: dataFile)
            if let latency = settings?.integer("latencyMilliseconds") { configuration.faults.latencyMilliseconds = latency }
            let namespaces = settings?.strings("namespaces") ?? []
            if !namespaces.isEmpty { configuration.namespaces = namespaces }
            let server = try await ProfileServer.start(configuration)
            return RunningEmulator(baseURL: server.baseURL, credentials: ProfileEmulatorConfiguration.credentials(for: profile, key: secret),
                                   stop: { await server.stop() })
        }
        switch provider {
        case "leadconduit":
            var configuration = LeadConduitConfiguration(apiKeys: [secret], maskPasswords: settings?.bool("maskPasswords") ?? false,
                                                         dataFile: dataFile)
            if let latency = settings?.integer("latencyMilliseconds") { configuration.faults.latencyMilliseconds = latency }
            let server = try await LeadConduitServer.start(configuration)
            return RunningEmulator(baseURL: server.baseURL, credentials: .basic(username: Connection.Credentials.apiKeyUser, password: Secret(secret)),
                                   stop: { await server.stop() })
        case "leadvibe":
            let units = settings?.strings("units") ?? []
            var configuration = LeadVibeConfiguration(tokens: [secret], units: units.isEmpty ? nil : LeadVibeConfiguration.units(units),
                                                      dataFile: dataFile)
            if let latency = settings?.integer("latencyMilliseconds") { configuration.faults.latencyMilliseconds = latency }
            if let ttl = settings?.integer("unitSessionSeconds") { configuration.unitSessionTTL = .seconds(ttl) }
            let server = try await LeadVibeServer.start(configuration)
            return RunningEmulator(baseURL: server.baseURL, credentials: .bearer(Secret(secret)), stop: { await server.stop() })
        case "apinizer":
            var configuration = SandboxConfiguration()
            configuration.tokens = [secret]
            configuration.seed = Self.seed(settings)
            configuration.dataFile = dataFile
            if let latency = settings?.integer("latencyMilliseconds") { configuration.faults.latencyMilliseconds = latency }
            let server = try await SandboxServer.start(configuration)
            return RunningEmulator(baseURL: server.baseURL, credentials: .bearer(Secret(secret)), stop: { await server.stop() })
        default:
            throw CLIError("sandbox:// needs a provider with a built-in emulator (\(Composition.emulated.joined(separator: ", "))); \(provider) has none")
        }
    }

    /// The Apinizer emulator's seed from the settings its provider declares.
    static func seed(_ settings: EmulatorSettings?) -> SandboxSeed {
        guard let settings else { return .default }
        var seed = SandboxSeed.default
        func take(_ name: String, _ path: WritableKeyPath<SandboxSeed, [String]>) {
            let list = settings.strings(name)
            if !list.isEmpty { seed[keyPath: path] = list }
        }
        take("projects", \.projects)
        take("roles", \.roles)
        take("apiProxies", \.apiProxies)
        take("apiProxyGroups", \.apiProxyGroups)
        take("gateways", \.gateways)
        take("tokens", \.tokens)
        let clients = settings.stringMap("clients")
        if !clients.isEmpty { seed.clients = clients }
        if let ttl = settings.integer("tokenTTLSeconds") { seed.tokenTTLSeconds = ttl }
        return seed
    }

    func shutdown() async {
        let emulators = lock.withLock { Array(started.values) }
        for emulator in emulators { await emulator.stop() }
    }
}

/// A user-facing error that ends the command with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
