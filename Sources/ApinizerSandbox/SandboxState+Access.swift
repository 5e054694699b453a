import Foundation

/// The access-list calls: `GET|PUT|DELETE .../credentials/{username}/access/`.
extension SandboxState {
    /// `GET`: the granted proxies and groups, in grant order.
    func listAccess(project: String, username: String) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        guard let credential = credential(username, through: project) else { throw .credentialNotFound(username) }
        return .ok(["success": true, "resultList": .array(credential.access.map(\.json))])
    }

    /// `PUT`: grant every entry of `{"credentialAccessList": [...]}`, or none.
    ///
    /// Checks, in order: project; credential; body; each entry's type (`API_PROXY` or
    /// `API_PROXY_GROUP`) and name (existing proxy or group: 400 `API Proxy (name:X) is not
    /// found or user does not have privilege to access it!`, `API Proxy Group (name:X) ...` for
    /// groups); no entry already granted (400 `Credential (username:U) has already access to
    /// API Proxy (name:X)!`). An entry repeated in one request counts once.
    mutating func grantAccess(project: String, username: String, body: Data?, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        guard var credential = credential(username, through: project) else { throw .credentialNotFound(username) }
        let requested = try Self.accessList(body)
        let granted = Set(credential.access)
        for access in requested {
            let exists = access.type == SandboxAccess.apiProxy ? apiProxies.contains(access.name) : apiProxyGroups.contains(access.name)
            guard exists else {
                throw .badRequest("\(access.kindName) (name:\(access.name)) is not found or user does not have privilege to access it!")
            }
            guard !granted.contains(access) else {
                throw .badRequest("Credential (username:\(username)) has already access to \(access.kindName) (name:\(access.name))!")
            }
        }
        credential.access.append(contentsOf: requested)
        put(credential)
        return deployed(undeploy: false, failingGateway: failingGateway)
    }

    /// `DELETE`: revoke every entry of the body; entries not granted are passed over silently.
    mutating func revokeAccess(project: String, username: String, body: Data?, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        guard var credential = credential(username, through: project) else { throw .credentialNotFound(username) }
        let revoked = Set(try Self.accessList(body))
        credential.access.removeAll { revoked.contains($0) }
        put(credential)
        return deployed(undeploy: true, failingGateway: failingGateway)
    }

    /// The entries of `{"credentialAccessList": [{"name", "type"}...]}`, without repeats.
    private static func accessList(_ body: Data?) throws(APIError) -> [SandboxAccess] {
        let object = try RequestBody.object(body)
        guard case .array(let items)? = object["credentialAccessList"] else {
            throw .badRequest("Malformed JSON request: 'credentialAccessList' must be an array")
        }
        var seen = Set<SandboxAccess>()
        var result: [SandboxAccess] = []
        for item in items {
            guard let entry = item.objectValue else {
                throw .badRequest("Malformed JSON request: each credentialAccessList entry must be an object")
            }
            let name = try RequestBody.string(entry, "name")
            let type = try RequestBody.string(entry, "type")
            guard let name, !name.isEmpty else { throw .badRequest("Credential access name can not be empty!") }
            guard let type, type == SandboxAccess.apiProxy || type == SandboxAccess.apiProxyGroup else {
                throw .badRequest("Credential access type (\(type ?? "null")) is not valid! Use API_PROXY or API_PROXY_GROUP.")
            }
            let access = SandboxAccess(name: name, type: type)
            if seen.insert(access).inserted { result.append(access) }
        }
        return result
    }
}
