import Foundation

/// One active replica among several that share a state (`credops reconcile`): the leader
/// acts, the others wait to take over. Held by something the holder's death releases at once
/// (a PostgreSQL session's advisory lock, a file lock), never by a lease that must time out.
public protocol Leadership: Sendable {
    /// Tries once to become the leader; true when this process now leads.
    func tryLead() async throws -> Bool
    /// True while this process still leads. False once the connection that holds leadership
    /// is lost or does not answer in time: the caller must stop acting before another replica
    /// can take over.
    func isStillLeading() async -> Bool
    /// Lets go of leadership (a standby takes over at its next try).
    func release() async
}

/// A state store whose replicas can elect a leader through it.
public protocol LeaderElecting: Sendable {
    /// The leadership called `name` (one per reconcile deployment), checked within `timeout`.
    func leadership(name: String, checkTimeout: Duration) -> any Leadership
}
