import ApinizerSandbox
import CredOps
import CredOpsStateSQLite
import CredOpsTestSupport
import Foundation
import Testing

/// Faults injected for real: the sandbox's fault injection, signals to the real binary,
/// concurrent processes. Each test prints the figures it shows (FIGURE lines).
@Suite struct ResilienceTests {
    func workspace(_ faults: SandboxFaults = SandboxFaults(), concurrency: Int = 8, extra: String = "") async throws -> E2EWorkspace {
        let w = try await E2EWorkspace.start(["staging"], faults: ["staging": faults], extra: ["staging": extra])
        for (k, v) in Manifests.passwords { w.variables[k] = v }
        w.environment("staging", """
            provider: apinizer
            url: \(w.sandbox("staging").baseURL)
            auth: { bearer: { fromEnv: CREDOPS_TOKEN } }
            concurrency: \(concurrency)
            timeoutSeconds: 10
            \(extra)
            """)
        return w
    }

    /// Every declared credential exists once, with its grant, and the state manages each of them.
    func expectConverged(_ w: E2EWorkspace, count: Int, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
        let held = await w.sandbox("staging").credentials()
        #expect(held.count == count, sourceLocation: sourceLocation)
        #expect(held.values.allSatisfy { $0.access == [SandboxAccess(name: "PaymentAPI", type: "API_PROXY")] }, sourceLocation: sourceLocation)
        let store = try await SQLiteStateStore.open(path: w.dir.url(".credops/state.db"))
        #expect(try await store.managedCredentials(environment: "staging").count == count, sourceLocation: sourceLocation)
        #expect(try await store.pendingIntents(environment: "staging").isEmpty, sourceLocation: sourceLocation)
        await store.close()
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)", sourceLocation: sourceLocation)
    }

    @Test func applyConvergesUnderErrorsDropsLostAnswersAndRateLimits() async throws {
        var faults = SandboxFaults()
        faults.errorRate = 0.2
        faults.dropRate = 0.05
        faults.commitThenFailRate = 0.1
        faults.rateLimit = SandboxFaults.RateLimit(requestsPerSecond: 400, retryAfterSeconds: 1)
        faults.randomSeed = 42
        let w = try await workspace(faults)
        defer { Task { await w.stop() } }
        w.manifest("many.yaml", Manifests.many(300))

        var runs = 0
        var exit: Int32 = -1
        while exit != 0 && runs < 4 {
            runs += 1
            let result = await w.run(["apply", "manifests", "--auto-approve", "--report", "report\(runs).json"])
            exit = result.exitCode
            if exit != 0, let entry = (try? w.report("report\(runs).json")).flatMap({ E2EWorkspace.environmentResults($0).first }) {
                // What made this run fail, so that a run that needed another is explained.
                let failed = (entry["operations"] as? [[String: Any]] ?? []).filter { $0["success"] as? Bool == false }
                print("FIGURE faults run \(runs): exit \(exit), \(entry["message"] ?? "?"); \(failed.count) failed: "
                      + failed.prefix(5).map { "\($0["username"] ?? "?") \($0["action"] ?? "?"): \($0["error"] ?? $0["message"] ?? "?")" }.joined(separator: "; "))
            }
            // What the report says was created and granted is what the server holds (first run).
            if runs == 1 {
                let held = await w.sandbox("staging").credentials()
                let entry = try #require(E2EWorkspace.environmentResults(try w.report("report1.json")).first)
                let changes = try #require(entry["changes"] as? [String: Int])
                let failedCreates = (entry["operations"] as? [[String: Any]] ?? []).filter {
                    $0["action"] as? String == "create" && $0["success"] as? Bool == false
                }.count
                #expect(changes["created"]! + failedCreates >= held.count)
                #expect(changes["created"]! <= held.count)
                #expect(changes["granted"]! <= held.values.filter { !$0.access.isEmpty }.count)
            }
        }
        // One or two runs on a quiet machine (the FIGURE lines); a third only when a loaded
        // machine lets requests time out as well, so the bound leaves room for that.
        #expect(runs <= 3, "took \(runs) runs")
        let stats = try await w.sandbox("staging").stats()
        await w.sandbox("staging").setFaults(SandboxFaults())
        try await expectConverged(w, count: 300)
        // Beyond the minimum: a list per run and per read-back of a lost create, the access
        // lists a second run's plan reads, and retries (re-sent creates among them).
        let lists = stats.byRoute["GET /apiops/projects/{project}/credentials/"] ?? 0
        let accessReads = stats.byRoute["GET /apiops/projects/{project}/credentials/{username}/access/"] ?? 0
        let retries = stats.total - 601 - (lists - 1) - accessReads
        print("FIGURE faults(300 credentials, 20% 500, 5% drop, 10% commit-then-502, 429 over 400/s): runs=\(runs) requests=\(stats.total) writes=\(stats.writes) minimum=601 (1 list + 300 creates + 300 grants); lists \(lists) (runs and read-backs), access reads \(accessReads), retries and re-sent creates \(retries)")
    }

    @Test func sigkillAtRandomPointsLosesNothingAndTheNextApplyConverges() async throws {
        // 1,000 changes (a create and a grant each) at 10 ms and 4 in flight: about 2.5 s of
        // writes, so that every kill lands in the middle of an apply.
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 10
        for trial in 0..<2 {
            let w = try await workspace(faults, concurrency: 4)
            w.manifest("many.yaml", Manifests.many(500))
            var generator = SplitMix64(seed: UInt64(trial + 7))
            var kills = 0
            var progress: [Int] = []
            for _ in 0..<10 {
                // The kill comes at a random point after this run's first write reached the
                // server, not after a fixed delay: on a loaded machine a fixed delay often
                // killed a run still starting up.
                let writesBefore = try await w.sandbox("staging").stats().writes
                let child = try w.spawn(["apply", "manifests", "--auto-approve"])
                let clock = ContinuousClock()
                let spawned = clock.now
                while try await w.sandbox("staging").stats().writes == writesBefore, spawned.duration(to: clock.now) < .seconds(30) {
                    try await Task.sleep(for: .milliseconds(5))
                }
                try await Task.sleep(for: .milliseconds(Int(generator.next() % 300)))
                child.signal(SIGKILL)
                let code = await child.wait(timeout: .seconds(10))
                if code == 128 + SIGKILL { kills += 1 }
                progress.append(await w.sandbox("staging").credentials().count)
            }
            // The kills must land mid-apply for the test to mean anything.
            #expect(kills == 10 && (progress.last ?? 500) < 500, "kills \(kills), progress \(progress)")
            let before = progress.last ?? 0
            let final = await w.run(["apply", "manifests", "--auto-approve"])
            #expect(final.exitCode == 0, "\(final)")
            try await expectConverged(w, count: 500)
            let stats = try await w.sandbox("staging").stats()
            print("FIGURE sigkill trial \(trial): \(kills) kills mid-apply; credentials after each kill \(progress); \(before)/500 before the converging run; total writes \(stats.writes) (minimum 1000)")
            await w.stop()
        }
    }

    @Test func firstInterruptFinishesInFlightWorkWritesTheReportAndExits130() async throws {
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 20
        let w = try await workspace(faults, concurrency: 4)
        defer { Task { await w.stop() } }
        w.manifest("many.yaml", Manifests.many(200))
        let child = try w.spawn(["apply", "manifests", "--auto-approve", "--report", "report.json"])
        // Interrupt once writes are under way (before that, Ctrl-C simply ends a run that changed nothing).
        for _ in 0..<400 where await w.sandbox("staging").credentials().count < 10 { try await Task.sleep(for: .milliseconds(25)) }
        let signalled = ContinuousClock.now
        child.signal(SIGINT)
        let code = await child.wait(timeout: .seconds(30))
        let took = ContinuousClock.now - signalled
        #expect(code == 130)
        #expect(took < .seconds(30), "exit took \(took)")
        let entry = try #require(E2EWorkspace.environmentResults(try w.report()).first)
        let operations = entry["operations"] as? [[String: Any]] ?? []
        let skipped = operations.filter { $0["status"] as? String == "skipped" }.count
        let applied = operations.filter { $0["status"] as? String == "applied" }.count
        #expect(skipped > 0 && applied > 0, "applied \(applied), skipped \(skipped)")
        #expect(entry["success"] as? Bool == false)
        let rerun = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(rerun.exitCode == 0, "\(rerun)")
        try await expectConverged(w, count: 200)
        print("FIGURE sigint: exit 130 after \(took); \(applied) applied, \(skipped) skipped; the re-run converged")
    }

    @Test func secondApplyOnALockedEnvironmentFailsNamingTheHolder() async throws {
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 50
        let w = try await workspace(faults, concurrency: 2)
        defer { Task { await w.stop() } }
        w.manifest("many.yaml", Manifests.many(40))
        let first = try w.spawn(["apply", "manifests", "--auto-approve"])
        try await waitForLock(w)
        let second = await w.run(["apply", "manifests", "--auto-approve", "--lock-timeout", "1"])
        #expect(second.exitCode == 1)
        #expect(second.stdout.contains("staging is locked by") && second.stdout.contains("pid \(first.pid)"), "\(second)")
        #expect(second.stdout.contains("credops state unlock -e staging --id "))
        #expect(await first.wait(timeout: .seconds(60)) == 0)
        try await expectConverged(w, count: 40)
    }

    @Test func killedHoldersLockIsFreeForTheNextRun() async throws {
        var faults = SandboxFaults()
        faults.latencyMilliseconds = 50
        let w = try await workspace(faults, concurrency: 2)
        defer { Task { await w.stop() } }
        w.manifest("many.yaml", Manifests.many(40))
        let holder = try w.spawn(["apply", "manifests", "--auto-approve"])
        try await waitForLock(w)
        holder.signal(SIGKILL)
        _ = await holder.wait(timeout: .seconds(10))
        // The OS released the file lock with the process: the next run takes it without waiting.
        let next = await w.run(["apply", "manifests", "--auto-approve", "--lock-timeout", "5"])
        #expect(next.exitCode == 0, "\(next)")
        #expect(!next.stderr.contains("is locked"), "\(next)")
        try await expectConverged(w, count: 40)
    }

    @Test func forceUnlockNeedsTheExactIdAndFencesTheOldHolder() async throws {
        let dir = TemporaryDirectory()
        let path = dir.url(".credops/state.db")
        let holder = try await SQLiteStateStore.open(path: path)
        let info = LockInfo(environment: "staging", lockID: "abc123", user: "ci", host: "runner", pid: 1, command: "credops apply", since: Date())
        try await holder.acquireLock(info, timeout: .seconds(1), shouldStop: { false })
        let other = try await SQLiteStateStore.open(path: path)
        await #expect(throws: StateError.self) { try await other.forceUnlock(environment: "staging", lockID: "abc") }
        try await other.forceUnlock(environment: "staging", lockID: "abc123")
        let record = ManagedCredential(environment: "staging", namespace: "p", key: "u", secretFingerprint: nil, grants: [],
                                       lastAction: "create", lastRunID: "r", lastChangedAt: Date())
        await #expect(throws: StateError.self) { try await holder.record(record) }
        // A new run takes the lock at once (the old holder still holds its flock on the removed file).
        let next = LockInfo(environment: "staging", lockID: "def456", user: "ci", host: "runner", pid: 2, command: "credops apply", since: Date())
        try await other.acquireLock(next, timeout: .seconds(1), shouldStop: { false })
        try await other.record(record)
        await other.close()
        await holder.close()
    }

    @Test func hugeRetryAfterIsCappedBySettings() async throws {
        var faults = SandboxFaults()
        faults.rateLimit = SandboxFaults.RateLimit(requestsPerSecond: 5, retryAfterSeconds: 3600)
        let w = try await workspace(faults, concurrency: 4, extra: "retry: { retryAfterCapSeconds: 1 }")
        defer { Task { await w.stop() } }
        w.manifest("many.yaml", Manifests.many(10, grants: false))
        let start = ContinuousClock.now
        let result = await w.run(["apply", "manifests", "--auto-approve"])
        let took = ContinuousClock.now - start
        #expect(took < .seconds(60), "a Retry-After of an hour was not capped")
        let stats = try await w.sandbox("staging").stats()
        print("FIGURE retry-after 3600 capped at 1 s: exit \(result.exitCode) in \(took), \(stats.total) requests for 11 needed")
    }

    @Test func serverThatNeverAnswersIsAbandonedAtTheDeadline() async throws {
        var faults = SandboxFaults()
        faults.hang = true
        let w = try await workspace(faults, extra: "")
        defer { Task { await w.stop() } }
        w.environment("staging", """
            provider: apinizer
            url: \(w.sandbox("staging").baseURL)
            auth: { bearer: { fromEnv: CREDOPS_TOKEN } }
            timeoutSeconds: 1
            retry: { maxRetries: 1, initialBackoffMilliseconds: 10 }
            """)
        w.manifest("many.yaml", Manifests.many(3))
        let start = ContinuousClock.now
        let result = await w.run(["plan", "manifests"])
        let took = ContinuousClock.now - start
        #expect(result.exitCode == 1)
        #expect(result.stdout.contains("no complete answer from 127.0.0.1:") && result.stdout.contains("within 1 s"), "\(result)")
        #expect(took < .seconds(60))
        print("FIGURE hang: abandoned after \(took) (timeout 1 s, 1 retry)")
    }

    private func waitForLock(_ w: E2EWorkspace) async throws {
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: w.dir.url(".credops/state.db")),
               let store = try? await SQLiteStateStore.open(path: w.dir.url(".credops/state.db")) {
                let held = (try? await store.locks())?.isEmpty == false
                await store.close()
                if held { return }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the first apply never took the lock")
    }
}
