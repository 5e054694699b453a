import ApinizerSandbox
import CredOps
import CredOpsStatePostgres
import CredOpsTestSupport
import Foundation
import Testing

/// The shared PostgreSQL state with the built binary: many processes, one database, as CI
/// runners use it. Each test has a database of its own on the test server.
@Suite struct TeamStateTests {
    static let key = String(repeating: "5c", count: 32)

    /// A workspace whose runs share `url` as their state, with the team key set.
    func workspace(_ names: [String], url: String, faults: [String: SandboxFaults] = [:]) async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start(names, faults: faults)
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.variables["CREDOPS_STATE"] = url
        w.variables["CREDOPS_STATE_KEY"] = Self.key
        return w
    }

    func open(_ url: String) async throws -> PostgresStateStore {
        try await PostgresStateStore.open(try PostgresLocation(url: url, environment: [:]))
    }

    @Test func sharedStateNeedsTheTeamKeyAndNeverShowsItsPassword() async throws {
        let server = try await PostgresServer.get()
        let url = try await PostgresServer.database()
        let w = try await workspace(["staging"], url: url)
        defer { Task { await w.stop() } }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        let withoutKey = await w.run(["plan", "manifests"], variables: ["CREDOPS_STATE_KEY": ""])
        #expect(withoutKey.exitCode == 1)
        #expect("\(withoutKey)".contains("CREDOPS_STATE_KEY"), "\(withoutKey)")
        #expect(await w.sandbox("staging").credentials().isEmpty)

        // A password in the URL works and never shows, even in an error.
        let secretURL = url.replacingOccurrences(of: "postgres://credops@", with: "postgres://credops:canary-db-pw-9911@")
        let applied = await w.run(["apply", "manifests", "--auto-approve"], variables: ["CREDOPS_STATE": secretURL])
        #expect(applied.exitCode == 0, "\(applied)")
        let listed = await w.run(["state", "list"], variables: ["CREDOPS_STATE": secretURL])
        #expect(listed.exitCode == 0 && listed.stdout.contains("checkout-service"), "\(listed)")
        let wrongPort = secretURL.replacingOccurrences(of: ":\(server.port)/", with: ":1/")
        let refused = await w.run(["plan", "manifests"], variables: ["CREDOPS_STATE": wrongPort])
        #expect(refused.exitCode == 1)
        for output in [applied, listed, refused] {
            #expect(!"\(output)".contains("canary-db-pw-9911"), "\(output)")
        }
    }

    /// Four runners apply to one environment at once: one at a time holds it, the others wait
    /// naming the holder, and their runs (begin to end, as the shared history records them)
    /// never overlap.
    @Test func fourProcessesOnOneEnvironmentTakeTurnsAndNeverInterleave() async throws {
        let url = try await PostgresServer.database()
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 40
        let w = try await workspace(["staging"], url: url, faults: ["staging": faults])
        defer { Task { await w.stop() } }
        w.environment("staging", """
            provider: apinizer
            url: \(w.sandbox("staging").baseURL)
            auth: { bearer: { fromEnv: CREDOPS_TOKEN } }
            concurrency: 2
            """)
        w.manifest("many.yaml", Manifests.many(30, grants: false))
        // Each runner brings another password, so each has 30 writes to make.
        let results = await w.runAll((0..<4).map { i in
            (["apply", "manifests", "--auto-approve", "--lock-timeout", "120"], ["BILLING_PASSWORD": "runner-\(i)-password"])
        })
        for (i, result) in results.enumerated() {
            #expect(result.exitCode == 0, "runner \(i): \(result)")
        }
        let waited = results.filter { $0.stderr.contains("staging is locked, held by ") && $0.stderr.contains("credops apply") }
        #expect(waited.count >= 1, "nobody waited: \(results.map(\.stderr))")

        let store = try await open(url)
        let runs = try await store.history(environment: "staging", limit: 10).sorted { $0.startedAt < $1.startedAt }
        #expect(runs.count == 4)
        var overlaps = 0
        for (a, b) in zip(runs, runs.dropFirst()) where (a.finishedAt ?? .distantFuture) > b.startedAt { overlaps += 1 }
        #expect(overlaps == 0, "\(runs.map { ($0.startedAt, $0.finishedAt) })")
        #expect(runs.first?.counts.created == 30)
        #expect(runs.dropFirst().allSatisfy { $0.counts.secretChanged == 30 && $0.counts.created == 0 }, "\(runs.map(\.counts))")
        // Every credential holds the same runner's password: no run wrote between another's writes.
        let held = await w.sandbox("staging").credentials()
        let passwords = Set(held.values.compactMap(\.password))
        #expect(held.count == 30 && passwords.count == 1, "\(passwords.count) different passwords")
        #expect(passwords.isSubset(of: Set((0..<4).map { "runner-\($0)-password" })))
        #expect(try await store.locks().isEmpty)
        await store.close()
        print("FIGURE team lock: 4 processes on one environment, \(waited.count) waited naming the holder, \(overlaps) overlapping runs, \(held.count) credentials")
    }

    /// Fifty runners start on a fresh database at once (each migrating the schema and applying
    /// its own environment): every one succeeds.
    @Test func fiftyFirstRunsOnDifferentEnvironmentsAllSucceed() async throws {
        let url = try await PostgresServer.database()
        let w = try await workspace([], url: url)
        defer { Task { await w.stop() } }
        let names = (0..<50).map { "env-\($0)" }
        for name in names { w.environment(name, Self.sandboxEnvironment(name)) }
        w.manifest("many.yaml", Manifests.many(3, grants: false))
        let clock = ContinuousClock()
        let start = clock.now
        let results = Array(zip(names, await w.runAll(names.map { (["apply", "manifests", "-e", $0, "--auto-approve"], [:]) })))
        let took = start.duration(to: clock.now)
        let failed = results.filter { $0.1.exitCode != 0 }
        #expect(failed.isEmpty, "\(failed.count) failed; first: \(failed.first.map { "\($0.0): \($0.1)" } ?? "")")
        let store = try await open(url)
        #expect(try await store.environments().count == 50)
        for name in names.prefix(5) {
            #expect(try await store.managedCredentials(environment: EnvironmentName(name)).count == 3)
        }
        await store.close()
        print("FIGURE team first runs: 50 processes on 50 environments against one new database, \(failed.count) errors, \(took)")
    }

    /// A runner killed while it holds the lock loses it with its connection: the next run
    /// gets it at once and converges.
    @Test func killedHoldersLockIsFreeForTheNextRunWithinSeconds() async throws {
        let url = try await PostgresServer.database()
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 50
        let w = try await workspace(["staging"], url: url, faults: ["staging": faults])
        defer { Task { await w.stop() } }
        w.manifest("many.yaml", Manifests.many(40, grants: false))
        let holder = try w.spawn(["apply", "manifests", "--auto-approve"])
        let store = try await open(url)
        var locked = false
        for _ in 0..<300 where !locked {
            locked = (try? await store.locks())?.isEmpty == false
            if !locked { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(locked, "the first apply never took the lock")
        let clock = ContinuousClock()
        holder.signal(SIGKILL)
        let killed = clock.now
        _ = await holder.wait(timeout: .seconds(10))
        // The next run starts at once and may wait at most 5 s for the lock; meanwhile the
        // time until PostgreSQL let go of the lock is measured for the figure.
        async let next = w.run(["apply", "manifests", "--auto-approve", "--lock-timeout", "5"])
        var free = false
        while !free && killed.duration(to: clock.now) < .seconds(60) {
            free = await store.isLockFree("staging")
            if !free, let current = try? await store.locks().first, current.pid != holder.pid { free = true }
            if !free { try await Task.sleep(for: .milliseconds(20)) }
        }
        let freedAfter = killed.duration(to: clock.now)
        let result = await next
        #expect(result.exitCode == 0, "\(result)")
        #expect(await w.sandbox("staging").credentials().count == 40)
        #expect(try await store.pendingIntents(environment: "staging").isEmpty)
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        await store.close()
        print("FIGURE team kill: the killed holder's lock was free \(freedAfter) after SIGKILL; the next run (lock timeout 5 s) converged")
    }

    /// Ten thousand lock/unlock cycles (eight environments side by side, through two stores as
    /// two runners) leave no advisory lock and no lock row behind.
    @Test func tenThousandLockCyclesLeaveNoAdvisoryLockBehind() async throws {
        let server = try await PostgresServer.get()
        let url = try await PostgresServer.database()
        let database = try #require(url.split(separator: "/").last?.split(separator: "?").first.map(String.init))
        let stores = [try await open(url), try await open(url)]
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for e in 0..<8 {
                group.addTask {
                    for i in 0..<1250 {
                        let store = stores[i % 2]
                        let info = LockInfo(environment: EnvironmentName("env-\(e)"), lockID: "l\(e)-\(i)", user: "ci", host: "runner",
                                            pid: 1, command: "credops apply", since: Date())
                        try await store.acquireLock(info, timeout: .seconds(30), shouldStop: { false })
                        await store.releaseLock(environment: info.environment)
                    }
                }
            }
            try await group.waitForAll()
        }
        let took = start.duration(to: clock.now)
        let held = try await offCooperativePool {
            try server.psql("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                            + "WHERE l.locktype = 'advisory' AND d.datname = '\(database)'", database: database)
        }
        #expect(held.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try await stores[0].locks().isEmpty)
        for store in stores { await store.close() }
        print("FIGURE team locks: 10,000 lock/unlock cycles in \(took), \(held.trimmingCharacters(in: .whitespacesAndNewlines)) advisory locks left")
    }

    /// A local state moved into the shared one: with the key file's key as the team key, the
    /// next plan through the shared state has nothing to do.
    @Test func localStateMigratedIntoTheSharedOneKeepsEverything() async throws {
        let url = try await PostgresServer.database()
        let w = try await workspace(["staging"], url: url)
        defer { Task { await w.stop() } }
        w.manifest("payments.yaml", Manifests.payments(productionOverride: false))
        let local = ["CREDOPS_STATE": "sqlite:.credops/state.db", "CREDOPS_STATE_KEY": ""]
        let applied = await w.run(["apply", "manifests", "--auto-approve"], variables: local)
        #expect(applied.exitCode == 0, "\(applied)")

        let warned = await w.run(["state", "migrate", "--from", "sqlite:.credops/state.db", "--to", url], variables: ["CREDOPS_STATE_KEY": ""])
        #expect(warned.exitCode == 0, "\(warned)")
        #expect(warned.stderr.contains("need that key in CREDOPS_STATE_KEY"), "\(warned)")
        #expect(warned.stdout.contains("Copied 1 environment") && warned.stdout.contains("2 managed credentials"), "\(warned)")
        let again = await w.run(["state", "migrate", "--from", "sqlite:.credops/state.db", "--to", url])
        #expect(again.exitCode == 1 && again.stderr.contains("already holds staging"), "\(again)")

        let keyFile = try #require(StateKey.localKeyFile(statePath: w.dir.url(".credops/state.db"), environment: ["HOME": w.dir.path]))
        let keyBytes = try Data(contentsOf: URL(fileURLWithPath: keyFile))
        let key = keyBytes.map { String(format: "%02x", $0) }.joined()
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"], variables: ["CREDOPS_STATE_KEY": key])
        #expect(plan.exitCode == 0, "\(plan)")
        // With another key the fingerprints no longer match: every password is planned again.
        let otherKey = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(otherKey.exitCode == 2 && otherKey.stdout.contains("password"), "\(otherKey)")
        let listed = await w.run(["state", "list"], variables: ["CREDOPS_STATE_KEY": key])
        #expect(listed.stdout.contains("checkout-service") && listed.stdout.contains("billing-bot"), "\(listed)")
    }

    /// sslmode as libpq reads it: verify-full checks the chain and the name against
    /// sslrootcert, require encrypts without checking, and a certificate nobody vouches for is
    /// refused with a message that says so.
    @Test func tlsModesAreHonoured() async throws {
        let server = try await PostgresServer.get()
        let ca = try #require(server.caFile, "openssl is missing: the test server runs without TLS")
        let plain = try await PostgresServer.database()
        let base = String(plain.prefix { $0 != "?" })
        let database = String(base.split(separator: "/").last ?? "")
        func encryptedSessions() async throws -> String {
            try await offCooperativePool {
                try server.psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '\(database)' AND s.ssl")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        for mode in ["verify-full&sslrootcert=\(ca)", "verify-ca&sslrootcert=\(ca)", "require"] {
            let store = try await open(base + "?sslmode=" + mode)
            try await store.record(ManagedCredential(environment: "e", namespace: "p", key: "u", secretFingerprint: nil, grants: [],
                                                     lastAction: "adopt", lastRunID: "r", lastChangedAt: Date()))
            #expect(try await encryptedSessions() != "0", "sslmode=\(mode) did not encrypt")
            await store.close()
        }
        do {
            let store = try await open(base + "?sslmode=verify-full")
            await store.close()
            Issue.record("a self-signed certificate was trusted without sslrootcert")
        } catch {
            #expect("\(error)".lowercased().contains("certificate"), "\(error)")
        }
        #expect(throws: PostgresLocation.Failure.self) { try PostgresLocation(url: base + "?sslmode=sometimes", environment: [:]) }
        #expect(throws: PostgresLocation.Failure.self) { try PostgresLocation(url: base + "?sslcert=x.pem", environment: [:]) }
    }

    /// A built-in sandbox environment with the catalog `Manifests` use.
    static func sandboxEnvironment(_ name: String) -> String {
        """
        provider: apinizer
        url: sandbox://\(name)
        concurrency: 8
        sandbox:
          projects: [payments]
          roles: [API_USER, DEVELOPER]
          apiProxies: [PaymentAPI]
          apiProxyGroups: [PaymentAPIGroup]
          gateways: [gw]
        """
    }
}
