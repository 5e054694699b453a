import ArgumentParser
import CredOps

@main
struct CredOpsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credops",
        abstract: "Keep API credentials on API-management servers in line with YAML manifests in git.",
        discussion: """
            Manifests declare, per project, the credentials a server must hold. `credops plan` reads the \
            live state of every environment and shows the difference; `credops apply` makes exactly \
            those changes and reports per environment.

            Quick start (built-in sandbox environments, no server needed):
              credops apply examples --auto-approve
              credops plan examples

            Shell completions: credops --generate-completion-script bash (or zsh, fish).
            """,
        version: CredOpsVersion.current,
        subcommands: [ValidateCommand.self, PlanCommand.self, ApplyCommand.self, RotateCommand.self, ExpiringCommand.self, ReconcileCommand.self, ShowCommand.self, ExportCommand.self,
                      StateCommand.self, SchemaCommand.self, SandboxCommand.self])
}
