import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

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
            Reads only: never writes to a server or to the state. Exit codes: 0 success, 1 error, \
            2 changes present (with --detailed-exitcode).

            Examples:
              credops plan examples
              credops plan examples -e staging --format json
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var guardRails: GuardRailOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Flag(help: "Exit with 2 when the plan has changes, 0 when it has none.")
    var detailedExitcode = false

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let session = try await RunSession.open(input: input, selection: selection, state: stateOptions, terminal: terminal)
        let (plan, prepared) = await session.plan(options: guardRails.planOptions)
        for env in prepared.values { env.close() }
        switch format {
        case .text:
            terminal.out(session.readSummary)
            terminal.out("")
            terminal.out(PlanTextRenderer(style: terminal.style, schemas: Composition.providers.schemas).render(plan))
        case .json:
            terminal.out(String(decoding: PlanJSONRenderer.render(plan), as: UTF8.self))
        }
        await session.close()
        if plan.hasErrors { throw ExitCode(1) }
        if detailedExitcode && plan.hasChanges { throw ExitCode(2) }
    }
}
