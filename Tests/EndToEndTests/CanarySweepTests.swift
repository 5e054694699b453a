import ApinizerSandbox
import CredOps
import CredOpsStatePostgres
import CredOpsTestSupport
import Foundation
import Testing

/// Issue 10's canary sweep: every command and output format, the error paths (a server that
/// echoes requests, 5xx, TLS, a lock held by an old-style holder, validation), with one
/// distinct canary per secret; then everything written is searched for every canary in every
/// encoding. The figure printed is the number of places searched and of hits (0).
@Suite struct CanarySweepTests {
    static let canaries: [String: String] = [
        "STAGING_TOKEN": "cnry-StagingTok-81Qz",
        "HOSTILE_TOKEN": "cnry-HostileTok-27Wx",
        "PROD_CLIENT_SECRET": "cnry-ClientSec&3=+/Ke",
        "LONG_PASSWORD": "cnry-LongPass<\"é>-55",
        "SHORT_PASSWORD": "ǂ",
        "FILE_PASSWORD": "cnry-FilePass-90Tt",
        "DB_PASSWORD": "cnry-DbPass-64Rr",
        "CREDOPS_STATE_KEY": "c0ffee" + String(repeating: "0d", count: 29),
        "LITERAL_PASSWORD": "cnry-Literal-12Mm",
        "WEBHOOK_PATH": "cnry-WebhookPath-43Jj",
    ]

    @Test func noCanaryTurnsUpAnywhere() async throws {
        let c = Self.canaries
        let staging = try await SandboxFixture.start(token: c["STAGING_TOKEN"]!)
        var prodSeed = SandboxFixture.testSeed
        prodSeed.clients = ["ci-user": c["PROD_CLIENT_SECRET"]!]
        let production = try await SandboxFixture.start(seed: prodSeed, faults: SandboxFaults(errorRate: 0), token: "unused-\(UUID().uuidString)")
        let hostile = try HostileServer()
        let plainHTTP = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200) }
        defer {
            hostile.stop()
            plainHTTP.stop()
            Task { await staging.stop(); await production.stop() }
        }
        let w = try await E2EWorkspace.start([])
        w.environment("staging", "url: \(staging.baseURL)\nauth: { bearer: { fromEnv: STAGING_TOKEN } }\nretry: { maxRetries: 0 }\n")
        w.environment("production", "url: \(production.baseURL)\nauth: { oauth2: { clientId: ci-user, clientSecret: { fromEnv: PROD_CLIENT_SECRET } } }\nprojects: { payments: Payments-Prod }\nretry: { maxRetries: 0 }\n")
        w.environment("hostile", "url: \(hostile.url)\nauth: { bearer: { fromEnv: HOSTILE_TOKEN } }\nretry: { maxRetries: 0 }\ntimeoutSeconds: 5\n")
        w.environment("tls", "url: https://127.0.0.1:\(plainHTTP.port)\nauth: { bearer: { fromEnv: STAGING_TOKEN } }\nretry: { maxRetries: 0 }\ntimeoutSeconds: 5\n")
        let secretFile = w.dir.write("secrets/file-password.txt", c["FILE_PASSWORD"]! + "\n")
        chmod(secretFile, 0o600)
        w.manifest("payments.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            prune: all
            credentials:
              - username: victim
                fullName: Victim
                email: v@example.com
                password: { fromEnv: LONG_PASSWORD }
                access: [{ name: PaymentAPI, type: API_PROXY }]
              - username: patchme
                fullName: Patch Me
                email: p@example.com
                roleNameList: [API_USER]
                password: { fromEnv: SHORT_PASSWORD }
              - username: filed
                fullName: Filed
                email: f@example.com
                password: { fromFile: ../secrets/file-password.txt }
            """)
        for (k, v) in c where !["LITERAL_PASSWORD", "DB_PASSWORD", "WEBHOOK_PATH"].contains(k) { w.variables[k] = v }

        var outputs: [String: CLIRunner.Result] = [:]
        func run(_ name: String, _ arguments: [String], variables: [String: String] = [:]) async {
            outputs[name] = await w.run(arguments, variables: variables)
        }
        await run("validate", ["validate", "manifests"])
        await run("plan-text", ["plan", "manifests", "--verbose"])
        await run("plan-json", ["plan", "manifests", "--format", "json", "--out", "plan.json"])
        await run("plan-markdown", ["plan", "manifests", "--format", "markdown"])
        await run("show-text", ["show", "plan.json"])
        await run("show-json", ["show", "plan.json", "--format", "json"])
        await run("show-markdown", ["show", "plan.json", "--format", "markdown"])
        await run("apply-plan-junit", ["apply", "--plan", "plan.json", "--auto-approve", "--report", "report-plan.json", "--format", "junit"])
        await run("apply-json", ["apply", "manifests", "--auto-approve", "--format", "json", "--verbose"])
        await staging.setFaults(SandboxFaults(errorRate: 1))
        w.variables["LONG_PASSWORD"] = c["LONG_PASSWORD"]! + "-v2"
        await run("apply-5xx-markdown", ["apply", "manifests", "--auto-approve", "--format", "markdown", "--report", "report-5xx.json"])
        await staging.setFaults(SandboxFaults())
        await run("apply-text", ["apply", "manifests", "--auto-approve", "--report", "report.json"])
        await run("export-stdout", ["export", "-e", "hostile", "--project", "payments", "--adopt"])
        await run("export-adopt", ["export", "-e", "staging", "--project", "payments", "--out", "exported", "--adopt"])
        await run("state-list", ["state", "list"])
        await run("state-show", ["state", "show", "-e", "staging", "victim"])
        await run("expiring-json", ["expiring", "manifests", "--format", "json"])
        await run("expiring-markdown", ["expiring", "manifests", "--format", "markdown", "--within", "3650d"])
        await run("rotate", ["rotate", "-e", "staging", "--project", "payments", "victim", "--manifests", "manifests", "--auto-approve"])
        // One reconcile cycle; it fails (hostile, tls), so its webhook, whose URL is a secret, is called.
        await run("reconcile-once", ["reconcile", "manifests", "--once", "--listen", "", "--no-watch", "--webhook-url-env", "WEBHOOK_URL"],
                  variables: ["WEBHOOK_URL": "\(hostile.url)/hooks/\(c["WEBHOOK_PATH"]!)"])

        // A literal password in a manifest is refused without echoing it.
        w.dir.write("literal/m.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:
              - { username: lit, fullName: L, email: l@example.com, password: "\(c["LITERAL_PASSWORD"]!)" }
            """)
        await run("validate-literal", ["validate", "literal/m.yaml"])

        // The team state on PostgreSQL, with a password in its URL; a lock held by a holder
        // that stored its command line as typed (an older credops).
        let server = try await PostgresServer.get()
        let url = try await PostgresServer.database().replacingOccurrences(of: "postgres://credops@", with: "postgres://credops:\(c["DB_PASSWORD"]!)@")
        await run("migrate", ["state", "migrate", "--from", "sqlite:.credops/state.db", "--to", url])
        await run("apply-postgres", ["apply", "manifests", "-e", "staging", "--auto-approve", "--state", url])
        let holder = try await PostgresStateStore.open(try PostgresLocation(url: url, environment: [:]))
        try await holder.acquireLock(LockInfo(environment: "staging", lockID: "old1", user: "ci", host: "runner", pid: 1,
                                              command: "credops apply manifests --state \(url) --token \(c["STAGING_TOKEN"]!)", since: Date()),
                                     timeout: .zero, shouldStop: { false })
        await run("locked", ["apply", "manifests", "-e", "staging", "--auto-approve", "--lock-timeout", "1", "--state", url])
        await run("state-list-postgres", ["state", "list", "--state", url])
        await holder.releaseLock(environment: "staging")
        await holder.close()
        await run("bad-state-url", ["plan", "manifests", "--state", "postgress://u:\(c["DB_PASSWORD"]!)@x/db"])

        // Everything written: every output, every file of the workspace but the secret file
        // itself, and the PostgreSQL state's tables.
        var documents: [String: Data] = [:]
        for (name, result) in outputs {
            documents["\(name).stdout"] = Data(result.stdout.utf8)
            documents["\(name).stderr"] = Data(result.stderr.utf8)
        }
        for (path, data) in Canary.files(under: w.dir.path) where !path.hasPrefix("secrets/") && !path.hasPrefix("literal/") {
            documents[path] = data
        }
        let database = String(url.split(separator: "/").last!.prefix { $0 != "?" })
        for table in ["managed_credentials", "runs", "intents", "locks"] {
            documents["postgres:\(table)"] = Data(try server.psql("SELECT * FROM \(table)", database: database).utf8)
        }
        let hits = Canary.hits(Array(c.values) + [c["LONG_PASSWORD"]! + "-v2"], in: documents)
        print("FIGURE canary sweep: \(outputs.count) runs, \(documents.count) places searched (outputs, files, state tables), \(c.count + 1) canaries in \(c.values.map { Canary.forms($0).count }.reduce(0, +)) forms, \(hits.count) hits")
        #expect(hits.isEmpty, "\(hits.joined(separator: "\n"))")
        // Every run's two streams, the state, plan, reports and exports, four tables: a sweep
        // that quietly searched less would pass on nothing.
        #expect(outputs.count == 25 && documents.count >= 2 * outputs.count + 12, "\(documents.keys.sorted())")

        // The runs did what they were meant to, so the sweep saw real output.
        #expect(outputs["validate"]?.exitCode == 0, "\(outputs["validate"]!)")
        #expect(outputs["plan-json"]?.exitCode == 1, "\(outputs["plan-json"]!)")  // hostile and tls fail
        #expect(outputs["plan-text"]?.stderr.contains("GET ") == true, "\(outputs["plan-text"]!)")
        #expect(outputs["apply-5xx-markdown"]?.stdout.contains("500") == true, "\(outputs["apply-5xx-markdown"]!)")
        #expect(outputs["validate-literal"]?.stderr.contains("is written in the file") == true, "\(outputs["validate-literal"]!)")
        #expect(outputs["locked"]?.stderr.contains("old1") == true, "\(outputs["locked"]!)")
        #expect(outputs["apply-text"]?.stdout.contains("(redacted)") == true, "\(outputs["apply-text"]!)")
        #expect(outputs["reconcile-once"]?.exitCode != 0 && outputs["reconcile-once"]?.stderr.contains("cycle") == true, "\(outputs["reconcile-once"]!)")
        #expect(outputs["expiring-json"]?.stdout.contains("\"failures\"") == true, "\(outputs["expiring-json"]!)")
        #expect(await staging.credentials()["victim"]?.password == c["LONG_PASSWORD"]! + "-v2")
        #expect(await staging.credentials()["filed"]?.password == c["FILE_PASSWORD"]!)
        #expect(await production.credentials()["patchme"]?.password == c["SHORT_PASSWORD"]!)
        let exported = try FileManager.default.attributesOfItem(atPath: w.dir.url("exported/payments.yaml"))
        #expect((exported[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
