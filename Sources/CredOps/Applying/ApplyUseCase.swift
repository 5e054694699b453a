import Foundation

/// Apply as one operation of the engine: lock every environment, plan against the locked
/// state, refuse a saved plan that went stale or a plan the guard rails stop, ask for
/// confirmation, apply, settle what an interrupted run left, and release the locks. The
/// caller (the CLI today, a reconcile loop next) supplies the words and the questions through
/// the hooks; it decides nothing of the order.
public struct ApplyUseCase: Sendable {
    /// What to apply, and how.
    public struct Request: Sendable {
        public var environments: [EnvironmentConfig]
        public var books: [EnvironmentName: SecretBook]
        public var options: PlanOptions
        public var run: RunInfo
        /// How long to wait for another run's lock on an environment.
        public var lockTimeout: Duration
        public var stop: StopSignal
        /// Every secret of the run (messages the engine keeps are redacted of them).
        public var runSecrets: RunSecrets
        /// A saved plan to apply: refused when the plan made now differs from it.
        public var saved: SavedPlan?

        public init(environments: [EnvironmentConfig], books: [EnvironmentName: SecretBook], options: PlanOptions, run: RunInfo,
                    lockTimeout: Duration, stop: StopSignal, runSecrets: RunSecrets, saved: SavedPlan? = nil) {
            self.environments = environments
            self.books = books
            self.options = options
            self.run = run
            self.lockTimeout = lockTimeout
            self.stop = stop
            self.runSecrets = runSecrets
            self.saved = saved
        }
    }

    /// How the operation ended. Every case but `applied` changed nothing on any server.
    public enum Outcome: Sendable {
        /// The saved plan no longer matches what would be done now (reasons, redacted).
        case stale(Plan, reasons: [String])
        /// A guard rail stopped at least one environment (see each plan's `refusals`).
        case refused(Plan)
        /// Confirmation was not given.
        case declined(Plan)
        /// Nothing to change; the report says so per environment (or why one could not be planned).
        case unchanged(Plan, ApplyReport)
        case applied(Plan, ApplyReport)

        public var plan: Plan {
            switch self {
            case .stale(let plan, _), .refused(let plan), .declined(let plan), .unchanged(let plan, _), .applied(let plan, _): plan
            }
        }

        /// The report, when the run got that far.
        public var report: ApplyReport? {
            switch self {
            case .unchanged(_, let report), .applied(_, let report): report
            default: nil
            }
        }
    }

    /// The caller's part: what to show, what to ask, what to arm before the first write.
    public struct Hooks: Sendable {
        /// An environment is locked by another run; waiting (the holder when known).
        public var lockWait: @Sendable (EnvironmentName, LockInfo?) -> Void
        /// The plan is made (and not stale): show it.
        public var planned: @Sendable (Plan) -> Void
        /// May these environments be changed? (The caller asks, or says yes for --auto-approve.)
        public var confirm: @Sendable ([EnvironmentPlan]) async -> Bool
        /// Called once, right before the first write (e.g. to arm Ctrl-C handling and a deadline).
        public var willApply: @Sendable () -> Void
        /// Progress of the apply.
        public var events: @Sendable (ApplyEvent) -> Void
        /// Words an environment's outcome for the state history.
        public var describe: @Sendable (EnvironmentReport) -> String

        public init(lockWait: @escaping @Sendable (EnvironmentName, LockInfo?) -> Void = { _, _ in },
                    planned: @escaping @Sendable (Plan) -> Void = { _ in },
                    confirm: @escaping @Sendable ([EnvironmentPlan]) async -> Bool,
                    willApply: @escaping @Sendable () -> Void = {},
                    events: @escaping @Sendable (ApplyEvent) -> Void = { _ in },
                    describe: @escaping @Sendable (EnvironmentReport) -> String) {
            self.lockWait = lockWait
            self.planned = planned
            self.confirm = confirm
            self.willApply = willApply
            self.events = events
            self.describe = describe
        }
    }

    public let workflow: Workflow
    public let schemas: [String: ResourceSchema]

    public init(workflow: Workflow, schemas: [String: ResourceSchema]) {
        self.workflow = workflow
        self.schemas = schemas
    }

    public func run(_ request: Request, hooks: Hooks) async -> Outcome {
        // Lock first, so that the plan is made against a state no other run is changing.
        let unavailable = await workflow.lock(request.environments, run: request.run, timeout: request.lockTimeout, stop: request.stop,
                                              onWait: hooks.lockWait)
        let (current, prepared) = await workflow.plan(environments: request.environments, books: request.books, options: request.options,
                                                      unavailable: unavailable, stop: request.stop, runID: request.run.runID,
                                                      runSecrets: request.runSecrets)
        let outcome = await decideAndApply(request, hooks: hooks, current: current, prepared: prepared)
        for env in prepared.values { env.close() }
        await workflow.unlock(request.environments)
        return outcome
    }

    private func decideAndApply(_ request: Request, hooks: Hooks, current: Plan,
                                prepared: [EnvironmentName: PreparedEnvironment]) async -> Outcome {
        if let saved = request.saved {
            let reasons = saved.staleness(current: current, files: workflow.inputs.files, redactor: request.runSecrets.redactor)
            if !reasons.isEmpty { return .stale(current, reasons: reasons) }
        }
        hooks.planned(current)
        if current.environments.contains(where: { !$0.refusals.isEmpty }) { return .refused(current) }
        let stop = request.stop
        let applier = Applier(store: workflow.store, run: request.run, shouldStop: { stop.isRequested }, events: hooks.events,
                              describe: hooks.describe)
        let toChange = current.environments.filter(\.hasChanges)
        if toChange.isEmpty {
            // Nothing to send, but what an interrupted run left is settled all the same.
            for env in prepared.values where !env.repairs.isEmpty { try? await applier.settle(env) }
            let report = ApplyReport(runID: request.run.runID, environments: current.environments.map { env in
                var report = EnvironmentReport(environmentName: env.environment.rawValue, problem: env.failure.map(EnvironmentProblem.notPlanned))
                report.conflicts = env.reportedConflicts
                return report
            })
            return .unchanged(current, report)
        }
        guard await hooks.confirm(toChange) else { return .declined(current) }
        hooks.willApply()
        return .applied(current, await applier.apply(current, prepared: prepared, schemas: schemas))
    }
}
