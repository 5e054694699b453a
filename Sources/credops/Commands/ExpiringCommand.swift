import ArgumentParser
import CredOps
import CredOpsRender
import Foundation

struct ExpiringCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expiring",
        abstract: "List live credentials that expire, or whose generated secret is due for rotation, soon.",
        discussion: """
            Reads every selected environment (like plan, writing nothing; only the environments' \
            own credentials are needed, not the declared secrets) and lists the credentials the \
            manifests declare or credops manages whose expiry (Apinizer's expireDate) is past or \
            within --within, and those whose generated secret reaches its rotateAfter within it \
            (the next apply replaces them), by environment and soonest first, with days left. Exit codes: 0 none, \
            2 some (for a nightly job), 1 an environment could not be read.

            Examples:
              credops expiring examples --within 30d
              credops expiring examples -e production --within 7d --format json
            """)

    @OptionGroup var input: InputOptions
    @OptionGroup var selection: EnvironmentSelection
    @OptionGroup var stateOptions: StateOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The window: a duration such as 30d, 12h (default 30d).")
    var within = "30d"

    @Option(help: "Output format: text, json or markdown.")
    var format: PlanFormat = .text

    func validate() throws {
        try input.requirePaths("expiring")
        guard let seconds = DurationText.seconds(within), seconds <= 3650 * 86_400 else {
            throw ValidationError("--within must be a duration such as 30d, 12h or 90m, at most 3650d; found '\(within)'")
        }
    }

    func run() async throws {
        let terminal = Terminal(noColor: output.noColor)
        let window = DurationText.seconds(within) ?? 30 * 86_400
        let session = try await RunSession.open(input: input, selection: selection, state: stateOptions, terminal: terminal,
                                                verbose: output.verbose, authOnly: true)
        var options = PlanOptions()
        options.expiryWindow = TimeInterval(window)
        let (plan, prepared) = await session.plan(options: options, runID: "expiring")
        for env in prepared.values { env.close() }
        await session.close()
        let items = plan.environments.flatMap { $0.expiring ?? [] }
        let failures = plan.environments.compactMap { env in env.failure.map { (env.environment, $0) } }
        let renderer = ExpiryRenderer(style: terminal.style, window: window)
        switch format {
        case .text: terminal.out(renderer.text(items, failures: failures))
        case .json: terminal.out(String(decoding: renderer.json(items, failures: failures, at: plan.createdAt), as: UTF8.self))
        case .markdown: terminal.out(renderer.markdown(items, failures: failures))
        }
        if !failures.isEmpty { throw ExitCode(1) }
        if !items.isEmpty { throw ExitCode(2) }
    }
}
