import ArgumentParser
import CredOps
#if canImport(Glibc)
import Glibc
#endif

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

    /// ArgumentParser's own entry point, after two settings of glibc's malloc:
    ///
    /// - Two arenas. malloc gives each thread that allocates an arena of its own (up to 8 per
    ///   core), so freed memory stays spread over as many arenas as an apply has threads (an
    ///   HTTP thread per environment, Swift's pool, the state's thread). Two arenas held
    ///   10,000 credentials × 3 environments in 8-9 % less memory at the same CPU (apply
    ///   260 -> 238 MB, plan 203 -> 185 MB peak RSS, measured when there was an HTTP thread per
    ///   request in flight).
    /// - Blocks of 1 MiB and more mapped from the system, and given back when freed. By
    ///   default the threshold rises to the size of any such block once it is freed (up to
    ///   32 MiB); from then on the large arrays and dictionaries of a big plan (state records,
    ///   live lists, indexes of 10,000 entries) come from the heap, and freed in another order
    ///   than they were made, leave it in pieces. Fixed at 1 MiB, peak RSS at 10,000 × 3 fell
    ///   from 126-128 to 118-120 MB (plan) and from 123-125 to 120-121 MB (apply), at the
    ///   same CPU within the machine's noise.
    static func main() async {
        #if canImport(Glibc)
        // mallopt(3); <malloc.h> is not in Glibc's module map, so it is looked up.
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
            let mArenaMax: Int32 = -8, mMmapThreshold: Int32 = -3
            _ = mallopt(mArenaMax, 2)
            _ = mallopt(mMmapThreshold, 1 << 20)
        }
        #endif
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
