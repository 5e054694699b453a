import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// A throwaway project directory with environment files pointing at sandboxes on ephemeral
/// ports, manifests, and a runner for the built binary.
final class E2EWorkspace: @unchecked Sendable {
    let dir = TemporaryDirectory(prefix: "credops-e2e")
    private(set) var sandboxes: [String: SandboxFixture] = [:]
    var variables: [String: String] = ["CREDOPS_TOKEN": "test-token-0123456789"]

    /// Starts one sandbox per name and writes `environments/NAME.yaml` for each.
    static func start(_ names: [String], faults: [String: SandboxFaults] = [:], extra: [String: String] = [:]) async throws -> E2EWorkspace {
        let workspace = E2EWorkspace()
        for name in names {
            let sandbox = try await SandboxFixture.start(faults: faults[name] ?? SandboxFaults())
            workspace.sandboxes[name] = sandbox
            workspace.environment(name, """
                provider: apinizer
                url: \(sandbox.baseURL)
                auth: { bearer: { fromEnv: CREDOPS_TOKEN } }
                concurrency: 4
                timeoutSeconds: 10
                \(extra[name] ?? "")
                """)
        }
        return workspace
    }

    func sandbox(_ name: String) -> SandboxFixture { sandboxes[name]! }

    func environment(_ name: String, _ text: String) { dir.write("environments/\(name).yaml", text) }

    func manifest(_ name: String, _ text: String) { dir.write("manifests/\(name)", text) }

    func removeManifest(_ name: String) { try? FileManager.default.removeItem(atPath: dir.url("manifests/\(name)")) }

    func run(_ arguments: [String], input: String? = nil, variables extra: [String: String] = [:]) async -> CLIRunner.Result {
        var env = variables
        for (k, v) in extra { env[k] = v }
        return await CLIRunner(directory: dir.path, environment: env).run(arguments, input: input)
    }

    /// Runs `credops` once per element of `runs` (arguments, extra variables), all at once, as
    /// that many runners would; the results in the order of `runs`.
    func runAll(_ runs: [([String], [String: String])]) async -> [CLIRunner.Result] {
        await withTaskGroup(of: (Int, CLIRunner.Result).self) { group in
            for (i, run) in runs.enumerated() {
                group.addTask { (i, await self.run(run.0, variables: run.1)) }
            }
            var results = [CLIRunner.Result?](repeating: nil, count: runs.count)
            for await (i, result) in group { results[i] = result }
            return results.map { $0! }
        }
    }

    /// Starts `credops ARGS` without waiting (output discarded), for tests that signal it.
    func spawn(_ arguments: [String]) throws -> ChildProcess {
        var env = CLIRunner(directory: dir.path, environment: variables).environment
        env["CREDOPS_TEST_SPAWN"] = "1"
        return try ChildProcess(CLIRunner.binary, arguments, environment: env, directory: dir.path)
    }

    func stop() async {
        for sandbox in sandboxes.values { await sandbox.stop() }
    }

    /// The report written by `--report`, as JSON.
    func report(_ file: String = "report.json") throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.url(file)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func environmentResults(_ report: [String: Any]) -> [[String: Any]] {
        ((report["deploymentResult"] as? [String: Any])?["environmentResults"] as? [[String: Any]]) ?? []
    }

    /// `plan --format json` parsed.
    func planJSON(_ extra: [String] = []) async throws -> [String: Any] {
        let result = await run(["plan", "manifests", "--format", "json"] + extra)
        #expect(result.exitCode == 0 || result.exitCode == 2, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result)")
    }

    static func changes(_ plan: [String: Any], environment: String) -> [[String: Any]] {
        let envs = plan["environments"] as? [[String: Any]] ?? []
        let env = envs.first { $0["name"] as? String == environment } ?? [:]
        return (env["projects"] as? [[String: Any]] ?? []).flatMap { $0["changes"] as? [[String: Any]] ?? [] }
    }

    static func summary(_ changes: [[String: Any]]) -> [String] {
        changes.map { "\($0["username"] as? String ?? "?") \($0["action"] as? String ?? "?")" }
    }
}

/// A manifest of the payments project used by several tests.
enum Manifests {
    /// - Parameter productionOverride: include the override for `production` (only where that environment exists).
    static func payments(prune: String = "managed", checkoutEmail: String = "checkout@example.com",
                         checkoutGrants: String = "[{ name: PaymentAPI, type: API_PROXY }]", includeBilling: Bool = true,
                         extraCredentials: String = "", productionOverride: Bool = true) -> String {
        var text = """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            prune: \(prune)
            credentials:
              - username: checkout-service
                fullName: Checkout Service
                email: \(checkoutEmail)
                description: Calls the payment APIs
                password: { fromEnv: CHECKOUT_PASSWORD }
                roleNameList: [API_USER]
                ipList: [10.0.0.0/8]
                expireDate: 2027-06-30T23:59:59.000Z
                access: \(checkoutGrants)

            """
        if productionOverride {
            text += """
                    overrides:
                      production:
                        ipList: [10.20.0.0/16]
                        password: { fromEnv: CHECKOUT_PASSWORD_PROD }

                """
        }
        if includeBilling {
            text += """
                  - username: billing-bot
                    fullName: Billing Bot
                    email: billing@example.com
                    password: { fromEnv: BILLING_PASSWORD }
                    roleNameList: [API_USER, DEVELOPER]
                    access:
                      - { name: PaymentAPIGroup, type: API_PROXY_GROUP }

                """
        }
        return text + extraCredentials
    }

    /// `count` credentials of project `bench`, each with one grant.
    static func many(_ count: Int, grants: Bool = true) -> String {
        var text = "apiVersion: credops/v1\nkind: CredentialSet\nproject: payments\ncredentials:\n"
        for i in 0..<count {
            text += """
                  - username: user-\(i)
                    fullName: User \(i)
                    email: user\(i)@example.com
                    password: { fromEnv: BILLING_PASSWORD }
                    roleNameList: [API_USER]

                """
            if grants { text += "    access: [{ name: PaymentAPI, type: API_PROXY }]\n" }
        }
        return text
    }

    static let passwords = [
        "CHECKOUT_PASSWORD": "canary-Checkout-pw-4711",
        "CHECKOUT_PASSWORD_PROD": "canary-CheckoutProd-pw-0815",
        "BILLING_PASSWORD": "canary-Billing-pw-2342",
    ]
}
