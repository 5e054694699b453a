import CredOps
import Foundation
import Metrics
import Synchronization

/// What `credops reconcile` exports on `/metrics` (through swift-metrics; the command
/// bootstraps swift-prometheus). Request latency comes from the HTTP client itself
/// (`credops_request_duration_seconds{environment}`).
enum ReconcileMetrics {
    static func cycle(outcome: String, duration: Duration) {
        Counter(label: "credops_reconcile_cycles_total", dimensions: [("outcome", outcome)]).increment()
        Timer(label: "credops_reconcile_cycle_duration_seconds").recordNanoseconds(duration.nanoseconds)
    }

    static func leader(_ leading: Bool) {
        Gauge(label: "credops_reconcile_leader").record(leading ? 1 : 0)
    }

    /// The environment was planned (and, unless drift-only, applied) without an error now.
    static func succeeded(_ environment: String, at date: Date = Date()) {
        Gauge(label: "credops_reconcile_last_success_timestamp_seconds", dimensions: [("environment", environment)]).record(date.timeIntervalSince1970)
    }

    /// Changes the plan found (drift from the manifests), per environment.
    static func drift(_ environment: String, changes: Int) {
        Gauge(label: "credops_drift_changes", dimensions: [("environment", environment)]).record(changes)
    }

    static func operation(_ environment: String, kind: String, outcome: String) {
        Counter(label: "credops_operations_total", dimensions: [("environment", environment), ("kind", kind), ("outcome", outcome)]).increment()
    }

    /// The days-to-expiry series exported now, so that those of credentials that left the
    /// window (renewed, deleted) are removed rather than kept at their last value.
    private static let exported = Mutex<[[String]: Gauge]>([:])

    /// Exports `items` (one series each) and removes every other days-to-expiry series.
    static func keepExpiring(_ items: [ExpiringCredential]) {
        var current: [[String]: ExpiringCredential] = [:]
        for item in items { current[[item.environment.rawValue, item.project.rawValue, item.key.rawValue, item.kind.rawValue]] = item }
        exported.withLock { exported in
            for (key, gauge) in exported where current[key] == nil {
                gauge.destroy()
                exported[key] = nil
            }
            for (key, item) in current {
                let gauge = exported[key] ?? Gauge(label: "credops_credential_days_to_expiry",
                                                   dimensions: [("environment", key[0]), ("project", key[1]), ("credential", key[2]), ("kind", key[3])])
                gauge.record(item.daysLeft)
                exported[key] = gauge
            }
        }
    }
}
