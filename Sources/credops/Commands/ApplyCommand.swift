import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Plan, confirm, make the changes in every environment at once, and report.",
        discussion: """
            Without --auto-approve, shows the plan and asks for `yes` on a terminal (and refuses \
            without one). A protected environment also needs --confirm-environment NAME. Each \
            environment is locked for the run; a second apply waits --lock-timeout and then fails \
            naming the holder. With --plan FILE (from `credops plan --out`), no PATH is given: the \
            plan's own inputs are read again, and the plan is refused as stale if they, the live \
            state or a secret changed since. Ctrl-C once stops starting operations, lets those in \
            flight finish, writes state and the report, and exits 130; twice exits at once. The \
            report follows Apinizer's deploymentResult shape; --report FILE writes it as JSON. \
            Exit code 1 when anything failed.

            Examples:
              credops apply examples --auto-approve
              credops apply --plan plan.json --auto-approve --report report.json --format junit > junit.xml
              credops apply examples -e production --confirm-environment production
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var guardRails: GuardRailOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup var run: ApplyRunOptions

    @Option(help: "Apply this saved plan (from `credops plan --out`) instead of planning from PATHs.")
    var plan: String?

    func validate() throws {
        if plan != nil {
            if !input.paths.isEmpty { throw ValidationError("--plan takes no PATH: the plan names the manifests it was made from") }
            if !selection.environments.isEmpty { throw ValidationError("--plan takes no -e: the plan names its environments") }
        } else {
            try input.requirePaths("apply")
        }
    }

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let saved = try plan.map { try SavedPlanFile.read($0, terminal: terminal) }
        let session: RunSession
        let planOptions: PlanOptions
        if let saved {
            // The signature first: nothing the plan names is read before it checks out.
            let environment = ProcessInfo.processInfo.environment
            let key: FingerprintKey
            do {
                key = try Composition.stateKey(try stateOptions.location(environment: environment), environment: environment,
                                               allowLocalKey: stateOptions.allowsLocalKey(environment: environment))
            } catch let error as ValidationError {
                throw error
            } catch {
                terminal.err("error: \(error)")
                throw ExitCode(1)
            }
            let problems = saved.verify(with: key)
            if !problems.isEmpty {
                terminal.err("error: \(plan ?? ""): refused, the plan cannot be trusted:")
                for problem in problems { terminal.err("  \(problem)") }
                terminal.err("Nothing was changed. Make a new plan: credops plan \(saved.inputs.paths.map(TextSafety.escaped).joined(separator: " ")) --out \(plan ?? "plan.json")")
                throw ExitCode(1)
            }
            // Paths and environments come from the plan (its signature vouches for them); flags
            // that allow anything (guard rails, plaintext secrets, the secrets root) come from
            // this command line only.
            session = try await RunSession.open(
                paths: saved.inputs.paths, environmentsDirectory: saved.inputs.environmentsDirectory, providersDirectory: saved.inputs.providersDirectory,
                policiesDirectory: saved.inputs.policiesDirectory,
                allowPlaintextSecrets: input.allowPlaintextSecrets, secretsRoot: input.secrets, hosts: input.hosts,
                selected: saved.inputs.selectedEnvironments,
                state: stateOptions, terminal: terminal, verbose: output.verbose, checkPolicies: true)
            planOptions = guardRails.planOptions
        } else {
            session = try await RunSession.open(input: input, selection: selection, state: stateOptions, terminal: terminal,
                                                verbose: output.verbose, checkPolicies: true)
            planOptions = guardRails.planOptions
        }
        try await run.execute(session: session, planOptions: planOptions, saved: saved, planPath: plan, output: output, terminal: terminal)
    }

    /// The command line as stored in the run history and lock records: URL passwords and
    /// secret-bearing options' values redacted.
    static func commandLine() -> String {
        CommandLineText.redacted(["credops"] + CommandLine.arguments.dropFirst())
    }
}

/// What every command that applies takes and does after planning: confirmation, locks,
/// the run, and the report (`apply`, `rotate`).
struct ApplyRunOptions: ParsableArguments {
    @Flag(help: "Apply without asking for confirmation.")
    var autoApprove = false

    @Option(help: "Confirm changes to this protected environment (repeatable).")
    var confirmEnvironment: [String] = []

    @Option(help: "Write the report (JSON, deploymentResult shape) to this file.")
    var report: String?

    @Option(help: "Output format of the final report on stdout: text, json, markdown or junit.")
    var format: ReportFormat = .text

    @Option(help: "Seconds to wait for another run's lock on an environment.")
    var lockTimeout = 60

    @Option(help: ArgumentHelp("Stop starting operations after this long (90s, 15m, 1h); those in flight finish.", valueName: "duration"))
    var timeout: String?

    func validate() throws {
        if let timeout, RunDeadline.parse(timeout) == nil {
            throw ValidationError("--timeout takes a duration up to a year, such as 90s, 15m or 1h, found '\(TextSafety.escaped(timeout))'")
        }
        if lockTimeout < 0 { throw ValidationError("--lock-timeout must be 0 or more seconds") }
    }

    /// Plans, confirms, applies and reports; exits with the run's code.
    func execute(session: RunSession, planOptions: PlanOptions, saved: SavedPlan?, planPath: String?, output: OutputOptions,
                 terminal: Terminal) async throws {
        let runInfo = RunInfo(runID: RunInfo.newID(), command: ApplyCommand.commandLine(), user: ProcessIdentity.user,
                              host: ProcessIdentity.host, pid: getpid())
        let stop = StopSignal()
        let progress = ProgressPrinter(terminal: terminal, mode: ProgressPrinter.Mode(verbose: output.verbose, quiet: output.quiet,
                                                                                      terminal: terminal))
        let guards = RunGuards()
        let (showPlan, toStdout, deadline) = (!output.quiet, format == .text, timeout)
        let hooks = ApplyUseCase.Hooks(
            lockWait: { [terminal, lockTimeout] environment, holder in
                let who = holder.map { "held by \($0.holderDescription)" } ?? "held by another run"
                terminal.err("\(environment) is locked, \(who); waiting up to \(lockTimeout) s")
            },
            planned: { [session, terminal] current in
                guard showPlan else { return }
                let renderer = PlanTextRenderer(style: terminal.errorStyle, schemas: Composition.providers.schemas)
                let planText = session.readSummary + "\n\n" + renderer.render(current)
                // The plan goes to stderr when stdout carries a machine-readable report.
                if toStdout { terminal.out(planText) } else { terminal.err(planText) }
            },
            confirm: { [self, terminal] toChange in self.confirm(changing: toChange, terminal: terminal) },
            willApply: { guards.arm(stop: stop, terminal: terminal, timeout: deadline) },
            events: { progress.handle($0) },
            describe: ReportWording.message)
        let request = ApplyUseCase.Request(environments: session.environments, books: session.books, options: planOptions, run: runInfo,
                                           lockTimeout: .seconds(lockTimeout), stop: stop, runSecrets: terminal.redaction, saved: saved)
        let outcome = await ApplyUseCase(workflow: session.workflow, schemas: Composition.providers.schemas).run(request, hooks: hooks)
        guards.disarm()

        func finish(_ code: Int32) async throws -> Never {
            await session.close()
            throw ExitCode(code)
        }
        switch outcome {
        case .stale(_, let reasons):
            terminal.err("stale plan: \(planPath ?? "")")
            for reason in reasons { terminal.err("  \(reason)") }
            terminal.err("Nothing was changed. Make a new plan: credops plan \(saved?.inputs.paths.joined(separator: " ") ?? "") --out \(planPath ?? "plan.json")")
            try await finish(1)
        case .refused(let current):
            let refused = current.environments.filter { !$0.refusals.isEmpty }
            terminal.err(terminal.errorStyle.red("Apply refused:") + " " + refused.flatMap(Wording.refusals).joined(separator: "\n  "))
            terminal.err("Nothing was changed.")
            try await finish(1)
        case .declined:
            terminal.err("Nothing was changed.")
            try await finish(1)
        case .unchanged(_, let report):
            try emit(report, quiet: output.quiet, terminal: terminal)
            try await finish(report.success ? 0 : 1)
        case .applied(_, let report):
            progress.finish()
            try emit(report, quiet: output.quiet, terminal: terminal)
            if let reason = stop.reason {
                terminal.err("Stopped: \(reason). Operations not started are marked skipped; run apply again to finish.")
                try await finish(guards.wasInterrupted ? 130 : 1)
            }
            try await finish(report.success ? 0 : 1)
        }
    }

    /// Writes the report file and prints the report in the chosen format.
    private func emit(_ report: ApplyReport, quiet: Bool, terminal: Terminal) throws {
        if let path = self.report {
            do {
                try SecureFiles.writeAtomically(terminal.redacted(ReportJSONRenderer.render(report)), to: path)
            } catch {
                terminal.err("error: cannot write the report: \(error)")
                throw ExitCode(1)
            }
        }
        switch format {
        case .text:
            let text = ReportTextRenderer(style: terminal.style).render(report, reportFile: self.report)
            terminal.out(quiet ? String(text.split(separator: "\n").last ?? "") : text)
        case .json: terminal.out(String(decoding: ReportJSONRenderer.render(report), as: UTF8.self))
        case .markdown: terminal.out(MarkdownRenderer(schemas: Composition.providers.schemas).render(report))
        case .junit: terminal.out(JUnitRenderer.render(report))
        }
    }

    /// Asks for `yes` (and a protected environment's name) unless the flags already confirm.
    private func confirm(changing: [EnvironmentPlan], terminal: Terminal) -> Bool {
        let protectedEnvs = changing.filter(\.isProtected).map(\.environment.rawValue)
        let unconfirmed = protectedEnvs.filter { !confirmEnvironment.contains($0) }
        if autoApprove && unconfirmed.isEmpty { return true }
        guard terminal.stdinIsTTY else {
            if !autoApprove {
                terminal.err("apply needs confirmation: run it in a terminal, or pass --auto-approve.")
            } else {
                terminal.err("\(unconfirmed.joined(separator: ", ")) \(unconfirmed.count == 1 ? "is" : "are") protected: pass --confirm-environment \(unconfirmed.first!) to apply changes there.")
            }
            return false
        }
        if !autoApprove {
            let names = changing.map(\.environment.rawValue).joined(separator: ", ")
            guard terminal.ask("\nApply these changes to \(names)? Only 'yes' is accepted: ")?.trimmingCharacters(in: .whitespaces) == "yes" else {
                terminal.err("Apply cancelled.")
                return false
            }
        }
        for env in unconfirmed {
            guard terminal.ask("\(env) is protected. Type its name to confirm: ")?.trimmingCharacters(in: .whitespaces) == env else {
                terminal.err("Apply cancelled: \(env) was not confirmed.")
                return false
            }
        }
        return true
    }

}

/// `90s`, `15m`, `1h`, `1h30m` or plain seconds.
enum RunDeadline {
    /// At most a year: anything longer is a typo, and must not overflow.
    static let maximumSeconds = 366 * 86_400

    static func parse(_ text: String) -> Duration? {
        if let seconds = Int(text), seconds > 0 { return seconds <= maximumSeconds ? .seconds(seconds) : nil }
        var total = 0, number = 0, sawDigit = false
        for ch in text {
            if let d = ch.wholeNumberValue, ch.isASCII {
                number = number * 10 + d
                guard number <= maximumSeconds else { return nil }
                sawDigit = true
            } else {
                guard sawDigit else { return nil }
                switch ch {
                case "h": total += number * 3600
                case "m": total += number * 60
                case "s": total += number
                default: return nil
                }
                guard total <= maximumSeconds else { return nil }
                number = 0
                sawDigit = false
            }
        }
        return sawDigit || total == 0 ? nil : .seconds(total)
    }
}

/// Ctrl-C (or SIGTERM) once: stop starting operations, let in-flight ones finish. Twice: exit 130 at once.
/// What apply arms right before its first write: Ctrl-C and SIGTERM handling, and the
/// --timeout deadline. Armed from the engine's hook, disarmed by the command.
final class RunGuards: @unchecked Sendable {
    private let lock = NSLock()
    private var interrupts: InterruptHandler?
    private var deadline: Task<Void, Never>?

    func arm(stop: StopSignal, terminal: Terminal, timeout: String?) {
        let limit = timeout.flatMap(RunDeadline.parse)
        lock.withLock {
            interrupts = InterruptHandler(stop: stop, terminal: terminal)
            deadline = limit.map { limit in
                Task {
                    try? await Task.sleep(for: limit)
                    if !Task.isCancelled { stop.request("the run deadline (--timeout \(timeout ?? "")) passed") }
                }
            }
        }
    }

    func disarm() {
        lock.withLock {
            deadline?.cancel()
            interrupts?.disarm()
        }
    }

    var wasInterrupted: Bool { lock.withLock { interrupts?.wasInterrupted ?? false } }
}

final class InterruptHandler: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var sources: [any DispatchSourceSignal] = []

    init(stop: StopSignal, terminal: Terminal) {
        let queue = DispatchQueue(label: "credops-interrupts")
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in
                guard let self else { return }
                let n = self.lock.withLock { () -> Int in
                    self.count += 1
                    return self.count
                }
                if n == 1 {
                    stop.request(sig == SIGINT ? "interrupted (Ctrl-C)" : "terminated (SIGTERM)")
                    terminal.err("\nInterrupted: no new operations start; those in flight finish and are recorded. Press Ctrl-C again to exit at once.")
                } else {
                    terminal.err("Exiting at once; the next run settles what was in flight.")
                    _exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    var wasInterrupted: Bool { lock.withLock { count > 0 } }

    /// Back to the default actions (the report is being written).
    func disarm() {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// Who and where, for the state history and lock messages.
enum ProcessIdentity {
    static var user: String {
        if let name = ProcessInfo.processInfo.environment["USER"], !name.isEmpty { return name }
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }

    static var host: String { ProcessInfo.processInfo.hostName }
}

/// Apply's progress on stderr: bars redrawn in place on a terminal, a line per environment every
/// few seconds in CI logs, every operation with --verbose, nothing with --quiet.
final class ProgressPrinter: @unchecked Sendable {
    enum Mode {
        case bars, periodic, everyOperation, quiet

        init(verbose: Bool, quiet: Bool, terminal: Terminal) {
            if quiet { self = .quiet } else if verbose { self = .everyOperation } else { self = terminal.stderrIsTTY ? .bars : .periodic }
        }
    }

    struct Progress {
        var done = 0, total = 0, created = 0, replaced = 0, updated = 0, passwords = 0, granted = 0, revoked = 0, deleted = 0, failed = 0, skipped = 0
        var finished = false
    }

    private let terminal: Terminal
    private let mode: Mode
    private let lock = NSLock()
    private var environments: [String: Progress] = [:]
    private var drawnLines = 0
    private var lastDraw = ContinuousClock.now - .seconds(60)

    init(terminal: Terminal, mode: Mode) {
        self.terminal = terminal
        self.mode = mode
    }

    func handle(_ event: ApplyEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .environmentStarted(let env, let operations):
            environments[env.rawValue, default: Progress()].total = operations
            if mode == .everyOperation || mode == .periodic {
                terminal.err("\(terminal.errorStyle.bold(env.rawValue)): applying \(operations) change\(operations == 1 ? "" : "s")")
            }
        case .operationFinished(let env, let result, let done, _):
            var p = environments[env.rawValue, default: Progress()]
            p.done = done
            switch (result.status, result.action) {
            case (.failed, _): p.failed += 1
            case (.skipped, _): p.skipped += 1
            case (.applied, .create): p.created += 1
            case (.applied, .replace): p.replaced += 1
            case (.applied, .update): p.updated += 1
            case (.applied, .secret): p.passwords += 1
            case (.applied, .grant): p.granted += 1
            case (.applied, .revoke): p.revoked += 1
            case (.applied, .delete): p.deleted += 1
            case (.applied, .adopt): break
            }
            environments[env.rawValue] = p
            switch mode {
            case .everyOperation: terminal.err(operationLine(env.rawValue, result, p))
            case .periodic where result.status == .failed: terminal.err(operationLine(env.rawValue, result, p))
            default: break
            }
        case .environmentFinished(let report):
            environments[report.environmentName, default: Progress()].finished = true
            if mode == .periodic {
                let p = environments[report.environmentName]!
                terminal.err("\(report.environmentName)  \(p.done)/\(p.total)  \(summary(p))  done")
            }
        }
        redraw(force: false)
    }

    /// The last drawing, after the apply.
    func finish() {
        lock.withLock { redraw(force: true) }
    }

    private func redraw(force: Bool) {
        let now = ContinuousClock.now
        switch mode {
        case .bars:
            guard force || now - lastDraw >= .milliseconds(100) else { return }
            lastDraw = now
            var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
            let names = environments.keys.sorted()
            let width = names.map(\.count).max() ?? 0
            for name in names {
                let p = environments[name]!
                let filled = p.total == 0 ? 16 : p.done * 16 / p.total
                let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: 16 - filled)
                let status = p.finished ? (p.failed > 0 ? terminal.errorStyle.red("failed") : terminal.errorStyle.green("done")) : summary(p)
                text += "\u{1B}[2K\(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(bar)  \(p.done)/\(p.total)  \(status)\n"
            }
            drawnLines = names.count
            FileHandle.standardError.write(Data(TextSafety.forTerminal(text).utf8))
        case .periodic:
            guard now - lastDraw >= .seconds(5) else { return }
            lastDraw = now
            for (name, p) in environments.sorted(by: { $0.key < $1.key }) where !p.finished {
                terminal.err("\(name)  \(p.done)/\(p.total)  \(summary(p))")
            }
        case .everyOperation, .quiet:
            break
        }
    }

    private func summary(_ p: Progress) -> String {
        let parts: [(Int, String)] = [(p.created, "created"), (p.replaced, "replaced"), (p.updated, "updated"), (p.passwords, "passwords"), (p.granted, "granted"),
                                      (p.revoked, "revoked"), (p.deleted, "deleted"), (p.failed, "failed"), (p.skipped, "skipped")]
        let text = parts.filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: " · ")
        return text.isEmpty ? "starting" : text
    }

    private func operationLine(_ env: String, _ result: OperationResult, _ p: Progress) -> String {
        let s = terminal.errorStyle
        let mark: String
        switch result.status {
        case .applied: mark = s.green("✓")
        case .failed: mark = s.red("✗")
        case .skipped: mark = s.dim("○")
        }
        var line = "  \(mark) \(env) [\(p.done)/\(p.total)] \(result.project)/\(result.key) \(result.action.rawValue)"
        if let grants = result.grants { line += " " + grants.map(\.description).joined(separator: ", ") }
        if let error = ReportWording.error(result) { line += ": " + error }
        if result.status == .applied, let remark = ReportWording.remark(result) { line += " (\(remark))" }
        return line
    }
}
