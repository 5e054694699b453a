import CredOps
import Foundation
import Logging
import ServiceLifecycle

/// What one cycle found and did, per environment.
struct CycleOutcome: Sendable {
    struct Environment: Sendable {
        var name: String
        /// Why it could not be planned or applied (or what failed), redacted; nil: it went well.
        var failure: String?
        /// Changes the plan held (drift from the manifests).
        var changes: Int
        /// Applied operations by kind and outcome (`create`/`applied`); empty when only planned.
        var operations: [(kind: String, outcome: String)]
        var applied: Bool
    }

    var environments: [Environment] = []
    /// Why the cycle could not start (inputs that did not load, a failing policy).
    var failure: String?
    var expiring: [ExpiringCredential] = []
    var stopped: String?

    var success: Bool { failure == nil && environments.allSatisfy { $0.failure == nil } }
    var drift: Int { environments.reduce(0) { $0 + $1.changes } }
}

/// The reconcile loop as a service: one replica leads and runs a cycle every `every` (and on
/// SIGHUP or a changed manifest), the others wait to take over. The leader checks that it
/// still leads every `leaderCheck`, also during a cycle, and stops the cycle's work (the
/// operations in flight finish, nothing new starts) the moment it does not. Graceful shutdown
/// (SIGTERM) does the same and then lets go of leadership.
actor Reconciler: Service {
    struct Settings: Sendable {
        var every: Duration
        var leaderCheck: Duration
        /// Run one cycle (as leader) and end.
        var once: Bool
    }

    let settings: Settings
    let leadership: any Leadership
    let logger: Logger
    let runCycle: @Sendable (StopSignal) async -> CycleOutcome
    let finished: @Sendable (CycleOutcome, Duration) async -> Void

    private(set) var leading = false
    /// Ready: the state answered the last leadership attempt (a standby is ready to take over).
    private(set) var ready = false
    private(set) var lastOutcome: CycleOutcome?
    private var shuttingDown = false
    private var currentStop: StopSignal?
    private var waiter: CheckedContinuation<String?, Never>?
    private var waiterID = 0
    private var pendingWake: String?

    init(settings: Settings, leadership: any Leadership, logger: Logger, runCycle: @escaping @Sendable (StopSignal) async -> CycleOutcome,
         finished: @escaping @Sendable (CycleOutcome, Duration) async -> Void) {
        self.settings = settings
        self.leadership = leadership
        self.logger = logger
        self.runCycle = runCycle
        self.finished = finished
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            // Cancelled (another service of the group failed): stop as for a shutdown.
            await withTaskCancellationHandler {
                await self.loop()
            } onCancel: {
                Task { await self.shutDown("the service group is stopping") }
            }
        } onGracefulShutdown: {
            Task { await self.shutDown("shutdown requested") }
        }
    }

    /// Runs a cycle as soon as possible (SIGHUP, a changed manifest).
    func wake(_ reason: String) {
        if let waiter {
            self.waiter = nil
            waiter.resume(returning: reason)
        } else {
            pendingWake = reason
        }
    }

    func shutDown(_ reason: String) {
        shuttingDown = true
        currentStop?.request(reason)
        wake(reason)
    }

    private func loop() async {
        var nextDue = ContinuousClock.now
        while !shuttingDown && !Task.isCancelled {
            if !leading {
                do {
                    leading = try await leadership.tryLead()
                    ready = true
                } catch {
                    ready = false
                    logger.error("cannot try to lead: \(error)")
                }
                ReconcileMetrics.leader(leading)
                guard leading else {
                    _ = await wait(settings.leaderCheck)
                    continue
                }
                logger.info("leading: this replica runs the cycles", metadata: ["every": "\(settings.every)"])
                nextDue = ContinuousClock.now
            }
            // Until the next cycle is due (or something wakes it), check leadership.
            var woken: String?
            while !shuttingDown && ContinuousClock.now < nextDue {
                woken = await wait(min(settings.leaderCheck, nextDue - ContinuousClock.now))
                if woken != nil { break }
                if !(await leadership.isStillLeading()) {
                    lostLeadership()
                    break
                }
            }
            guard leading && !shuttingDown else { continue }
            // Woken early, the wait's check was skipped: a cycle starts only while this replica leads.
            if !(await leadership.isStillLeading()) {
                lostLeadership()
                continue
            }
            if let woken { logger.info("cycle started early", metadata: ["reason": "\(woken)"]) }
            await cycle()
            nextDue = ContinuousClock.now + settings.every
            if settings.once { break }
        }
        if leading {
            await leadership.release()
            leading = false
            ReconcileMetrics.leader(false)
            logger.info("left leadership")
        }
    }

    /// One cycle, with leadership checked beside it.
    private func cycle() async {
        let stop = StopSignal()
        currentStop = stop
        let started = ContinuousClock.now
        let leadership = self.leadership
        let check = settings.leaderCheck
        let watch = Task { () -> Bool in
            while !Task.isCancelled {
                try? await Task.sleep(for: check)
                if Task.isCancelled { break }
                if !(await leadership.isStillLeading()) {
                    stop.request("this replica no longer leads")
                    return false
                }
            }
            return true
        }
        let runCycle = self.runCycle
        let outcome = await runCycle(stop)
        watch.cancel()
        let stillLeading = await watch.value
        currentStop = nil
        lastOutcome = outcome
        if !stillLeading { lostLeadership() }
        await finished(outcome, ContinuousClock.now - started)
    }

    private func lostLeadership() {
        leading = false
        ReconcileMetrics.leader(false)
        logger.warning("lost leadership (the state did not answer in time); stopped acting, waiting to lead again")
    }

    /// Sleeps up to `duration`; returns why it was woken early, or nil.
    private func wait(_ duration: Duration) async -> String? {
        if let pending = pendingWake {
            pendingWake = nil
            return pending
        }
        if shuttingDown { return "shutdown" }
        waiterID += 1
        let id = waiterID
        return await withCheckedContinuation { continuation in
            waiter = continuation
            Task {
                try? await Task.sleep(for: duration)
                self.timeOut(id)
            }
        }
    }

    private func timeOut(_ id: Int) {
        guard id == waiterID, let waiter else { return }
        self.waiter = nil
        waiter.resume(returning: nil)
    }
}
