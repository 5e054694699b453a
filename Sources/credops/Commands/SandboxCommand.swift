import ApinizerSandbox
import ArgumentParser
import CredOps
import Foundation

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "The built-in emulators (Apinizer, LeadConduit, LeadVibe, and any provider profile).",
        subcommands: [Serve.self])

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Run a provider's emulator until Ctrl-C; prints its base URL as the first line.",
            discussion: """
                The Apinizer emulator (the default) implements the credential endpoints of the \
                Apinizer Management API with their validation and error bodies, plus test-only calls \
                under /__sandbox/ (dump, stats, seed, reset, faults) behind the same token. The \
                LeadConduit emulator (--provider leadconduit) implements /credentials with HTTP Basic \
                (the token is the API key; any user name), 24-hex ids, and the test-only calls dump, \
                stats, reset, faults and settings ({"maskPasswords": true}). The LeadVibe emulator \
                (--provider leadvibe) implements /org-units with the activeOu cookie and /secrets with \
                generated client secrets (bearer token), and the test-only calls dump, stats, reset, \
                faults, backdate ({"days": N}) and check ({"client_id", "client_secret"} → {"valid"}). \
                A provider profile's name (--provider leadexec, with its file in providers/ or \
                --providers DIR) starts the generic emulator, which serves that profile's paths, \
                paging, namespaces and field rules, generates ids and secrets where the profile says, \
                and takes the token as whatever the profile's first auth kind needs: a bearer token, \
                a Basic password (any user), an API key, or an OAuth2 client secret (any client id); \
                test-only calls dump, stats, reset, faults, backdate and check ({"secret", "id"} → {"valid"}).

                Example:
                  credops sandbox serve --port 8080 --data sandbox.json
                  CREDOPS_SANDBOX_TOKEN=$(openssl rand -hex 16) credops sandbox serve --port 8080
                  credops sandbox serve --provider leadconduit --mask-passwords
                  credops sandbox serve --provider leadvibe --units unit_main,unit_emea
                  credops sandbox serve --provider leadexec --latency-ms 20

                It accepts no token unless given one (--token, $CREDOPS_SANDBOX_TOKEN, or tokens: in \
                a seed): without any, it makes a random token and prints it on stderr. The \
                /__sandbox/ calls can read every stored password, so keep the sandbox on a loopback \
                address; binding another address warns.
                """)

        @Option(help: "The provider to emulate: apinizer, leadconduit, leadvibe, or a provider profile's name.")
        var provider = "apinizer"

        @Option(name: .customLong("providers"), help: "The directory of provider profiles (default: providers).")
        var providersDirectory = "providers"

        @Flag(help: "LeadConduit: answer reads with \"password\": null, as an account that masks secrets does.")
        var maskPasswords = false

        @Option(help: "LeadVibe: the account's units, comma-separated; the first is the default.")
        var units: String?

        @Option(help: "Address to listen on (a loopback address unless you mean to share it).")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on; 0 picks a free one.")
        var port = 0

        @Option(help: "Accepted bearer token, or LeadConduit API key (default: $CREDOPS_SANDBOX_TOKEN, else a random one printed on stderr).")
        var token: String?

        @Option(help: "Seed data (YAML): projects, roles, apiProxies, apiProxyGroups, gateways, tokens, clients, tokenTTLSeconds.")
        var seed: String?

        @Option(help: "Keep the data in this JSON file between runs (written atomically, mode 0600).")
        var data: String?

        @Option(help: "Latency added to every API answer, in milliseconds.")
        var latencyMs = 0

        func validate() throws {
            if provider != "apinizer" && seed != nil { throw ValidationError("--seed is for the Apinizer emulator") }
            if provider != "leadconduit" && maskPasswords { throw ValidationError("--mask-passwords is for the LeadConduit emulator") }
            if provider != "leadvibe" && units != nil { throw ValidationError("--units is for the LeadVibe emulator") }
        }

        func run() async throws {
            try Loading.profiles(directory: providersDirectory, environmentsDirectory: ".", terminal: Terminal(noColor: true))
            guard Composition.emulated.contains(provider) else {
                FileHandle.standardError.write(Data("error: --provider \(provider): there is no emulator for it (\(Composition.emulated.joined(separator: ", "))); a provider profile's name needs its file in \(providersDirectory) or --providers DIR\n".utf8))
                throw ExitCode(1)
            }
            var configuration = SandboxConfiguration()
            configuration.host = host
            configuration.port = port
            let token = self.token ?? ProcessInfo.processInfo.environment["CREDOPS_SANDBOX_TOKEN"]
            let chosen = token ?? FingerprintKey.random().withBytes { $0.prefix(16).map { String(format: "%02x", $0) }.joined() }
            configuration.tokens = [chosen]
            if !Self.isLoopback(host) {
                FileHandle.standardError.write(Data("warning: listening on \(host), not a loopback address: anyone who can reach it and has the token can read every stored password through /__sandbox/dump\n".utf8))
            }
            switch provider {
            case "leadconduit":
                var configuration = LeadConduitConfiguration(apiKeys: [chosen], maskPasswords: maskPasswords, dataFile: data)
                (configuration.host, configuration.port) = (host, port)
                configuration.faults.latencyMilliseconds = latencyMs
                try await serve("LeadConduit emulator", key: token == nil ? "api key: \(chosen)" : nil) {
                    let server = try await LeadConduitServer.start(configuration)
                    return (server.baseURL, { await server.stop() })
                }
                return
            case "leadvibe":
                let ids = (units ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                var configuration = LeadVibeConfiguration(tokens: [chosen], units: ids.isEmpty ? nil : LeadVibeConfiguration.units(ids), dataFile: data)
                (configuration.host, configuration.port) = (host, port)
                configuration.faults.latencyMilliseconds = latencyMs
                try await serve("LeadVibe emulator", key: token == nil ? "token: \(chosen)" : nil) {
                    let server = try await LeadVibeServer.start(configuration)
                    return (server.baseURL, { await server.stop() })
                }
                return
            default:
                if let profile = (Composition.providers[provider] as? ProfileProvider)?.profile {
                    var configuration = ProfileEmulatorConfiguration(profile: profile, keys: [chosen], dataFile: data)
                    (configuration.host, configuration.port) = (host, port)
                    configuration.faults.latencyMilliseconds = latencyMs
                    try await serve("\(profile.name) emulator (provider profile)", key: token == nil ? "key: \(chosen)" : nil) {
                        let server = try await ProfileServer.start(configuration)
                        return (server.baseURL, { await server.stop() })
                    }
                    return
                }
            }
            if let seed {
                do {
                    configuration.seed = try SandboxSeed.load(yamlFile: seed)
                } catch {
                    FileHandle.standardError.write(Data("error: \(seed): \(error)\n".utf8))
                    throw ExitCode(1)
                }
            }
            configuration.dataFile = data
            configuration.faults.latencyMilliseconds = latencyMs

            let stop = SignalWaiter(signals: [SIGINT, SIGTERM])
            let server: SandboxServer
            do {
                server = try await SandboxServer.start(configuration)
            } catch {
                FileHandle.standardError.write(Data("error: cannot start the sandbox on \(host):\(port): \(error)\n".utf8))
                throw ExitCode(1)
            }
            FileHandle.standardOutput.write(Data("\(server.baseURL)\n".utf8))
            if token == nil {
                FileHandle.standardError.write(Data("token: \(chosen) (made for this run; pass --token or set CREDOPS_SANDBOX_TOKEN to choose one)\n".utf8))
            }
            await stop.wait()
            await server.stop()
        }
    }
}

extension SandboxCommand.Serve {
    /// Starts an emulator, prints its URL (and a token made for this run on stderr), and
    /// serves until SIGINT or SIGTERM.
    func serve(_ what: String, key: String?, start: () async throws -> (String, @Sendable () async -> Void)) async throws {
        let stop = SignalWaiter(signals: [SIGINT, SIGTERM])
        let (url, shutdown): (String, @Sendable () async -> Void)
        do {
            (url, shutdown) = try await start()
        } catch {
            FileHandle.standardError.write(Data("error: cannot start the \(what) on \(host):\(port): \(error)\n".utf8))
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(Data("\(url)\n".utf8))
        if let key {
            FileHandle.standardError.write(Data("\(key) (made for this run; pass --token or set CREDOPS_SANDBOX_TOKEN to choose one)\n".utf8))
        }
        await stop.wait()
        await shutdown()
    }

    /// Loopback names and addresses; a wildcard (`0.0.0.0`, `::`) is not one.
    static func isLoopback(_ host: String) -> Bool {
        HostAddress.isLoopback(host)
    }
}

/// Waits for one of some signals; the default action of those signals is replaced meanwhile.
final class SignalWaiter: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "credops-signals")
    private let lock = NSLock()
    private var received = false
    private var continuation: CheckedContinuation<Void, Never>?

    init(signals: [Int32]) {
        for sig in signals {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in self?.fire() }
            source.resume()
            sources.append(source)
        }
    }

    private func fire() {
        lock.lock()
        received = true
        let c = continuation
        continuation = nil
        lock.unlock()
        c?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if received {
                lock.unlock()
                c.resume()
            } else {
                continuation = c
                lock.unlock()
            }
        }
    }
}
