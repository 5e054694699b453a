import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Issue 10 through the built binary: a hostile server, hostile manifests, tampered plans,
/// pull-request builds and where the fingerprint key lives.
@Suite struct SecurityTests {
    static let token = "canary-Token-7f3a9c"
    static let longPassword = "canary-Pass<&>\"w0rd/é"
    /// One character, so only its unusual form could give it away.
    static let shortPassword = "ǂ"

    static func manifest(prune: String = "all") -> String {
        """
        apiVersion: credops/v1
        kind: CredentialSet
        project: payments
        prune: \(prune)
        credentials:
          - username: victim
            fullName: Victim
            email: v@example.com
            password: { fromEnv: LONG_PASSWORD }
          - username: patchme
            fullName: Patch Me
            email: p@example.com
            roleNameList: [API_USER]
            password: { fromEnv: SHORT_PASSWORD }
          - username: newbie
            fullName: New
            email: n@example.com
            password: { fromEnv: LONG_PASSWORD }
            access: [{ name: PaymentAPI, type: API_PROXY }]

        """
    }

    func hostileWorkspace(_ server: HostileServer) async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start([])
        w.environment("hostile", """
            provider: apinizer
            url: \(server.url)
            auth: { bearer: { fromEnv: HOSTILE_TOKEN } }
            concurrency: 2
            timeoutSeconds: 5
            retry: { maxRetries: 0 }
            """)
        w.variables["HOSTILE_TOKEN"] = Self.token
        w.variables["LONG_PASSWORD"] = Self.longPassword
        w.variables["SHORT_PASSWORD"] = Self.shortPassword
        w.manifest("payments.yaml", Self.manifest())
        return w
    }

    @Test func aHostileServerCannotRedirectRequestsLeakSecretsOrDriveTheTerminal() async throws {
        let server = try HostileServer()
        defer { server.stop() }
        let w = try await hostileWorkspace(server)
        defer { Task { await w.stop() } }

        let plan = await w.run(["plan", "manifests"])
        #expect(plan.exitCode == 0, "\(plan)")
        // The names that cannot be addressed are shown (escaped) and left alone, even with prune: all.
        #expect(plan.stdout.contains("..") && plan.stdout.contains("left alone: the name is '..'"), "\(plan)")
        #expect(plan.stdout.contains("svc\\u{0}evil"), "\(plan)")
        #expect(plan.stdout.contains(", 0 to delete,"), "\(plan)")

        let apply = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json", "--verbose"])
        #expect(apply.exitCode == 1, "\(apply)")
        let json = await w.run(["apply", "manifests", "--auto-approve", "--format", "json"])
        let markdown = await w.run(["plan", "manifests", "--format", "markdown"])
        let planJSON = await w.run(["plan", "manifests", "--format", "json", "--out", "plan.json"])

        // Every request stayed on the project's own paths; nothing was deleted.
        let lines = server.requestLines
        #expect(!lines.isEmpty)
        for line in lines {
            let path = line.split(separator: " ").last.map(String.init) ?? ""
            #expect(path.hasPrefix("/apiops/projects/payments/credentials/"), "\(line)")
            #expect(!path.contains("/../") && !path.contains("/./") && !path.hasSuffix("/..") , "\(line)")
        }
        #expect(!lines.contains { $0.hasPrefix("DELETE") }, "\(lines)")

        // No secret anywhere, in any form; no control character reached a terminal.
        var documents = Canary.files(under: w.dir.url(".credops"))
        documents["report.json"] = try Data(contentsOf: URL(fileURLWithPath: w.dir.url("report.json")))
        documents["plan.json"] = try Data(contentsOf: URL(fileURLWithPath: w.dir.url("plan.json")))
        for (name, result) in [("plan", plan), ("apply", apply), ("apply-json", json), ("markdown", markdown), ("plan-json", planJSON)] {
            documents["\(name).stdout"] = Data(result.stdout.utf8)
            documents["\(name).stderr"] = Data(result.stderr.utf8)
            for (stream, text) in [("stdout", result.stdout), ("stderr", result.stderr)] {
                #expect(!text.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{9B}" || $0 == "\u{7}" }, "\(name) \(stream) holds a raw control character")
            }
        }
        let hits = Canary.hits([Self.token, Self.longPassword, Self.shortPassword], in: documents)
        #expect(hits.isEmpty, "\(hits.joined(separator: "\n"))")
        // The server's errors are still reported, redacted.
        #expect(apply.stdout.contains("(redacted)"), "\(apply)")
    }

    @Test func secretFilesOutsideTheRepositoryAreRefusedBeforeAnyRequest() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        for path in ["/etc/hostname", "../../outside.txt", "/proc/self/environ"] {
            w.manifest("payments.yaml", """
                apiVersion: credops/v1
                kind: CredentialSet
                project: payments
                credentials:
                  - { username: a, fullName: A, email: a@example.com, password: { fromFile: "\(path)" } }
                """)
            let result = await w.run(["plan", "manifests"])
            #expect(result.exitCode == 1, "\(result)")
            #expect(result.stderr.contains("is outside the repository"), "\(result)")
        }
        w.dir.write("secrets/pipe.txt", "")
        unlink(w.dir.url("secrets/pipe.txt"))
        mkfifo(w.dir.url("secrets/pipe.txt"), 0o600)
        w.manifest("payments.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:
              - { username: a, fullName: A, email: a@example.com, password: { fromFile: ../secrets/pipe.txt } }
            """)
        let fifo = await w.run(["plan", "manifests"])
        #expect(fifo.exitCode == 1 && fifo.stderr.contains("is not a regular file"), "\(fifo)")
        #expect(try await w.sandbox("staging").stats().total == 0)
    }

    @Test func aManifestIsReadThroughOneHandleWithItsLimit() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        // A sparse 100 MiB file behind a symbolic link: refused from its real size, unread.
        let target = w.dir.url("huge.bin")
        _ = FileManager.default.createFile(atPath: target, contents: nil)
        truncate(target, 100 * 1024 * 1024)
        try FileManager.default.createDirectory(atPath: w.dir.url("manifests"), withIntermediateDirectories: true)
        symlink(target, w.dir.url("manifests/link.yaml"))
        let big = await w.run(["validate", "manifests/link.yaml"])
        #expect(big.exitCode == 1)
        #expect(big.stderr.contains("the file is 100 MiB, over the 4 MiB limit"), "\(big)")
        // A FIFO named as a manifest is refused, not waited on.
        mkfifo(w.dir.url("manifests/pipe.yaml"), 0o600)
        let fifo = await CLIRunner(directory: w.dir.path, environment: w.variables).run(["validate", "manifests/pipe.yaml"], timeout: .seconds(30))
        #expect(fifo.exitCode == 1 && fifo.stderr.contains("not a regular file"), "\(fifo)")
    }

    @Test func theFingerprintKeyLivesOutsideTheStateDirectory() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: w.dir.url(".credops/state.key")))
        let keyFile = try #require(StateKey.localKeyFile(statePath: w.dir.url(".credops/state.db"), environment: ["HOME": w.dir.path]))
        #expect(keyFile.hasPrefix(w.dir.url(".config/credops/keys/")))
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let listed = await w.run(["state", "list"])
        #expect(listed.stdout.contains("Fingerprint key: \(keyFile)"), "\(listed)")

        // A key left beside the state by an older credops is moved out, and still matches.
        try FileManager.default.moveItem(atPath: keyFile, toPath: w.dir.url(".credops/state.key"))
        unlink(w.dir.url(".credops/state.db.key-id"))
        let moved = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(moved.exitCode == 0, "\(moved)")
        #expect(moved.stderr.contains("moved the fingerprint key from"), "\(moved)")
        #expect(!FileManager.default.fileExists(atPath: w.dir.url(".credops/state.key")))

        // In CI the key comes from the CI secret store, unless a local key is asked for.
        let ci = await w.run(["plan", "manifests"], variables: ["CI": "true"])
        #expect(ci.exitCode == 1 && ci.stderr.contains("needs CREDOPS_STATE_KEY"), "\(ci)")
        let allowed = await w.run(["plan", "manifests", "--allow-local-key", "--detailed-exitcode"], variables: ["CI": "true"])
        #expect(allowed.exitCode == 0, "\(allowed)")
    }

    @Test func aChangedSavedPlanIsRefusedNamingWhatChangedAndGuardRailsComeFromTheCommandLine() async throws {
        let w = try await E2EWorkspace.start(["staging"], extra: ["staging": "protected: true"])
        defer { Task { await w.stop() } }
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        #expect(await w.run(["apply", "manifests", "--auto-approve", "--confirm-environment", "staging"]).exitCode == 0)
        // A delete in a protected environment, planned with the flag that allows it.
        w.manifest("payments.yaml", Manifests.payments(includeBilling: false, productionOverride: false))
        let planned = await w.run(["plan", "manifests", "--out", "plan.json", "--allow-delete"])
        #expect(planned.exitCode == 0, "\(planned)")
        let original = try String(contentsOfFile: w.dir.url("plan.json"), encoding: .utf8)

        // Edited paths: the plan would read other manifests.
        try original.replacingOccurrences(of: "\"manifests\"", with: "\"elsewhere\"").write(toFile: w.dir.url("plan.json"), atomically: true, encoding: .utf8)
        var result = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(result.exitCode == 1 && result.stderr.contains("its inputs (manifest paths"), "\(result)")

        // Edited changes.
        try original.replacingOccurrences(of: "noLongerDeclared", with: "notDeclaredPruneAll").write(toFile: w.dir.url("plan.json"), atomically: true, encoding: .utf8)
        result = await w.run(["apply", "--plan", "plan.json", "--auto-approve"])
        #expect(result.exitCode == 1 && result.stderr.contains("the changes of staging were changed"), "\(result)")

        // Signed under another key.
        try original.write(toFile: w.dir.url("plan.json"), atomically: true, encoding: .utf8)
        result = await w.run(["apply", "--plan", "plan.json", "--auto-approve"], variables: ["CREDOPS_STATE_KEY": String(repeating: "ab", count: 32)])
        #expect(result.exitCode == 1 && result.stderr.contains("not made with this state's key"), "\(result)")

        // Intact, but the delete needs the flag on this command line, not in the file.
        result = await w.run(["apply", "--plan", "plan.json", "--auto-approve", "--confirm-environment", "staging"])
        #expect(result.exitCode == 1 && result.stderr.contains("pass --allow-delete"), "\(result)")
        #expect(await w.sandbox("staging").credentials().count == 2)
        result = await w.run(["apply", "--plan", "plan.json", "--auto-approve", "--confirm-environment", "staging", "--allow-delete"])
        #expect(result.exitCode == 0, "\(result)")
        #expect(await w.sandbox("staging").credentials().count == 1)
    }

    @Test func pullRequestBuildsSendCredentialsOnlyToPinnedHosts() async throws {
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        let pr = ["GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"]
        let refused = await w.run(["plan", "manifests"], variables: pr)
        #expect(refused.exitCode == 1 && refused.stderr.contains("pull-request build"), "\(refused)")
        #expect(try await w.sandbox("staging").stats().total == 0)

        // A pull request pointing staging elsewhere: the pinned list does not have that host.
        let pinned = w.dir.write("pinned-hosts", "# from the default branch\n127.0.0.1:\(w.sandbox("staging").server.port)\n")
        #expect(await w.run(["plan", "manifests", "--pinned-hosts", pinned], variables: pr).exitCode == 0)
        let elsewhere = try RawHTTPServer { _ in nil }
        defer { elsewhere.stop() }
        w.environment("staging", """
            provider: apinizer
            url: http://localhost:\(elsewhere.port)
            auth: { bearer: { fromEnv: CREDOPS_TOKEN } }
            """)
        let redirected = await w.run(["plan", "manifests", "--pinned-hosts", pinned], variables: pr)
        #expect(redirected.exitCode == 1 && redirected.stderr.contains("is not an allowed host"), "\(redirected)")
        let byVariable = await w.run(["plan", "manifests"], variables: ["CREDOPS_ALLOWED_HOSTS": "127.0.0.1"])
        #expect(byVariable.exitCode == 1 && byVariable.stderr.contains("localhost:\(elsewhere.port)"), "\(byVariable)")
        #expect(elsewhere.received.isEmpty)
    }

    /// A token call that answers a token with a line break in it cannot add a header of the
    /// server's choosing to every later request.
    @Test func aTokenAnswerWithALineBreakIsRefused() async throws {
        let server = try RawHTTPServer { request in
            if request.hasPrefix("POST /apiops/auth/token") {
                return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")],
                                            body: Data(#"{"access_token":"abc\r\nX-Injected: yes","expires_in":3600}"#.utf8))
            }
            return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")], body: Data(#"{"success":true,"resultList":[]}"#.utf8))
        }
        defer { server.stop() }
        let w = try await E2EWorkspace.start([])
        defer { Task { await w.stop() } }
        w.environment("staging", "url: \(server.url)\nauth: { oauth2: { clientId: ci-user, clientSecret: { fromEnv: CI_SECRET } } }\n")
        w.variables["CI_SECRET"] = "client-secret-1"
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        let result = await w.run(["plan", "manifests"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout.contains("access_token that holds a control character"), "\(result)")
        #expect(!server.received.contains { $0.contains("X-Injected") }, "\(server.received)")
        #expect(server.received.count == 1)
    }

    /// An access token is a secret too, though credops learns it only midway through a run;
    /// and a server's token lifetime cannot crash the run.
    @Test func anAccessTokenEchoedByTheServerIsRedactedEverywhere() async throws {
        let accessToken = "cnry-AccessTok-7788"
        let server = try RawHTTPServer { request in
            let authorization = request.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("authorization:") } ?? ""
            func json(_ object: Any) -> Data { (try? JSONSerialization.data(withJSONObject: object)) ?? Data() }
            if request.hasPrefix("POST /apiops/auth/token") {
                return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")],
                                            body: Data(#"{"access_token":"\#(accessToken)","expires_in":1e300}"#.utf8))
            }
            if request.hasPrefix("GET"), request.prefix(while: { $0 != "\r" }).contains("/access/ ") {
                return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")], body: json(["success": true, "resultList": []]))
            }
            if request.hasPrefix("GET") {
                return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")], body: json([
                    "success": true, "resultList": [["username": "checkout-service", "email": "x@example.com", "fullName": "X",
                                                     "description": "seen \(authorization)"]],
                ]))
            }
            return RawHTTPServer.answer(status: 400, headers: [("Content-Type", "application/json")],
                                        body: json(["error": "bad_request", "error_description": "you sent \(authorization)"]))
        }
        defer { server.stop() }
        let w = try await E2EWorkspace.start([])
        defer { Task { await w.stop() } }
        w.environment("staging", "url: \(server.url)\nauth: { oauth2: { clientId: payments, clientSecret: { fromEnv: CI_SECRET } } }\nretry: { maxRetries: 0 }\n")
        w.variables["CI_SECRET"] = "cnry-ClientSecret-1234"
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        let plan = await w.run(["plan", "manifests", "--format", "json", "--out", "plan.json"])
        let apply = await w.run(["apply", "manifests", "--auto-approve", "--report", "report.json", "--format", "junit"])
        #expect(plan.exitCode == 0 || plan.exitCode == 2, "\(plan)")
        #expect(apply.exitCode == 1, "\(apply)")
        var documents = Canary.files(under: w.dir.path)
        for (name, result) in [("plan", plan), ("apply", apply)] {
            documents["\(name).stdout"] = Data(result.stdout.utf8)
            documents["\(name).stderr"] = Data(result.stderr.utf8)
        }
        let hits = Canary.hits([accessToken, "cnry-ClientSecret-1234"], in: documents)
        #expect(hits.isEmpty, "\(hits.joined(separator: "\n"))")
        // The client id is a login name, not a secret: the project named like it still shows.
        #expect(plan.stdout.contains("\"payments\""), "\(plan)")
    }

    @Test func passwordsInStateURLsAreNeverStoredOrShown() async throws {
        let canary = "canary-Url-pw-5521"
        let w = try await E2EWorkspace.start(["staging"])
        defer { Task { await w.stop() } }
        let malformed = await w.run(["state", "list", "--state", "postgress://u:\(canary)@db/x"])
        #expect(malformed.exitCode != 0 && !"\(malformed)".contains(canary), "\(malformed)")

        let server = try await PostgresServer.get()
        let url = try await PostgresServer.database().replacingOccurrences(of: "postgres://credops@", with: "postgres://credops:\(canary)@")
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.variables["CREDOPS_STATE_KEY"] = String(repeating: "cd", count: 32)
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        let applied = await w.run(["apply", "manifests", "--auto-approve", "--state", url])
        #expect(applied.exitCode == 0, "\(applied)")
        let database = String(url.split(separator: "/").last!.prefix { $0 != "?" })
        let stored = try server.psql("SELECT command FROM runs UNION ALL SELECT command FROM locks", database: database)
        #expect(stored.contains("--state postgres://credops:(redacted)@"), "\(stored)")
        #expect(!stored.contains(canary) && !"\(applied)".contains(canary), "\(stored)")
    }
}
