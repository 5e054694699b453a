import ArgumentParser
import CredOps
import CredOpsRender
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Run as a service: plan every environment on a schedule and apply (or only report drift).",
        discussion: """
            Every --every (and on SIGHUP, and when a file under the manifest paths, environments, \
            providers or policies changes) the leader reads the manifests again and runs one cycle: \
            an ordinary apply (locks, intents, history, report) of every selected environment, or \
            with --drift-only a plan that only reports. Protected environments are applied only \
            when named with --confirm-environment; otherwise they are planned and reported.

            Replicas on one state elect a leader: a PostgreSQL advisory lock on a shared state \
            (a file lock beside a SQLite one). A standby tries every --leader-check and takes over \
            within that interval of the leader's death; a leader whose state connection does not \
            answer within --leader-check stops acting. SIGTERM lets the operations in flight \
            finish, then releases leadership.

            --listen serves /metrics (Prometheus), /healthz and /readyz (loopback by default). \
            Logs are JSON lines on stderr. --webhook-url-env names a variable holding a \
            Slack-compatible webhook URL, posted to when a cycle fails or, with --drift-only, \
            finds drift (never with a secret in it).

            Examples:
              credops reconcile manifests --every 5m --state postgres://credops@db/credops
              credops reconcile manifests --drift-only --every 1h --webhook-url-env SLACK_WEBHOOK_URL
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var stateOptions: StateOptions

    @Option(help: "Time between cycles: 5m, 1h, 30s.")
    var every = "5m"

    @Flag(help: "Plan and report drift; never change a server.")
    var driftOnly = false

    @Option(help: "Where /metrics, /healthz and /readyz listen: HOST:PORT (port 0 picks one; empty: no server).")
    var listen = "127.0.0.1:9464"

    @Option(help: "How often leadership is checked (a standby's takeover time at most): 5s.")
    var leaderCheck = "5s"

    @Option(help: "The leadership this deployment competes for: deployments on one state with different names run side by side (e.g. a --drift-only reporter).")
    var leaderName = "reconcile"

    @Flag(inversion: .prefixedNo, help: "Start a cycle when a watched file changes (checked every 2 s).")
    var watch = true

    @Option(help: "The environment variable holding a Slack-compatible webhook URL for failed cycles and drift.")
    var webhookUrlEnv: String?

    @Option(help: "A protected environment cycles may change (repeatable); others are only planned.")
    var confirmEnvironment: [String] = []

    @Option(help: "Seconds a cycle waits for another run's lock on an environment.")
    var lockTimeout = 30

    @Option(help: "Log format: json or text.")
    var logFormat = "json"

    @Option(help: "Write each cycle's apply report (JSON) to this file.")
    var report: String?

    @Flag(help: "Run one cycle as leader, then stop (exit 0 when it succeeded).")
    var once = false

    func validate() throws {
        try input.requirePaths("reconcile")
        guard let e = DurationText.seconds(every), e >= 1, e <= 7 * 86_400 else { throw ValidationError("--every must be a duration from 1s to 7d, such as 5m") }
        guard let c = DurationText.seconds(leaderCheck), c >= 1, c <= 300 else { throw ValidationError("--leader-check must be a duration from 1s to 5m, such as 5s") }
        guard ServiceLogHandler.Format(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be json or text") }
        guard !leaderName.isEmpty, leaderName.count <= 100, leaderName.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else { throw ValidationError("--leader-name must be letters, digits, -, _ and ., found '\(leaderName)'") }
        if !listen.isEmpty && Self.address(listen) == nil { throw ValidationError("--listen must be HOST:PORT, such as 127.0.0.1:9464, found '\(listen)'") }
        if lockTimeout < 0 { throw ValidationError("--lock-timeout must be 0 or more seconds") }
    }

    static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        let processEnvironment = ProcessInfo.processInfo.environment
        let redaction = Terminal(noColor: true).redaction
        var webhook: String?
        if let name = webhookUrlEnv {
            guard let url = processEnvironment[name], !url.isEmpty else {
                FileHandle.standardError.write(Data("error: --webhook-url-env \(name): the variable is not set\n".utf8))
                throw ExitCode(1)
            }
            // A webhook URL is a credential (it holds the channel's token).
            redaction.add([Secret(url)])
            webhook = url
        }
        let format = ServiceLogHandler.Format(rawValue: logFormat) ?? .json
        LoggingSystem.bootstrap { label in ServiceLogHandler(label: label, format: format, redaction: redaction) }
        let logger = Logger(label: "credops.reconcile")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        // Leadership through the state every replica shares.
        let location = try stateOptions.location(environment: processEnvironment)
        let leaderStore: any StateStore
        do {
            (leaderStore, _, _) = try await Composition.openState(location, environment: processEnvironment,
                                                                 allowLocalKey: stateOptions.allowsLocalKey(environment: processEnvironment))
        } catch {
            logger.error("cannot open the state: \(error)")
            throw ExitCode(1)
        }
        guard let elector = leaderStore as? any LeaderElecting else {
            logger.error("the state \(location) cannot elect a leader")
            throw ExitCode(1)
        }
        let check = Duration.seconds(DurationText.seconds(leaderCheck) ?? 5)
        let cycle = ReconcileCycle(command: self, redaction: redaction, logger: logger, webhook: webhook)
        let reconciler = Reconciler(
            settings: Reconciler.Settings(every: .seconds(DurationText.seconds(every) ?? 300), leaderCheck: check, once: once),
            leadership: elector.leadership(name: leaderName, checkTimeout: check), logger: logger,
            runCycle: { stop in await cycle.run(stop: stop) },
            finished: { outcome, took in await cycle.finished(outcome, took: took) })

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: reconciler, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let (host, port) = Self.address(listen) {
            // A server that cannot listen (the port is taken) stops the whole service.
            services.append(.init(service: HealthServer.application(host: host, port: port, registry: registry, reconciler: reconciler, logger: logger),
                                  successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(120)
        let group = ServiceGroup(configuration: configuration)

        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { Task { await reconciler.wake("SIGHUP") } }
        hangup.resume()
        let watcher = watch ? Task { await FileWatch(roots: cycle.watchedRoots).run { Task { await reconciler.wake("a watched file changed") } } } : nil

        logger.info("reconcile started", metadata: ["every": "\(every)", "driftOnly": "\(driftOnly)", "pid": "\(getpid())"])
        var failed = false
        do {
            try await group.run()
        } catch {
            logger.error("stopped: \(error)")
            failed = true
        }
        watcher?.cancel()
        hangup.cancel()
        await leaderStore.close()
        logger.info("reconcile stopped")
        if failed { throw ExitCode(1) }
        if once, let outcome = await reconciler.lastOutcome, !outcome.success { throw ExitCode(1) }
    }
}

/// One cycle: inputs read again, policies checked, then apply (or plan) of the selected
/// environments, metrics and logs after.
struct ReconcileCycle: Sendable {
    let command: ReconcileCommand
    let redaction: RunSecrets
    let logger: Logger
    let webhook: String?

    /// Where the watch looks for changes: the manifest paths, environments, providers, policies.
    var watchedRoots: [String] {
        let parent = (command.input.environmentsDirectory as NSString).deletingLastPathComponent
        return command.input.paths + [command.input.environmentsDirectory,
                                      command.input.providersDirectory ?? (parent as NSString).appendingPathComponent("providers"),
                                      command.input.policiesDirectory ?? (parent as NSString).appendingPathComponent("policies")]
    }

    func run(stop: StopSignal) async -> CycleOutcome {
        var terminal = Terminal(noColor: true, redaction: redaction)
        let logger = self.logger
        terminal.sink = { line, isError in
            if isError { logger.warning("\(line)") } else { logger.info("\(line)") }
        }
        var outcome = CycleOutcome()
        let session: RunSession
        do {
            session = try await RunSession.open(input: command.input, selection: command.selection, state: command.stateOptions,
                                                terminal: terminal, checkPolicies: true)
        } catch {
            outcome.failure = "the inputs did not load, or a policy failed (see the lines before)"
            return outcome
        }
        let confirmed = Set(command.confirmEnvironment)
        let applied = command.driftOnly ? [] : session.environments.filter { !$0.isProtected || confirmed.contains($0.name.rawValue) }
        let planned = session.environments.filter { env in !applied.contains { $0.name == env.name } }
        let options = PlanOptions()

        if !applied.isEmpty {
            let run = RunInfo(runID: RunInfo.newID(), command: "credops reconcile", user: ProcessIdentity.user, host: ProcessIdentity.host, pid: getpid())
            let hooks = ApplyUseCase.Hooks(
                lockWait: { environment, holder in logger.info("waiting for the lock of \(environment)", metadata: ["holder": "\(holder?.holderDescription ?? "another run")"]) },
                confirm: { _ in true }, describe: ReportWording.message)
            let useCase = ApplyUseCase(workflow: session.workflow, schemas: Composition.providers.schemas)
            var request = ApplyUseCase.Request(environments: applied, books: session.books, options: options, run: run,
                                               lockTimeout: .seconds(command.lockTimeout), stop: stop, runSecrets: terminal.redaction)
            var result = await useCase.run(request, hooks: hooks)
            // A guard rail refuses the whole run; the environments it did not stop are applied
            // on their own, and the refused ones are reported as failed.
            if case .refused(let plan) = result {
                let refused = plan.environments.filter { !$0.refusals.isEmpty }
                for env in refused {
                    outcome.environments.append(CycleOutcome.Environment(name: env.environment.rawValue, failure: Wording.refusals(env).joined(separator: "; "),
                                                                         changes: env.changes.count, operations: [], applied: false))
                }
                request.environments = applied.filter { env in !refused.contains { $0.environment == env.name } }
                request.run.runID = RunInfo.newID()
                result = request.environments.isEmpty ? .refused(Plan(environments: [])) : await useCase.run(request, hooks: hooks)
            }
            let reports = Dictionary((result.report?.environments ?? []).map { ($0.environmentName, $0) }, uniquingKeysWith: { a, _ in a })
            for env in result.plan.environments {
                var entry = CycleOutcome.Environment(name: env.environment.rawValue, failure: env.failure, changes: env.changes.count,
                                                     operations: [], applied: true)
                switch result {
                case .refused:
                    entry.failure = Wording.refusals(env).joined(separator: "; ").nilIfEmpty ?? entry.failure
                        ?? "not applied: a guard rail refused the run"
                    entry.applied = false
                case .stale, .declined: entry.failure = entry.failure ?? "not applied"
                case .unchanged, .applied: break
                }
                if let report = reports[env.environment.rawValue] {
                    entry.operations = report.operations.map { ($0.action.rawValue, $0.status.rawValue) }
                    if !report.success { entry.failure = entry.failure ?? ReportWording.message(report) }
                }
                outcome.environments.append(entry)
                outcome.expiring += env.expiring ?? []
            }
            if let path = command.report, let report = result.report {
                try? SecureFiles.writeAtomically(terminal.redacted(ReportJSONRenderer.render(report)), to: path)
            }
            outcome.stopped = stop.reason
        }
        if !planned.isEmpty {
            let (plan, prepared) = await session.workflow.plan(environments: planned, books: session.books, options: options, stop: stop,
                                                               runID: "reconcile", runSecrets: terminal.redaction)
            for env in prepared.values { env.close() }
            for env in plan.environments {
                outcome.environments.append(CycleOutcome.Environment(name: env.environment.rawValue, failure: env.failure, changes: env.changes.count,
                                                                     operations: [], applied: false))
                outcome.expiring += env.expiring ?? []
            }
        }
        await session.close()
        return outcome
    }

    /// Metrics, a log line per environment, and the webhook when it is called for.
    func finished(_ outcome: CycleOutcome, took: Duration) async {
        ReconcileMetrics.cycle(outcome: outcome.success ? "success" : "failure", duration: took)
        for env in outcome.environments {
            // An environment that could not be read has no drift to tell: its last figure stays.
            if env.failure == nil || env.changes > 0 { ReconcileMetrics.drift(env.name, changes: env.changes) }
            for op in env.operations { ReconcileMetrics.operation(env.name, kind: op.kind, outcome: op.outcome) }
            if env.failure == nil { ReconcileMetrics.succeeded(env.name) }
            let metadata: Logger.Metadata = ["environment": "\(env.name)", "changes": "\(env.changes)", "applied": "\(env.applied)",
                                             "operations": "\(env.operations.count)"]
            if let failure = env.failure {
                logger.error("cycle failed in \(env.name): \(failure)", metadata: metadata)
            } else if env.changes > 0 && !env.applied {
                logger.warning("drift in \(env.name): \(env.changes) change\(env.changes == 1 ? "" : "s") planned, not applied", metadata: metadata)
            } else {
                logger.info("\(env.name): \(env.applied && env.changes > 0 ? "applied \(env.operations.count) operations" : "in sync")", metadata: metadata)
            }
        }
        ReconcileMetrics.keepExpiring(outcome.expiring)
        for item in outcome.expiring {
            logger.warning("\(item.key.rawValue) in \(item.environment) (project \(item.project)): \(ExpiryRenderer.what(item)), \(ExpiryRenderer.when(item))")
        }
        logger.info("cycle finished", metadata: ["success": "\(outcome.success)", "drift": "\(outcome.drift)",
                                                 "seconds": "\(String(format: "%.3f", took.inSeconds))"])
        let drifted = outcome.environments.filter { $0.changes > 0 && !$0.applied }
        guard let webhook, !outcome.success || !drifted.isEmpty else { return }
        var lines = ["credops reconcile on \(ProcessIdentity.host): " + (outcome.success ? "drift found" : "cycle failed")]
        if let failure = outcome.failure { lines.append("• \(failure)") }
        for env in outcome.environments {
            if let failure = env.failure { lines.append("• \(env.name): \(failure)") } else if env.changes > 0 && !env.applied {
                lines.append("• \(env.name): \(env.changes) change\(env.changes == 1 ? "" : "s") differ from the manifests")
            }
        }
        await Webhook.post(url: webhook, text: redaction.redactor.redact(lines.joined(separator: "\n")), logger: logger)
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
