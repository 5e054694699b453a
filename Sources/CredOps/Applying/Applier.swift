import Foundation

/// Who runs an apply, for the state history and locks.
public struct RunInfo: Sendable {
    public var runID: String
    public var command: String
    public var user: String
    public var host: String
    public var pid: Int32

    public init(runID: String, command: String, user: String, host: String, pid: Int32) {
        self.runID = runID
        self.command = command
        self.user = user
        self.host = host
        self.pid = pid
    }

    /// A short random id (8 hex digits), enough to name a run in messages and unlock commands.
    public static func newID() -> String {
        String(format: "%08x", UInt32.random(in: 0...UInt32.max))
    }
}

/// Progress of an apply, for the CLI to show as it happens.
public enum ApplyEvent: Sendable {
    case environmentStarted(EnvironmentName, operations: Int)
    case operationFinished(EnvironmentName, OperationResult, done: Int, total: Int)
    case environmentFinished(EnvironmentReport)
}

/// Executes a plan: environments at the same time, inside each at most `concurrency`
/// credentials worked on at once, each credential's steps in order (create → password →
/// grants), deletes last. State is written after every successful operation.
public struct Applier: Sendable {
    public let store: any StateStore
    public let run: RunInfo
    /// Checked before each operation starts: true once the user asked to stop (Ctrl-C).
    public let shouldStop: @Sendable () -> Bool
    private let events: @Sendable (ApplyEvent) -> Void
    /// Words an environment's outcome for the state history (the engine writes no prose; the
    /// CLI passes the renderer's wording). The result is redacted before it is stored.
    private let describe: @Sendable (EnvironmentReport) -> String

    public init(store: any StateStore, run: RunInfo, shouldStop: @escaping @Sendable () -> Bool = { false },
                events: @escaping @Sendable (ApplyEvent) -> Void = { _ in },
                describe: @escaping @Sendable (EnvironmentReport) -> String) {
        self.store = store
        self.run = run
        self.shouldStop = shouldStop
        self.events = events
        self.describe = describe
    }

    public func apply(_ plan: Plan, prepared: [EnvironmentName: PreparedEnvironment], schemas: [String: ResourceSchema]) async -> ApplyReport {
        let reports = await withTaskGroup(of: EnvironmentReport.self) { group in
            for envPlan in plan.environments {
                group.addTask {
                    let environment = prepared[envPlan.environment]
                    // On the HTTP client's own thread: no thread hand-off per request.
                    let report = await withTaskExecutorPreference(environment?.http?.taskExecutor) {
                        await self.applyEnvironment(envPlan, prepared: environment, schema: schemas[envPlan.provider])
                    }
                    self.events(.environmentFinished(report))
                    return report
                }
            }
            var collected: [EnvironmentReport] = []
            for await report in group { collected.append(report) }
            return collected
        }
        return ApplyReport(runID: run.runID, environments: reports.sorted { $0.environmentName < $1.environmentName })
    }

    private func applyEnvironment(_ plan: EnvironmentPlan, prepared: PreparedEnvironment?, schema: ResourceSchema?) async -> EnvironmentReport {
        let name = plan.environment.rawValue
        // Read when needed, not now: a token fetched during the run is a secret too.
        var redactor: Redactor { prepared?.runSecrets.redactor ?? Redactor() }
        if let failure = plan.failure {
            return EnvironmentReport(environmentName: name, problem: .notPlanned(redactor.redact(failure)))
        }
        guard let prepared, let session = prepared.session, let schema else {
            return EnvironmentReport(environmentName: name, problem: .notConnected)
        }
        if !plan.refusals.isEmpty {
            return EnvironmentReport(environmentName: name, problem: .refused(plan.refusals))
        }
        var record = RunRecord(runID: run.runID, environment: plan.environment, command: run.command, user: run.user,
                               host: run.host, pid: run.pid, startedAt: Date())
        do {
            try await store.beginRun(record)
            try await settle(prepared)
        } catch {
            return EnvironmentReport(environmentName: name, problem: .stateNotWritable(store: store.displayName, error: redactor.redact("\(error)")))
        }

        let managed = ManagedRecords(prepared.managed)
        var setup = EnvironmentWorker(environment: plan.environment, session: session, store: store, book: prepared.book,
                                       planner: Planner(schema: schema), runID: run.runID, managed: managed,
                                       runSecrets: prepared.runSecrets, shouldStop: shouldStop)
        setup.fingerprint = prepared.fingerprint
        for project in plan.projects {
            for (key, ids) in project.namesakes { setup.namesakes[CredentialJob.groupKey(project.serverProject, key)] = Set(ids) }
        }
        // Phase 1: every credential's steps, credentials side by side; phase 2: deletes.
        let jobs = CredentialJob.group(plan.projects) { $0.action.kind != .delete }
        // Deletes of one key (a credential and those it replaced) run in order, one job each key.
        let deletes = CredentialJob.group(plan.projects) { $0.action.kind == .delete }
        // A delete starts from the record its credential's earlier steps left.
        setup.laterPhases = Set(deletes.map(\.groupKey))
        let worker = setup
        let total = plan.projects.reduce(0) { $0 + $1.changes.count }
        events(.environmentStarted(plan.environment, operations: total))
        let progress = ProgressCounter(total: total)
        let emit: @Sendable ([OperationResult]) -> Void = { results in
            for result in results {
                let done = progress.increment()
                self.events(.operationFinished(plan.environment, result, done: done, total: total))
            }
        }

        let all = jobs + deletes
        let intents = IntentSlots(worker.intents(for: all))
        do {
            try await store.recordIntents(intents.all)
        } catch {
            return EnvironmentReport(environmentName: name, problem: .intentsNotRecorded(store: store.displayName, error: redactor.redact("\(error)")))
        }
        let outcomes = OutcomeWriter(store: store, executor: prepared.http?.taskExecutor)
        let limit = Concurrently.pipelined(prepared.config.concurrency)
        func runPhase(_ range: Range<Int>) async -> [[(OperationResult, String?)]] {
            await Concurrently.map(Array(range), limit: limit) { (i: Int) -> [(OperationResult, String?)] in
                // Taken, not read: a job's intents are let go once it has run.
                let r = await worker.run(all[i], intents: intents.take(i), outcomes: outcomes)
                emit(r.map(\.0))
                return r
            }
        }
        var byJob = await runPhase(0..<jobs.count)
        byJob += await runPhase(jobs.count..<all.count)
        // Every outcome is in state before the run is reported; a write that failed makes its
        // operation a failure (the next run settles it from the intent).
        let stateFailures = await outcomes.drain()
        let finalRedactor = redactor
        var results: [OperationResult] = []
        results.reserveCapacity(total)
        for jobResults in consume byJob {
            for (result, id) in jobResults {
                var r = result
                if let id, let failure = stateFailures[id], result.status == .applied {
                    r.status = .failed
                    r.failure = .stateNotWritten(store: store.displayName, error: finalRedactor.redact(failure))
                }
                results.append(r)
            }
        }

        // Housekeeping: managed credentials gone from the server and no longer declared, and
        // replaced credentials that someone else already deleted.
        let touched = Set(all.map(\.groupKey))
        for project in plan.projects where !shouldStop() {
            for id in project.forgotten {
                try? await store.forget(environment: plan.environment, namespace: project.serverProject, key: id)
            }
            for (key, gone) in project.retiredGone {
                let index = CredentialJob.groupKey(project.serverProject, key)
                // A record this run changed was written with what it knew; leave it to the next plan.
                guard !touched.contains(index), var record = managed[project.serverProject, key] else { continue }
                record.retiring.removeAll { gone.contains($0.serverID) }
                try? await store.record(record)
            }
        }

        var report = EnvironmentReport(environmentName: name, results: results)
        report.conflicts = plan.reportedConflicts
        report.durationMilliseconds = Int(Date().timeIntervalSince(record.startedAt) * 1000)
        record.finishedAt = Date()
        record.success = report.success
        // Every line of the history is redacted as a whole, whatever its parts.
        record.message = finalRedactor.redact(describe(report))
        record.counts = report.changes.stateCounts
        record.counts.failed = results.filter { $0.status == .failed }.count
        try? await store.finishRun(record)
        return report
    }

    /// Writes what the plan settled about intents left by an interrupted run.
    public func settle(_ prepared: PreparedEnvironment) async throws {
        // Together: one transaction, not one each.
        if !prepared.repairs.isEmpty { try await store.complete(prepared.repairs.map { ($0.intent, $0.outcome) }) }
    }
}

/// The steps for one credential, in order: where its changes are in the plan, not copies of
/// them (a copy of every change of a 10,000-credential plan held 15 MB per environment).
struct CredentialJob: Sendable {
    /// Where a change is: its project's and its own index in the plan.
    struct Step: Sendable {
        var project: Int32
        var change: Int32
    }

    /// The plan's projects, shared by every job.
    let projects: [ProjectPlan]
    var steps: [Step]

    /// The changes, in order; made when the job runs.
    var changes: [Change] { steps.map { projects[Int($0.project)].changes[Int($0.change)] } }

    /// Groups the changes of `projects` that `include` takes by project and username, keeping
    /// plan order.
    static func group(_ projects: [ProjectPlan], where include: (Change) -> Bool) -> [CredentialJob] {
        var jobs: [CredentialJob] = []
        var index: [String: Int] = [:]
        for (p, project) in projects.enumerated() {
            for (c, change) in project.changes.enumerated() where include(change) {
                let step = Step(project: Int32(p), change: Int32(c))
                let key = Self.groupKey(change)
                if let i = index[key] { jobs[i].steps.append(step) } else {
                    index[key] = jobs.count
                    jobs.append(CredentialJob(projects: projects, steps: [step]))
                }
            }
        }
        return jobs
    }

    /// The project (as the server names it) and the credential, as one text.
    static func groupKey(_ project: ProjectName, _ key: CredentialKey) -> String { project.rawValue + "\u{0}" + key.rawValue }

    static func groupKey(_ change: Change) -> String { groupKey(change.serverProject, change.key) }

    /// The key every change of this job shares.
    var groupKey: String { Self.groupKey(projects[Int(steps[0].project)].changes[Int(steps[0].change)]) }
}

/// Each job's intents, handed out once: a job takes its own when it runs, and they are let go
/// after it (an apply of 10,000 credentials held 14 MB of them per environment to its end).
final class IntentSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[Intent?]]

    init(_ slots: [[Intent?]]) { self.slots = slots }

    /// Every intent of every job, in job order.
    var all: [Intent] {
        lock.withLock {
            var all: [Intent] = []
            all.reserveCapacity(slots.reduce(0) { $0 + $1.count })
            for slot in slots { for case let intent? in slot { all.append(intent) } }
            return all
        }
    }

    /// Job `index`'s intents, step by step (nil for a state-only step); empty after the first take.
    func take(_ index: Int) -> [Intent?] {
        lock.withLock {
            let taken = slots[index]
            slots[index] = []
            return taken
        }
    }
}

/// Counts finished operations across tasks.
final class ProgressCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    let total: Int

    init(total: Int) { self.total = total }

    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        return done
    }
}
