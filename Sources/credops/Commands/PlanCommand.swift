import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

/// The guard rails against accidental deletes.
struct GuardRailOptions: ParsableArguments {
    @Flag(help: "Allow deletes in protected environments.")
    var allowDelete = false

    @Flag(help: "Allow deleting more than half of a project's credentials, or more than --max-deletes.")
    var allowMassDelete = false

    @Option(help: "Refuse a plan with more deletes than this in one environment.")
    var maxDeletes: Int?

    var planOptions: PlanOptions {
        PlanOptions(allowDelete: allowDelete, allowMassDelete: allowMassDelete, maxDeletes: maxDeletes)
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Read the live state of every environment and show what apply would change.",
        discussion: """
            Reads only: never writes to a server or to the state. --out saves the plan (no secret in \
            it) for `credops apply --plan FILE`, which refuses it when anything changed since. \
            --format json is stable and versioned; its `drift` object lists credentials whose live \
            fields or grants differ from the manifests and what nobody declares, for scheduled \
            drift checks. --format markdown is made for pull-request comments. Exit codes: 0 \
            success, 1 error, 2 changes present (with --detailed-exitcode).

            Examples:
              credops plan examples
              credops plan examples -e staging --format json
              credops plan examples --out plan.json --format markdown > plan.md
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var guardRails: GuardRailOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Output format: text, json or markdown.")
    var format: PlanFormat = .text

    @Option(help: "Save the plan to this file, for `credops apply --plan FILE`.")
    var out: String?

    @Flag(help: "Exit with 2 when the plan has changes, 0 when it has none.")
    var detailedExitcode = false

    func validate() throws { try input.requirePaths("plan") }

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let session = try await RunSession.open(input: input, selection: selection, state: stateOptions, terminal: terminal,
                                                verbose: output.verbose, checkPolicies: true)
        let (plan, prepared) = await session.plan(options: guardRails.planOptions)
        for env in prepared.values { env.close() }
        await session.close()
        if let out {
            let saved = SavedPlan(plan: plan, inputs: SavedPlan.SavedInputs(
                paths: input.paths, environmentsDirectory: input.environmentsDirectory, providersDirectory: input.providersDirectory,
                policiesDirectory: input.policiesDirectory, allowPlaintextSecrets: input.allowPlaintextSecrets,
                files: session.inputs.files, selectedEnvironments: selection.environments), options: guardRails.planOptions)
            do {
                // Redacted first (live values a server sent may hold a secret), then signed, so
                // that apply verifies exactly what the file holds.
                let cleaned = try SavedPlan.read(terminal.redacted(saved.json()))
                try SecureFiles.writeAtomically(try cleaned.signed(with: session.workflow.stateKey).json(), to: out)
            } catch {
                terminal.err("error: cannot write the plan: \(error)")
                throw ExitCode(1)
            }
        }
        if format == .text && !output.quiet {
            terminal.out(session.readSummary)
            terminal.out("")
        }
        if !output.quiet || format != .text {
            terminal.out(PlanOutput.render(plan, format: format, style: terminal.style))
        } else {
            terminal.out(PlanTextRenderer(style: terminal.style, schemas: Composition.providers.schemas).summary(plan))
        }
        if let out, format == .text, !output.quiet { terminal.out("Plan saved to \(out); apply it with: credops apply --plan \(out)") }
        if plan.hasErrors { throw ExitCode(1) }
        if detailedExitcode && plan.hasChanges { throw ExitCode(2) }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Render a saved plan (from `credops plan --out`).",
        discussion: """
            Examples:
              credops show plan.json
              credops show plan.json --format markdown
            """)

    @Argument(help: "The saved plan.") var planFile: String
    @Option(help: "Output format: text, json or markdown.") var format: PlanFormat = .text
    @Flag(help: "No colours.") var noColor = false

    func run() throws {
        let terminal = Terminal(noColor: noColor)
        let saved = try SavedPlanFile.read(planFile, terminal: terminal)
        if format == .text {
            terminal.out("Plan made \(StateCommand.time(saved.plan.createdAt)) UTC by credops \(saved.credopsVersion) from \(saved.inputs.paths.joined(separator: " ")).")
            terminal.out("")
        }
        terminal.out(PlanOutput.render(saved.plan, format: format, style: terminal.style))
    }
}

enum SavedPlanFile {
    /// Largest plan file read (a plan of 30,000 changes is about 30 MB).
    static let maxBytes = 256 * 1024 * 1024

    static func read(_ path: String, terminal: Terminal) throws -> SavedPlan {
        let data: Data
        switch SecureFiles.readRegularFile(path, limit: maxBytes) {
        case .success(let file): data = Data(file.bytes)
        case .failure(.tooLarge): terminal.err("error: \(path): larger than 256 MiB; not a plan credops wrote"); throw ExitCode(1)
        case .failure(.notRegular): terminal.err("error: \(path): not a regular file"); throw ExitCode(1)
        case .failure(.system(let code)): terminal.err("error: \(path): cannot read the plan file (\(String(cString: strerror(code))))"); throw ExitCode(1)
        }
        do {
            return try SavedPlan.read(data)
        } catch {
            terminal.err("error: \(path): not a credops plan this version can read (\(error))")
            throw ExitCode(1)
        }
    }
}
