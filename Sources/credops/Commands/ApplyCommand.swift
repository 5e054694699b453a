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
            without one). A protected environment also needs --confirm-environment NAME. The \
            report follows Apinizer's deploymentResult shape; --report FILE writes it as JSON. \
            Exit code 1 when anything failed.

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

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let session = try await RunSession.open(input: input, selection: selection, state: stateOptions, terminal: terminal)
        let (plan, prepared) = await session.plan(options: guardRails.planOptions)
        let renderer = PlanTextRenderer(style: terminal.errorStyle, schemas: Composition.providers.schemas)
        let planText = session.readSummary + "\n\n" + renderer.render(plan)
        // The plan goes to stderr when stdout carries the JSON report.
        if format == .json { terminal.err(planText) } else { terminal.out(planText) }

        func finish(_ code: Int32) async throws -> Never {
            for env in prepared.values { env.close() }
            await session.close()
            throw ExitCode(code)
        }

        let refused = plan.environments.filter { !$0.refusals.isEmpty }
        if !refused.isEmpty {
            terminal.err(terminal.errorStyle.red("Apply refused:") + " " + refused.flatMap(\.refusals).joined(separator: "\n  "))
            terminal.err("Nothing was changed.")
            try await finish(1)
        }
        let toChange = plan.environments.filter(\.hasChanges)
        if toChange.isEmpty {
            let report = ApplyReport(runID: "none", environments: plan.environments.map {
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

        let runInfo = RunInfo(runID: RunInfo.newID(), command: Self.commandLine(), user: ProcessIdentity.user,
                              host: ProcessIdentity.host, pid: getpid())
        let progress = ProgressPrinter(terminal: terminal)
        let applier = Applier(store: session.store, run: runInfo, events: { progress.handle($0) })
        let report = await applier.apply(plan, prepared: prepared, schemas: Composition.providers.schemas)

        try writeReport(report, terminal: terminal)
        switch format {
        case .text: terminal.out(ReportTextRenderer(style: terminal.style).render(report, reportFile: self.report))
        case .json: terminal.out(String(decoding: report.json(), as: UTF8.self))
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
