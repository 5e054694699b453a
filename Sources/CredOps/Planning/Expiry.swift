import Foundation

/// A live credential that stops working, or whose generated secret is due for rotation, before
/// the end of a window (or already has): what `credops expiring` lists and plans warn about.
public struct ExpiringCredential: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// The server stops accepting it at `due` (Apinizer's `expireDate`).
        case expires
        /// Its generated secret reaches `rotateAfter` at `due`; the next apply replaces it.
        case rotationDue
    }

    public var environment: EnvironmentName
    public var project: ProjectName
    public var key: CredentialKey
    public var kind: Kind
    /// When it expires or is due, in milliseconds since 1970 (UTC).
    public var due: Int64
    /// Whole days from the plan's time to `due`: negative once past.
    public var daysLeft: Int
    /// For a rotation: the secret's age and the declared limit, in days.
    public var ageDays: Int?
    public var rotateAfterDays: Int?

    public init(environment: EnvironmentName, project: ProjectName, key: CredentialKey, kind: Kind, due: Int64, daysLeft: Int,
                ageDays: Int? = nil, rotateAfterDays: Int? = nil) {
        self.environment = environment
        self.project = project
        self.key = key
        self.kind = kind
        self.due = due
        self.daysLeft = daysLeft
        self.ageDays = ageDays
        self.rotateAfterDays = rotateAfterDays
    }

    /// True when `due` has passed.
    public var isPast: Bool { daysLeft < 0 }
}

extension Planner {
    /// The credentials of `input` (declared in the project, or managed there) that expire or are
    /// due for rotation within `window` seconds of the planner's time, or already are (in the
    /// order of `input.live`; the environment's plan sorts them, soonest first). An expiry is the provider's expiry field; a rotation is counted only for a
    /// generated secret credops made and delivered (whoever made another has its secret).
    public func expiring(_ input: ProjectInput, environment: EnvironmentName, within window: TimeInterval) -> [ExpiringCredential] {
        // Only what is needed: the credentials that rotate, and the declared keys where the
        // server reports expiry (a dictionary of every declared credential held 2.5 MB per 10,000).
        var rotating: [CredentialKey: DesiredCredential] = [:]
        for credential in input.desired.credentials where credential.rotateAfter != nil && rotating[credential.key] == nil {
            rotating[credential.key] = credential
        }
        guard schema.expiryField != nil || !rotating.isEmpty else { return [] }
        let declared = schema.expiryField == nil ? [] : Set(input.desired.credentials.map(\.key))
        let project = input.desired.project
        let horizon = now.addingTimeInterval(window)
        var found: [ExpiringCredential] = []
        for live in input.live where declared.contains(live.id) || rotating[live.id] != nil || input.managed[live.id] != nil {
            if let field = schema.expiryField, case .instant(let ms?)? = live[field] {
                let due = Date(timeIntervalSince1970: Double(ms) / 1000)
                if due <= horizon {
                    found.append(ExpiringCredential(environment: environment, project: project, key: live.id, kind: .expires, due: ms,
                                                    daysLeft: Self.days(from: now, to: due)))
                }
            }
            if let credential = rotating[live.id], let after = credential.rotateAfter,
               let (made, due) = rotation(credential, live: live, managed: input.managed[live.id]), due <= horizon {
                found.append(ExpiringCredential(environment: environment, project: project, key: live.id, kind: .rotationDue,
                                                due: Int64((due.timeIntervalSince1970 * 1000).rounded()), daysLeft: Self.days(from: now, to: due),
                                                ageDays: Int(now.timeIntervalSince(made) / 86_400), rotateAfterDays: max(1, after / 86_400)))
            }
        }
        return found
    }

    /// Whole days from `start` to `end`, rounded down (a credential due in 6 hours has 0 days
    /// left; one 6 hours past, -1).
    static func days(from start: Date, to end: Date) -> Int {
        Int((end.timeIntervalSince(start) / 86_400).rounded(.down))
    }
}
