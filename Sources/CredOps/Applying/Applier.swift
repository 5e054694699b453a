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
    /// Jobs whose intents are recorded together (see `IntentFeed`); smaller in tests.
    var intentChunkSize = IntentFeed.chunkSize

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
        let all = jobs + deletes
        // Intents are recorded a chunk of jobs ahead of the jobs (see `IntentFeed`).
        let feed = IntentFeed(jobs: all, chunkSize: intentChunkSize)
        setup.intentFailure = { feed.failure }
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

        // A first chunk that cannot be recorded stops the environment before anything is
        // sent, as the whole set did when it was recorded at once.
        let store = store, shouldStop = shouldStop
        let recorder = Task(executorPreference: prepared.http?.taskExecutor) {
            await feed.record(worker: worker, store: store, shouldStop: shouldStop, redact: { redactor.redact($0) })
        }
        if let failure = await feed.firstChunk() {
            await recorder.value
            return EnvironmentReport(environmentName: name, problem: .intentsNotRecorded(store: store.displayName, error: failure))
        }
        let outcomes = OutcomeWriter(store: store, executor: prepared.http?.taskExecutor)
        let limit = Concurrently.pipelined(prepared.config.concurrency)
        func runPhase(_ range: Range<Int>) async -> [[(OperationResult, String?)]] {
            await Concurrently.map(Array(range), limit: limit) { (i: Int) -> [(OperationResult, String?)] in
                // Taken, not read: a job's intents are let go once it has run.
                let r: [(OperationResult, String?)]
                switch await feed.take(i) {
                case .intents(let intents):
                    r = await worker.run(all[i], intents: intents, outcomes: outcomes)
                case .notRecorded(let failure):
                    r = worker.skipped(all[i], because: shouldStop() ? .interrupted : .stateNotWritable(failure))
                }
                emit(r.map(\.0))
                return r
            }
        }
        var byJob = await runPhase(0..<jobs.count)
        byJob += await runPhase(jobs.count..<all.count)
        await recorder.value
        // Every outcome is in state before the run is reported; a write that failed makes its
        // operation a failure (the next run settles it from the intent).
        let stateFailures = await outcomes.drain()
        let finalRedactor = redactor
        var results: [OperationResult] = []
        results.reserveCapacity(total)
        // Each job's results are let go as they are copied: the two lists never both hold all.
        for i in byJob.indices {
            for (result, id) in byJob[i] {
                var r = result
                if let id, let failure = stateFailures[id], result.status == .applied {
                    r.status = .failed
                    r.failure = .stateNotWritten(store: store.displayName, error: finalRedactor.redact(failure))
                }
                results.append(r)
            }
            byJob[i] = []
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

/// The intents of an apply's jobs, made and recorded a chunk of jobs at a time, ahead of the
/// jobs that need them: a job starts only once its own intents are durable, and the intents
/// of the jobs that have not started yet stay few (all of them, made and recorded at once,
/// held 15 MB per environment of 10,000 credentials, and their encoding for PostgreSQL 20 MB
/// more for a moment).
///
/// The recorder records a chunk once the jobs have started on the one two before it, so at
/// most two chunks of intents wait for their jobs. A chunk that cannot be recorded stops the
/// feed: its jobs, and all later ones, are never sent, and jobs already given their intents
/// send nothing more either (`failure`).
///
/// Invariant: every `var` is touched only with `lock` held.
final class IntentFeed: @unchecked Sendable {
    /// Jobs per chunk: one transaction each.
    static let chunkSize = 1000

    enum Take {
        case intents([Intent?])
        /// The job's intents were not recorded (the store's error, redacted): it must not run.
        case notRecorded(String)
    }

    private let lock = NSLock()
    private let jobs: [CredentialJob]
    private let chunkSize: Int
    private var slots: [[Intent?]] = []
    /// Jobs below this index have durable intents in `slots` (or had, until taken).
    private var recorded = 0
    /// One more than the highest job index asked for.
    private var asked = 0
    private var failed: String?
    private var waiting: [(index: Int, continuation: CheckedContinuation<Take, Never>)] = []
    private var recorderWaits: CheckedContinuation<Void, Never>?
    /// How many jobs must have asked before the waiting recorder goes on.
    private var recorderThreshold = 0
    private var firstWaiters: [CheckedContinuation<String?, Never>] = []

    /// Why a chunk could not be recorded, once one could not: no later job runs.
    var failure: String? { lock.withLock { failed } }

    init(jobs: [CredentialJob], chunkSize: Int = IntentFeed.chunkSize) {
        self.jobs = jobs
        self.chunkSize = max(1, chunkSize)
        slots = Array(repeating: [], count: jobs.count)
    }

    /// Makes and records the intents chunk by chunk, each once the jobs have reached the one
    /// before it; returns after the last chunk, or the first that failed. `redact` words a
    /// store's error for the report.
    func record(worker: EnvironmentWorker, store: any StateStore, shouldStop: @Sendable () -> Bool,
                redact: (String) -> String) async {
        // One draw of the system's generator (a system call) for the whole apply.
        var next = UInt64.random(in: .min ... .max)
        var start = 0
        while start < jobs.count {
            await waitForJobs(reaching: max(0, start - chunkSize))
            let range = start..<min(jobs.count, start + chunkSize)
            var made: [[Intent?]] = []
            let problem: String?
            if start > 0 && shouldStop() {
                // Stopping: jobs not started yet will be skipped; their intents need not exist.
                problem = "the run was stopped"
            } else {
                made = worker.intents(for: jobs[range], next: &next)
                var flat: [Intent] = []
                flat.reserveCapacity(made.reduce(0) { $0 + $1.count })
                for slot in made { for case let intent? in slot { flat.append(intent) } }
                do {
                    try await store.recordIntents(flat)
                    problem = nil
                } catch {
                    problem = redact("\(error)")
                }
            }
            let (ready, first) = lock.withLock { () -> ([(CheckedContinuation<Take, Never>, Take)], [CheckedContinuation<String?, Never>]) in
                if let problem {
                    failed = problem
                } else {
                    for (offset, slot) in made.enumerated() { slots[range.lowerBound + offset] = slot }
                    recorded = range.upperBound
                }
                defer { firstWaiters = [] }
                return (takeReadyLocked(), firstWaiters)
            }
            for (continuation, take) in ready { continuation.resume(returning: take) }
            for continuation in first { continuation.resume(returning: problem) }
            if problem != nil { return }
            start = range.upperBound
        }
    }

    /// Job `index`'s intents, once recorded; each job's are handed out once, and let go after.
    func take(_ index: Int) async -> Take {
        await withCheckedContinuation { (continuation: CheckedContinuation<Take, Never>) in
            let (now, recorder) = lock.withLock { () -> (Take?, CheckedContinuation<Void, Never>?) in
                asked = max(asked, index + 1)
                // The recorder is woken only once the jobs reached what it waits for.
                var recorder: CheckedContinuation<Void, Never>?
                if asked >= recorderThreshold {
                    recorder = recorderWaits
                    recorderWaits = nil
                }
                if let now = takeLocked(index) { return (now, recorder) }
                waiting.append((index, continuation))
                return (nil, recorder)
            }
            recorder?.resume()
            if let now { continuation.resume(returning: now) }
        }
    }

    /// The first chunk's fate: nil once it is recorded, else the store's error.
    func firstChunk() async -> String? {
        guard !jobs.isEmpty else { return nil }
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            let now = lock.withLock { () -> String?? in
                if recorded > 0 { return .some(nil) }
                if let failed { return .some(failed) }
                firstWaiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func takeLocked(_ index: Int) -> Take? {
        if index < recorded {
            let taken = slots[index]
            slots[index] = []
            return .intents(taken)
        }
        if let failed { return .notRecorded(failed) }
        return nil
    }

    private func takeReadyLocked() -> [(CheckedContinuation<Take, Never>, Take)] {
        var ready: [(CheckedContinuation<Take, Never>, Take)] = []
        waiting.removeAll { entry in
            guard let take = takeLocked(entry.index) else { return false }
            ready.append((entry.continuation, take))
            return true
        }
        return ready
    }

    /// Returns once `index` jobs have asked for their intents (`take` wakes it then).
    private func waitForJobs(reaching index: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if asked >= index { return true }
                recorderWaits = continuation
                recorderThreshold = index
                return false
            }
            if now { continuation.resume() }
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
