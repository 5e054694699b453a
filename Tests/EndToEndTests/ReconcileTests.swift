import ApinizerSandbox
import CredOps
import CredOpsStatePostgres
import CredOpsTestSupport
import Foundation
import Synchronization
import Testing

/// `credops reconcile` as a service: replicas of the built binary on one PostgreSQL state,
/// one leader at a time, handover after SIGKILL, drift corrected within a cycle, metrics over
/// HTTP, drift-only with a webhook, SIGHUP.
@Suite(.serialized) struct ReconcileTests {
    static let key = String(repeating: "7d", count: 32)

    /// One replica: the process and the file its JSON log lines go to.
    final class Replica: @unchecked Sendable {
        let process: ChildProcess
        let log: String

        init(_ w: E2EWorkspace, _ arguments: [String], name: String) throws {
            log = w.dir.url("\(name).log")
            let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            defer { close(fd) }
            var env = CLIRunner(directory: w.dir.path, environment: w.variables).environment
            env["CREDOPS_TEST_SPAWN"] = "1"
            process = try ChildProcess(CLIRunner.binary, ["reconcile"] + arguments, environment: env, directory: w.dir.path, stderr: fd)
        }

        var lines: [[String: Any]] {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        func said(_ message: String) -> Bool { lines.contains { ($0["message"] as? String)?.contains(message) == true } }

        /// The log's last lines, for a failure message (the workspace is gone by the time one is read).
        var tail: String {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return "\(log):\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
        }

        var port: Int? {
            for line in lines {
                if let url = line["url"] as? String, let port = url.split(separator: ":").last.flatMap({ Int($0) }) { return port }
            }
            return nil
        }

        func get(_ path: String) async -> (Int, String)? {
            guard let port else { return nil }
            let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, requestTimeout: .seconds(5)))
            defer { http.shutdown() }
            guard let response = try? await http.send(HTTPRequest(method: .get, url: "http://127.0.0.1:\(port)\(path)")) else { return nil }
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
    }

    /// Polls `condition` every 100 ms for up to `limit`; the time it took, or nil.
    static func waitFor(_ limit: Duration, _ condition: () async -> Bool) async -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if await condition() { return ContinuousClock.now - start }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    func workspace(_ names: [String], state: String? = nil) async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start(names)
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        if let state { w.variables["CREDOPS_STATE"] = state }
        w.variables["CREDOPS_STATE_KEY"] = Self.key
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        return w
    }

    /// One replica that leads alone, once its first cycle is done.
    func soloReplica(_ w: E2EWorkspace, _ arguments: [String], name: String) async throws -> Replica {
        let replica = try Replica(w, ["manifests", "--every", "1h", "--leader-check", "1s"] + arguments, name: name)
        #expect(await Self.waitFor(.seconds(60)) { replica.said("cycle finished") } != nil)
        return replica
    }

    /// SIGTERM: the replica exits 0 after letting go of leadership.
    func stopCleanly(_ replica: Replica) async {
        replica.process.signal(SIGTERM)
        #expect(await replica.process.wait(timeout: .seconds(60)) == 0)
        #expect(replica.said("left leadership") && replica.said("reconcile stopped"))
    }

    /// A webhook receiver that keeps every request it gets.
    func webhookReceiver() throws -> (server: RawHTTPServer, received: @Sendable () -> [String]) {
        let received = Mutex<[String]>([])
        let server = try RawHTTPServer { request in
            received.withLock { $0.append(request) }
            return RawHTTPServer.answer(status: 200)
        }
        return (server, { received.withLock { $0 } })
    }

    static func drift(_ w: E2EWorkspace, _ environment: String) async throws {
        var changed = try #require(await w.sandbox(environment).credentials()["billing-bot"])
        changed.fullName = "Changed Out Of Band"
        try await w.sandbox(environment).seed(credentials: [changed])
    }

    static func corrected(_ w: E2EWorkspace, _ environment: String) async -> Bool {
        await w.sandbox(environment).credentials()["billing-bot"]?.fullName == "Billing Bot"
    }

    @Test func threeReplicasOneLeaderHandOverAfterSIGKILLAndCorrectDrift() async throws {
        let url = try await PostgresServer.database()
        let w = try await workspace(["staging", "production"], state: url)
        defer { Task { await w.stop() } }
        let arguments = ["manifests", "--every", "2s", "--leader-check", "1s", "--listen", "127.0.0.1:0", "--no-watch"]
        var replicas = try (0..<3).map { try Replica(w, arguments, name: "replica-\($0)") }
        defer { for r in replicas { r.process.signal(SIGKILL) } }

        let applied = await Self.waitFor(.seconds(60)) {
            let (production, staging) = (await w.sandbox("production").credentials().count, await w.sandbox("staging").credentials().count)
            return production == 2 && staging == 2
        }
        #expect(applied != nil, "the first cycle did not apply: \(replicas.map { (try? String(contentsOfFile: $0.log, encoding: .utf8)) ?? "" })")
        let leaders = replicas.filter { $0.said("leading: this replica runs the cycles") }
        #expect(leaders.count == 1, "leaders: \(leaders.count)")
        let leader = try #require(leaders.first)
        _ = await Self.waitFor(.seconds(10)) { replicas.allSatisfy { $0.port != nil } }
        // The metrics follow the cycle's end, a moment after its last write.
        let created = "credops_operations_total{environment=\"staging\",kind=\"create\",outcome=\"applied\"} 2"
        #expect(await Self.waitFor(.seconds(30)) { await leader.get("/metrics")?.1.contains(created) == true } != nil)
        let metrics = await leader.get("/metrics")
        #expect(metrics?.1.contains("credops_reconcile_leader 1.0") == true, "\(metrics?.1 ?? "no metrics")")
        for standby in replicas where standby !== leader {
            #expect(await standby.get("/readyz")?.1 == "ready (standby)\n")
            #expect(await standby.get("/metrics")?.1.contains("credops_reconcile_leader 0.0") == true)
        }
        #expect(await leader.get("/healthz")?.0 == 200)

        // Drift made out of band is corrected within a cycle.
        try await Self.drift(w, "staging")
        let correction = await Self.waitFor(.seconds(30)) { await Self.corrected(w, "staging") }
        #expect(correction != nil, "drift not corrected")
        let updated = "credops_operations_total{environment=\"staging\",kind=\"update\",outcome=\"applied\"} 1"
        let seen = await Self.waitFor(.seconds(30)) { await leader.get("/metrics")?.1.contains(updated) == true }
        #expect(seen != nil, "no \(updated)")

        // The leader dies: a standby takes over within about one leader-check interval.
        leader.process.signal(SIGKILL)
        _ = await leader.process.wait(timeout: .seconds(10))
        let killed = ContinuousClock.now
        replicas.removeAll { $0 === leader }
        let handover = await Self.waitFor(.seconds(30)) { replicas.contains { $0.said("leading: this replica runs the cycles") } }
        #expect(handover != nil, "nobody took over")
        let handoverTime = ContinuousClock.now - killed
        let next = try #require(replicas.first { $0.said("leading: this replica runs the cycles") })
        try await Self.drift(w, "production")
        let secondCorrection = await Self.waitFor(.seconds(30)) { await Self.corrected(w, "production") }
        #expect(secondCorrection != nil, "the new leader did not correct drift")
        #expect(await next.get("/metrics")?.1.contains("credops_reconcile_leader 1.0") == true)

        // The leader's state session is ended under it (a network cut, a database failover):
        // it notices within a leader-check, stops acting, and a replica leads again.
        let server = try await PostgresServer.get()
        let database = String(url.split(separator: "/").last?.split(separator: "?").first ?? "")
        let before = replicas.map { $0.lines.filter { ($0["message"] as? String)?.hasPrefix("leading:") == true }.count }.reduce(0, +)
        // Only this test's database: other tests share the server.
        _ = try server.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                            + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", database: database)
        let noticed = await Self.waitFor(.seconds(20)) { next.said("lost leadership") }
        #expect(noticed != nil, "the leader did not notice: \(next.lines.suffix(5))")
        let releaded = await Self.waitFor(.seconds(20)) {
            replicas.map { $0.lines.filter { ($0["message"] as? String)?.hasPrefix("leading:") == true }.count }.reduce(0, +) > before
        }
        #expect(releaded != nil, "nobody leads after the cut")

        // SIGTERM: the rest stop cleanly and let go.
        for r in replicas { r.process.signal(SIGTERM) }
        for r in replicas { #expect(await r.process.wait(timeout: .seconds(60)) == 0, "\(r.tail)") }

        // At no time did two replicas run: the shared history has no overlapping runs.
        let store = try await PostgresStateStore.open(try PostgresLocation(url: url, environment: [:]))
        var overlaps = 0
        var runs = 0
        for environment in ["staging", "production"] {
            let history = try await store.history(environment: EnvironmentName(environment), limit: 1000).sorted { $0.startedAt < $1.startedAt }
            runs += history.count
            for (a, b) in zip(history, history.dropFirst()) where (a.finishedAt ?? .distantFuture) > b.startedAt { overlaps += 1 }
            #expect(Set(history.map(\.pid)).count >= 2, "\(environment): cycles by one process only")
        }
        #expect(overlaps == 0)
        await store.close()
        // Nothing holds any lock once the replicas are gone (a killed holder's row may stay in
        // the locks table; its advisory lock, the lock itself, went with its session).
        let held = try server.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                   + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", database: database)
        #expect(held.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "advisory locks left: \(held)")
        print("FIGURE reconcile: 3 replicas, 1 leader; first cycle applied in \(applied.map { "\($0)" } ?? "-"); drift corrected in \(correction.map { "\($0)" } ?? "-") (every 2s); "
              + "SIGKILL of the leader → new leader in \(handoverTime) (leader-check 1s); its state session ended → noticed in \(noticed.map { "\($0)" } ?? "-"), "
              + "leader again after \(releaded.map { "\($0)" } ?? "-"); \(runs) runs in the history, \(overlaps) overlapping")
    }

    @Test func driftOnlyReportsToTheWebhookAndChangesNothing() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        try await Self.drift(w, "staging")
        let (hook, received) = try webhookReceiver()
        defer { hook.stop() }
        w.variables["HOOK_URL"] = hook.url + "/services/T000/B000/canary-hook-token"
        try await w.sandbox("staging").resetStats()
        let once = await w.run(["reconcile", "manifests", "--drift-only", "--once", "--listen", "", "--webhook-url-env", "HOOK_URL", "--log-format", "text"])
        #expect(once.exitCode == 0, "\(once)")
        #expect(once.stderr.contains("drift in staging: 1 change planned, not applied"), "\(once)")
        #expect(!once.stderr.contains("canary-hook-token") && !once.stderr.contains("canary-Billing-pw"), "\(once)")
        #expect(try await w.sandbox("staging").stats().writes == 0, "drift-only wrote")
        #expect(!(await Self.corrected(w, "staging")))
        let posts = received()
        #expect(posts.count == 1, "\(posts)")
        let post = posts.first ?? ""
        #expect(post.hasPrefix("POST /services/T000/B000/canary-hook-token") && post.contains("drift found") && post.contains("staging: 1 change differ"), "\(post)")
        #expect(!post.contains("canary-Billing-pw") && !post.contains("canary-Checkout-pw"), "\(post)")
    }

    @Test func sighupStartsACycleAtOnceAndSIGTERMStopsCleanly() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let replica = try await soloReplica(w, ["--listen", "127.0.0.1:0", "--no-watch"], name: "solo")
        defer { replica.process.signal(SIGKILL) }
        #expect(await w.sandbox("staging").credentials().count == 2)
        try await Self.drift(w, "staging")
        replica.process.signal(SIGHUP)
        let corrected = await Self.waitFor(.seconds(30)) { await Self.corrected(w, "staging") }
        #expect(corrected != nil && replica.said("cycle started early"), "\(replica.lines)")
        await stopCleanly(replica)
    }

    @Test func aChangedManifestStartsACycle() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let replica = try await soloReplica(w, ["--listen", ""], name: "watcher")
        defer { replica.process.signal(SIGKILL) }
        // A git pull (or a git-sync swap) adds a credential: applied without waiting the hour.
        w.manifest("payments.yaml", Manifests.payments(extraCredentials: """
              - username: late-arrival
                fullName: Late Arrival
                email: late@example.com
                password: { fromEnv: BILLING_PASSWORD }
                roleNameList: [API_USER]

            """, productionOverride: false))
        let created = await Self.waitFor(.seconds(30)) { await w.sandbox("staging").credentials()["late-arrival"] != nil }
        #expect(created != nil && replica.lines.contains { $0["reason"] as? String == "a watched file changed" }, "\(replica.lines.suffix(5))")
        await stopCleanly(replica)
    }

    /// A server's words reach the webhook as text, never as Slack markup (no channel ping, no
    /// disguised link).
    @Test func aHostileServerMessageReachesTheWebhookEscaped() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let hostile = try RawHTTPServer { _ in
            RawHTTPServer.answer(status: 500, body: Data(#"{"error":"<!channel> token revoked: <https://evil.example/login|sign in again>"}"#.utf8))
        }
        defer { hostile.stop() }
        w.environment("staging", "provider: apinizer\nurl: \(hostile.url)\nauth: { bearer: { fromEnv: CREDOPS_TOKEN } }\nretry: { maxRetries: 0 }\n")
        let (hook, received) = try webhookReceiver()
        defer { hook.stop() }
        w.variables["HOOK_URL"] = hook.url + "/hook"
        let once = await w.run(["reconcile", "manifests", "--once", "--listen", "", "--webhook-url-env", "HOOK_URL", "--log-format", "text"])
        #expect(once.exitCode == 1, "\(once)")
        let post = received().first ?? ""
        #expect(post.contains("cycle failed") && post.contains("&lt;!channel&gt;"), "\(post)")
        #expect(!post.contains("<!channel>") && !post.contains("<https://evil"), "\(post)")
    }

    /// A guard rail that refuses one environment does not stop the others, and is reported as
    /// that environment's failure.
    @Test func aRefusedEnvironmentDoesNotStopTheOthers() async throws {
        let w = try await workspace(["staging", "production"])
        defer { Task { await w.stop() } }
        #expect(await w.run(["apply", "manifests", "--auto-approve"]).exitCode == 0)
        w.dir.write("policies/careful.yaml", "apiVersion: credops/v1\nkind: Policies\npolicies:\n  - { name: careful, environments: [staging], maxDeletes: 0 }\n")
        // billing-bot goes (a delete in each environment); checkout-service changes (an update).
        w.manifest("payments.yaml", Manifests.payments(checkoutEmail: "checkout-new@example.com", includeBilling: false, productionOverride: false))
        let once = await w.run(["reconcile", "manifests", "--once", "--listen", "", "--log-format", "text"])
        #expect(once.exitCode == 1, "\(once)")
        #expect(once.stderr.contains("cycle failed in staging") && once.stderr.contains("more than policy careful allows"), "\(once)")
        #expect(await w.sandbox("production").credentials()["billing-bot"] == nil, "production was not applied")
        #expect(await w.sandbox("production").credentials()["checkout-service"]?.email == "checkout-new@example.com")
        #expect(await w.sandbox("staging").credentials()["billing-bot"] != nil, "staging was applied despite its refusal")
    }

    /// Deployments with different leadership names on one state run side by side; a cycle of
    /// one is not blocked by the other's leader.
    @Test func twoDeploymentsWithTheirOwnLeadershipRunSideBySide() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let applier = try await soloReplica(w, ["--listen", "", "--no-watch"], name: "applier")
        defer { applier.process.signal(SIGKILL) }
        let reporter = await w.run(["reconcile", "manifests", "--once", "--drift-only", "--leader-name", "drift-report", "--listen", "", "--log-format", "text"])
        #expect(reporter.exitCode == 0 && reporter.stderr.contains("cycle finished"), "\(reporter)")
    }

    /// A metrics port already taken stops the service (exit 1) instead of leaving a reconciler
    /// that keeps leadership while every cycle is cancelled.
    @Test func aListenerThatCannotBindStopsTheService() async throws {
        let w = try await workspace(["staging"])
        defer { Task { await w.stop() } }
        let taken = try RawHTTPServer { _ in RawHTTPServer.answer(status: 200) }
        defer { taken.stop() }
        let replica = try Replica(w, ["manifests", "--every", "1h", "--leader-check", "1s", "--listen", "127.0.0.1:\(taken.port)", "--no-watch"], name: "bind")
        defer { replica.process.signal(SIGKILL) }
        #expect(await replica.process.wait(timeout: .seconds(60)) == 1, "\(replica.lines.suffix(5))")
        #expect(replica.said("stopped:"), "\(replica.lines.suffix(5))")
    }
}
