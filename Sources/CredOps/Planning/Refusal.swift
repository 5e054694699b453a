/// A guard rail that stops apply in one environment. A value, not a sentence: the renderers
/// word it (and say which flag lifts it), the applier only checks that there is none.
public enum Refusal: Sendable, Hashable, Codable {
    /// Deletes planned in a protected environment without `--allow-delete`.
    case deletesInProtectedEnvironment(deletes: Int)
    /// More deletes than `--max-deletes` allows, without `--allow-mass-delete`.
    case moreDeletesThanLimit(deletes: Int, limit: Int)
    /// More than half of a project's live credentials (and more than two) would be deleted,
    /// without `--allow-mass-delete`.
    case massDelete(project: ProjectName, deletes: Int, live: Int)
    /// More deletes than a policy's `maxDeletes` allows (no flag lifts it; change the policy).
    case policyDeleteLimit(policy: String, deletes: Int, limit: Int)
}
