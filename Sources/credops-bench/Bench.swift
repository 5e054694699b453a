import ArgumentParser
import Foundation

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credops-bench",
        abstract: "Benchmarks that print figures: the HTTP client, input limits, and plan/apply scenarios.",
        discussion: "Build with -c release for meaningful numbers: swift run -c release credops-bench all",
        subcommands: [AllBench.self, ExternalBench.self, ScenarioBench.self, MatrixBench.self, CompareBench.self, MicroBench.self, MicroChild.self, HTTPBench.self, InputBench.self, TeamBench.self, LeadConduitBench.self],
        defaultSubcommand: AllBench.self)
}

/// CPU seconds and peak memory of this process so far.
enum ProcessUsage {
    static func now() -> (cpu: Double, maxRSS: Int) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return (cpu, Int(usage.ru_maxrss) * 1024)
    }
}

func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_000_000) }

/// The credops binary built beside this one.
let credopsBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("credops").path
}()
