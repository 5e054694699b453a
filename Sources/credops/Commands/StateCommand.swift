import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Inspect what credops remembers, and release a stuck lock.",
        discussion: """
            The state holds which credentials credops manages, fingerprints of the passwords it \
            applied (never the passwords), locks and the apply history. No command here contacts \
            a server.

            Examples:
              credops state list -e staging
              credops state show -e staging --project payments checkout-service
              credops state unlock -e production --id 7f3c9a12
            """,
        subcommands: [List.self, Show.self, Unlock.self, Migrate.self])

    static func open(_ options: StateOptions, terminal: Terminal) async throws -> any StateStore {
        do {
            return try await Composition.openStore(try options.location(environment: ProcessInfo.processInfo.environment))
        } catch let error as ValidationError {
            throw error
        } catch {
            terminal.err("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// Where the fingerprint key of `location` comes from, for people (never the key).
    static func keyDescription(_ location: StateLocation, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if !(environment["CREDOPS_STATE_KEY"] ?? "").isEmpty { return "CREDOPS_STATE_KEY (from the environment)" }
        switch location {
        case .postgres:
            return "none: CREDOPS_STATE_KEY is not set, and a shared state needs it"
        case .sqlite(let path):
            if let file = StateKey.localKeyFile(statePath: path, environment: environment), FileManager.default.fileExists(atPath: file) {
                return "\(file) (outside the state directory, mode 0600)"
            }
            return "none yet: the first plan or apply makes one in \(StateKey.keyDirectory(environment: environment) ?? "$HOME/.config/credops/keys")"
        }
    }

    static func time(_ date: Date) -> String {
        let text = Timestamp.format(Int64(date.timeIntervalSince1970 * 1000))
        return "\(text.prefix(10)) \(text.dropFirst(11).prefix(8))"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Managed credentials, locks and recent applies.")

        @OptionGroup var stateOptions: StateOptions
        @Option(name: [.customShort("e"), .customLong("environment")], help: "Only this environment.")
        var environment: String?
        @Option(help: "How many recent applies to show.") var history = 10
        @Flag(help: "No colours.") var noColor = false

        func run() async throws {
            let terminal = Terminal(noColor: noColor)
            let store = try await StateCommand.open(stateOptions, terminal: terminal)
            let location = try stateOptions.location(environment: ProcessInfo.processInfo.environment)
            var lines = ["State: \(store.displayName)", "Fingerprint key: \(StateCommand.keyDescription(location))"]
            let locks = try await store.locks().filter { environment == nil || $0.environment.rawValue == environment }
            lines.append("")
            lines.append("Locks:")
            if locks.isEmpty { lines.append("  none") }
            for lock in locks {
                var line = "  \(lock.environment.rawValue): held by \(lock.holderDescription)"
                if await store.isLockFree(lock.environment) {
                    line += " (stale: that process is gone; the next apply takes over)"
                }
                lines.append(line)
            }
            let environments: [EnvironmentName]
            if let environment {
                environments = [EnvironmentName(environment)]
            } else {
                environments = try await store.environments()
            }
            lines.append("")
            lines.append("Managed credentials:")
            var rows: [[String]] = [["ENVIRONMENT", "PROJECT", "USERNAME", "PASSWORD", "GRANTS", "LAST CHANGE"]]
            var intents: [Intent] = []
            for env in environments {
                for c in try await store.managedCredentials(environment: env) {
                    var last = "\(StateCommand.time(c.lastChangedAt)) \(c.lastAction) (run \(c.lastRunID))"
                    if c.pendingRedeploy != nil { last += " · redeploy pending" }
                    rows.append([env.rawValue, c.namespace.rawValue, c.key.rawValue,
                                 c.secretFingerprint.map(\.description) ?? "unknown", "\(c.grants.count)", last])
                }
                intents += try await store.pendingIntents(environment: env)
            }
            lines += rows.count == 1 ? ["  none"] : Table.render(rows).map { "  " + $0 }
            if !intents.isEmpty {
                lines.append("")
                lines.append("Unsettled writes (an apply stopped before recording them; the next run checks the server):")
                for i in intents {
                    lines.append("  \(i.environment)/\(i.namespace)/\(i.key) \(i.action.rawValue) (run \(i.runID), \(StateCommand.time(i.createdAt)))")
                }
            }
            let runs = try await store.history(environment: environment.map(EnvironmentName.init), limit: history)
            lines.append("")
            lines.append("Recent applies:")
            var runRows: [[String]] = [["RUN", "ENVIRONMENT", "STARTED (UTC)", "RESULT", "CHANGES", "BY"]]
            for r in runs {
                let result = r.success.map { $0 ? "ok" : "failed" } ?? (r.finishedAt == nil ? "unfinished" : "?")
                var changes = r.counts.total == 0 ? "none" : "\(r.counts.total) applied"
                if r.counts.failed > 0 { changes += ", \(r.counts.failed) failed" }
                runRows.append([r.runID, r.environment.rawValue, StateCommand.time(r.startedAt), result, changes, "\(r.user)@\(r.host)"])
            }
            lines += runRows.count == 1 ? ["  none"] : Table.render(runRows).map { "  " + $0 }
            await store.close()
            terminal.out(lines.joined(separator: "\n"))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "What credops remembers about one credential.")

        @OptionGroup var stateOptions: StateOptions
        @Option(name: [.customShort("e"), .customLong("environment")], help: "The environment.")
        var environment: String
        @Option(help: "The project as the server names it (needed when the username is in several).")
        var project: String?
        @Argument(help: "The username.") var username: String
        @Flag(help: "No colours.") var noColor = false

        func run() async throws {
            let terminal = Terminal(noColor: noColor)
            let store = try await StateCommand.open(stateOptions, terminal: terminal)
            let all = try await store.managedCredentials(environment: EnvironmentName(environment))
            let found = all.filter { $0.key.rawValue == username && (project == nil || $0.namespace.rawValue == project) }
            await store.close()
            guard let c = found.first else {
                terminal.err("\(environment)/\(project ?? "*")/\(username): not managed by credops (state \(store.displayName)); `credops state list -e \(environment)` lists what is")
                throw ExitCode(1)
            }
            if found.count > 1 {
                terminal.err("\(username) is managed in several projects of \(environment) (\(found.map(\.namespace.rawValue).joined(separator: ", "))); pass --project")
                throw ExitCode(1)
            }
            var lines = [
                "\(environment) / \(c.namespace) / \(c.key)",
                "  managed:       yes (by credops)",
                "  server id:     \(c.serverID ?? "the key (\(c.key))")",
                "  password:      \(c.secretFingerprint.map { "\($0) (HMAC-SHA256 of the last password applied)" } ?? "unknown: credops has not set it yet")",
                "  grants:        \(c.grants.isEmpty ? "none" : c.grants.map(\.description).joined(separator: ", "))",
                "  last change:   \(c.lastAction) at \(StateCommand.time(c.lastChangedAt)) UTC by run \(c.lastRunID)",
            ]
            if let pending = c.pendingRedeploy { lines.append("  redeploy:      pending (\(pending))") }
            terminal.out(lines.joined(separator: "\n"))
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "unlock",
            abstract: "Release an environment's lock held by a run that is stuck or gone.",
            discussion: "Needs the holder's exact lock id (shown by `credops state list` and in the 'locked by' message). A live holder whose lock is released can no longer write state.")

        @OptionGroup var stateOptions: StateOptions
        @Option(name: [.customShort("e"), .customLong("environment")], help: "The environment.")
        var environment: String
        @Option(help: "The lock id of the holder.") var id: String

        func run() async throws {
            let terminal = Terminal(noColor: true)
            let store = try await StateCommand.open(stateOptions, terminal: terminal)
            do {
                try await store.forceUnlock(environment: EnvironmentName(environment), lockID: id)
                await store.close()
                terminal.out("Released the lock \(id) on \(environment).")
            } catch {
                await store.close()
                terminal.err("error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

extension StateCommand {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "migrate",
            abstract: "Copy a state into another one (e.g. a local SQLite state into the team's PostgreSQL).",
            discussion: """
                Copies what credops manages, unsettled writes and the apply history; locks are not \
                copied. Refuses when the target already holds any of the environments (--merge \
                copies into them: rows with the same key are replaced, others kept). Password fingerprints are kept as they are: the shared state must \
                use the key they were made with (`credops state list` shows where it is; \
                CREDOPS_STATE_KEY=$(od -An -tx1 -v KEYFILE | tr -d ' \\n')), \
                or every password is applied once more.

                Example:
                  credops state migrate --from sqlite:.credops/state.db --to postgres://credops@db.internal:5432/credops
                """)

        @Option(help: "The state to copy from.") var from: String
        @Option(help: "The state to copy into.") var to: String
        @Flag(help: "Copy into environments the target already holds (same rows replaced, others kept).") var merge = false

        func run() async throws {
            let terminal = Terminal(noColor: true)
            guard let source = StateLocation.parse(from), let target = StateLocation.parse(to) else {
                throw ValidationError("--from and --to take sqlite:PATH or postgres://USER@HOST:PORT/DB")
            }
            let environment = ProcessInfo.processInfo.environment
            if let warning = Self.keyWarning(source: source, target: target, environment: environment) { terminal.err("warning: \(warning)") }
            let input: any StateStore, output: any StateStore
            do {
                input = try await Composition.openStore(source, environment: environment)
                output = try await Composition.openStore(target, environment: environment)
            } catch {
                terminal.err("error: \(error)")
                throw ExitCode(1)
            }
            let outcome: Result<(environments: String, rows: String), any Error>
            do {
                outcome = .success(try await Self.copy(from: input, to: output, merge: merge, target: target))
            } catch {
                outcome = .failure(error)
            }
            await input.close()
            await output.close()
            switch outcome {
            case .success(let copied):
                terminal.out("Copied \(copied.environments) from \(source) to \(target): \(copied.rows).")
            case .failure(let error):
                terminal.err("error: \(error)")
                throw ExitCode(1)
            }
        }

        /// Copies every environment of `input` into `output`; returns what was copied, in words.
        static func copy(from input: any StateStore, to output: any StateStore, merge: Bool,
                         target: StateLocation) async throws -> (environments: String, rows: String) {
            let environments = try await input.environments()
            let existing = Set(try await output.environments())
            let clash = environments.filter(existing.contains)
            if !clash.isEmpty && !merge {
                throw CLIError("\(target) already holds \(clash.map(\.rawValue).joined(separator: ", ")); pass --merge to copy into them")
            }
            var credentials = 0, intents = 0, runs = 0
            for env in environments {
                for c in try await input.managedCredentials(environment: env) {
                    try await output.record(c)
                    credentials += 1
                }
                let pending = try await input.pendingIntents(environment: env)
                try await output.recordIntents(pending)
                intents += pending.count
                for run in try await input.history(environment: env, limit: Int.max >> 1) {
                    try await output.finishRun(run)
                    runs += 1
                }
            }
            return ("\(environments.count) environment\(environments.count == 1 ? "" : "s")",
                    "\(credentials) managed credentials, \(intents) unsettled writes, \(runs) history entries")
        }

        /// Fingerprints copied from a SQLite state were made with its key file; a warning when
        /// the key the target will be used with is not that key (or is not set).
        static func keyWarning(source: StateLocation, target: StateLocation, environment: [String: String]) -> String? {
            guard case .sqlite(let path) = source else { return nil }
            let legacy = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("state.key")
            let keyFile = StateKey.localKeyFile(statePath: path, environment: environment).flatMap {
                FileManager.default.fileExists(atPath: $0) ? $0 : nil
            } ?? legacy
            guard let bytes = FileManager.default.contents(atPath: keyFile) else { return nil }
            let export = "export CREDOPS_STATE_KEY=$(od -An -tx1 -v \(keyFile) | tr -d ' \\n')"
            let text = environment["CREDOPS_STATE_KEY"] ?? ""
            if text.isEmpty {
                guard case .postgres = target else { return nil }
                return "the fingerprints were made with \(keyFile); runs on \(target) need that key in CREDOPS_STATE_KEY, or every password is applied once more: \(export)"
            }
            guard let key = try? StateKey.load(environment: ["CREDOPS_STATE_KEY": text], keyFile: "", createIfMissing: false) else {
                return "CREDOPS_STATE_KEY is not a valid key (64 hex digits, or base64 of at least 32 bytes)"
            }
            if key.withBytes({ Array($0) }) == Array(bytes) { return nil }
            return "CREDOPS_STATE_KEY is not the key of \(keyFile): every password will be applied once more. To keep the fingerprints: \(export)"
        }
    }
}

/// Left-aligned columns.
enum Table {
    static func render(_ rows: [[String]]) -> [String] {
        guard let columns = rows.map(\.count).max() else { return [] }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
    }
}
