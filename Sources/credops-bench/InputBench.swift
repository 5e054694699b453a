import ApinizerProvider
import ArgumentParser
import CredOps
import CredOpsTestSupport
import Foundation

/// Input limits: the time and memory it takes to refuse a YAML alias bomb.
struct InputBench: ParsableCommand {
    init() {}

    static let configuration = CommandConfiguration(commandName: "input", abstract: "Alias-bomb refusal time and memory.")

    @Option(help: "Levels and width of the bomb (9 = 9^9 nodes expanded).") var levels = 9

    func run() throws {
        let dir = TemporaryDirectory(prefix: "credops-bench")
        dir.write("environments/e.yaml", "provider: apinizer\nurl: sandbox://e\n")
        var text = "apiVersion: credops/v1\nkind: CredentialSet\nproject: p\n"
        text += "a0: &a0 [" + Array(repeating: "\"lol\"", count: levels).joined(separator: ",") + "]\n"
        for i in 1..<levels {
            text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: levels).joined(separator: ",") + "]\n"
        }
        text += "credentials: []\n"
        let file = dir.write("bomb.yaml", text)
        let loader = InputLoader(schemas: ["apinizer": ApinizerProvider.credentialSchema])
        let before = ProcessUsage.now()
        let start = ContinuousClock.now
        let (_, diagnostics) = loader.load(paths: [file], environmentsDirectory: dir.url("environments"))
        let elapsed = ContinuousClock.now - start
        let after = ProcessUsage.now()
        let refused = diagnostics.contains { $0.message.contains("through its aliases") }
        print("YAML alias bomb, \(levels) levels × \(levels) (\(text.utf8.count) bytes, expands to \(levels)^\(levels) nodes):")
        print("  refused: \(refused); \(elapsed.formatted(.units(allowed: [.milliseconds, .microseconds], width: .narrow))); peak RSS \(megabytes(after.maxRSS)) (process total; before loading \(megabytes(before.maxRSS)))")
    }
}
