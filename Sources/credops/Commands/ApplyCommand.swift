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
            naming the holder. Ctrl-C once stops starting operations, lets those in flight finish, \
            writes state and the report, and exits 130; twice exits at once. The report follows \
            Apinizer's deploymentResult shape; --report FILE writes it as JSON. Exit code 1 when \
            anything failed.

            Examples:
              credops apply examples --auto-approve
              credops apply examples -e production --confirm-environment production --report report.json
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var guardRails: GuardRailOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Apply without asking for confirmation.")
    var autoApprove = false

    @Option(help: "Confirm changes to this protected environment (repeatable).")
    var confirmEnvironment: [String] = []

    @Option(help: "Write the report (JSON, deploymentResult shape) to this file.")
    var report: String?

    @Option(help: "Output format of the final report on stdout: text or json.")
    var format: OutputFormat = .text

    @Option(help: "Seconds to wait for another run's lock on an environment.")
    var lockTimeout = 60

    @Option(help: ArgumentHelp("Stop starting operations after this long (90s, 15m, 1h); those in flight finish.", valueName: "duration"))
    var timeout: String?

    func validate() throws {
        if let timeout, RunDeadline.parse(timeout) == nil {
            throw ValidationError("--timeout takes a duration such as 90s, 15m or 1h, found '\(timeout)'")
        }
        if lockTimeout < 0 { throw ValidationError("--lock-timeout must be 0 or more seconds") }
    }

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let session = try await RunSession.open(input: input, selection: selection, state: stateOptions, terminal: terminal)
        let runInfo = RunInfo(runID: RunInfo.newID(), command: Self.commandLine(), user: ProcessIdentity.user,
                              host: ProcessIdentity.host, pid: getpid())
        let stop = StopSignal()

        // Lock first, so that the plan is made against a state no other run is changing.
        let unavailable = await session.workflow.lock(session.environments, run: runInfo, timeout: .seconds(lockTimeout), stop: stop)
        let (plan, prepared) = await session.plan(options: guardRails.planOptions, unavailable: unavailable, stop: stop, runID: runInfo.runID)
        let renderer = PlanTextRenderer(style: terminal.errorStyle, schemas: Composition.providers.schemas)
        let planText = session.readSummary + "\n\n" + renderer.render(plan)
        // The plan goes to stderr when stdout carries the JSON report.
        if format == .json { terminal.err(planText) } else { terminal.out(planText) }

        func finish(_ code: Int32) async throws -> Never {
            for env in prepared.values { env.close() }
            await session.workflow.unlock(session.environments)
            await session.close()
            throw ExitCode(code)
        }
        let applier = Applier(store: session.store, run: runInfo, shouldStop: { stop.isRequested },
                              events: { [progress = ProgressPrinter(terminal: terminal)] in progress.handle($0) })

        let refused = plan.environments.filter { !$0.refusals.isEmpty }
        if !refused.isEmpty {
            terminal.err(terminal.errorStyle.red("Apply refused:") + " " + refused.flatMap(\.refusals).joined(separator: "\n  "))
            terminal.err("Nothing was changed.")
            try await finish(1)
        }
        let toChange = plan.environments.filter(\.hasChanges)
        if toChange.isEmpty {
            for env in prepared.values where !env.repairs.isEmpty { try? await applier.settle(env) }
            let report = ApplyReport(runID: runInfo.runID, environments: plan.environments.map {
                EnvironmentReport(environmentName: $0.environment.rawValue, success: $0.failure == nil, message: $0.failure ?? "No changes")
            })
            try writeReport(report, terminal: terminal)
            if format == .json { terminal.out(String(decoding: report.json(), as: UTF8.self)) }
            try await finish(report.success ? 0 : 1)
        }
        guard confirm(plan: plan, changing: toChange, terminal: terminal) else {
            terminal.err("Nothing was changed.")
            try await finish(1)
        }

        let interrupts = InterruptHandler(stop: stop, terminal: terminal)
        let deadline = timeout.flatMap(RunDeadline.parse).map { limit in
            Task {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled { stop.request("the run deadline (--timeout \(timeout ?? "")) passed") }
            }
        }
        let report = await applier.apply(plan, prepared: prepared, schemas: Composition.providers.schemas)
        deadline?.cancel()
        interrupts.disarm()

        try writeReport(report, terminal: terminal)
        switch format {
        case .text: terminal.out(ReportTextRenderer(style: terminal.style).render(report, reportFile: self.report))
        case .json: terminal.out(String(decoding: report.json(), as: UTF8.self))
        }
        if let reason = stop.reason {
            terminal.err("Stopped: \(reason). Operations not started are marked skipped; run apply again to finish.")
            try await finish(interrupts.wasInterrupted ? 130 : 1)
        }
        try await finish(report.success ? 0 : 1)
    }

    private func writeReport(_ report: ApplyReport, terminal: Terminal) throws {
        guard let path = self.report else { return }
        do {
            try SecureFiles.writeAtomically(report.json(), to: path)
        } catch {
            terminal.err("error: cannot write the report: \(error)")
            throw ExitCode(1)
        }
    }

    /// Asks for `yes` (and a protected environment's name) unless the flags already confirm.
    private func confirm(plan: Plan, changing: [EnvironmentPlan], terminal: Terminal) -> Bool {
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

    static func commandLine() -> String {
        let text = (["credops"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }
}

/// `90s`, `15m`, `1h`, `1h30m` or plain seconds.
enum RunDeadline {
    static func parse(_ text: String) -> Duration? {
        if let seconds = Int(text), seconds > 0 { return .seconds(seconds) }
        var total = 0, number = 0, sawDigit = false
        for ch in text {
            if let d = ch.wholeNumberValue, ch.isASCII {
                number = number * 10 + d
                sawDigit = true
            } else {
                guard sawDigit else { return nil }
                switch ch {
                case "h": total += number * 3600
                case "m": total += number * 60
                case "s": total += number
                default: return nil
                }
                number = 0
                sawDigit = false
            }
        }
        return sawDigit || total == 0 ? nil : .seconds(total)
    }
}

/// Ctrl-C (or SIGTERM) once: stop starting operations, let in-flight ones finish. Twice: exit 130 at once.
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

/// Prints one line per finished operation (on stderr), as apply goes.
final class ProgressPrinter: @unchecked Sendable {
    private let terminal: Terminal
    private let lock = NSLock()

    init(terminal: Terminal) { self.terminal = terminal }

    func handle(_ event: ApplyEvent) {
        lock.lock()
        defer { lock.unlock() }
        let s = terminal.errorStyle
        switch event {
        case .environmentStarted(let env, let operations):
            terminal.err("\(s.bold(env.rawValue)): applying \(operations) change\(operations == 1 ? "" : "s")")
        case .operationFinished(let env, let result, let done, let total):
            let mark: String
            switch result.status {
            case .applied: mark = s.green("✓")
            case .failed: mark = s.red("✗")
            case .skipped: mark = s.dim("○")
            }
            var line = "  \(mark) \(env.rawValue) [\(done)/\(total)] \(result.project)/\(result.username) \(result.action.rawValue)"
            if let grants = result.grants { line += " " + grants.map(\.description).joined(separator: ", ") }
            if let error = result.error { line += ": " + error }
            if let note = result.note, result.status == .applied, note != "password changed" { line += " (\(note))" }
            terminal.err(line)
        case .environmentFinished:
            break
        }
    }
}
