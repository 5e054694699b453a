/// One call of the emulated Management API, with its percent-decoded path parameters.
enum APIOperation: Sendable, Equatable {
    case issueToken
    case listProjects
    case listEnvironments(project: String)
    case listCredentials(project: String)
    case createCredential(project: String)
    case updateCredential(project: String)
    case changePassword(project: String, username: String)
    case deleteCredential(project: String, username: String)
    case listAccess(project: String, username: String)
    case grantAccess(project: String, username: String)
    case revokeAccess(project: String, username: String)

    /// True for the credential writes (the token call is not one).
    var isWrite: Bool {
        switch self {
        case .createCredential, .updateCredential, .changePassword, .deleteCredential, .grantAccess, .revokeAccess: true
        case .issueToken, .listProjects, .listEnvironments, .listCredentials, .listAccess: false
        }
    }
}

/// A test-only call under `/__sandbox/`.
enum AdminOperation: Sendable, Equatable {
    case dump
    case stats
    case resetStats
    case seed
    case reset
    case faults
    case setFaults
}
