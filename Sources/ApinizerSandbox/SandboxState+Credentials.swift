import Foundation

/// The read-only calls and the credential calls, with validation in the documented order.
///
/// Every call first checks the project (404 `not_found` for an unknown one). A credential of
/// another project is "not found" unless addressed through `admin`.
extension SandboxState {
    /// `GET /apiops/projects/`.
    func listProjects() -> SandboxAnswer {
        var names = projects.names
        if !projects.contains(SandboxSeed.adminProject) { names.insert(SandboxSeed.adminProject, at: 0) }
        let list = names.map { name -> JSONValue in
            let description = name == SandboxSeed.adminProject ? "Global project: its credentials are visible in every project" : "Project \(name)"
            return .object(JSONObject([(key: "name", value: .string(name)), (key: "description", value: .string(description))]))
        }
        return .ok(.object(JSONObject([
            (key: "status", value: "SUCCESS"),
            (key: "resultList", value: .array(list)),
            (key: "resultCount", value: .int(list.count)),
        ])))
    }

    /// `GET /apiops/environments/{project}`: the gateways, the failing one (if any) as `UNREACHABLE`.
    func listEnvironments(project: String, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        let list = gateways.names.map { name -> JSONValue in
            let slug = String(name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
            return .object(JSONObject([
                (key: "name", value: .string(name)),
                (key: "description", value: .string("Gateway environment \(name)")),
                (key: "type", value: .string(name.lowercased().contains("prod") ? "PRODUCTION" : "TEST")),
                (key: "status", value: .string(name == failingGateway ? "UNREACHABLE" : "RUNNING")),
                (key: "accessUrl", value: .string("https://\(slug).gateway.sandbox.invalid")),
            ]))
        }
        return .ok(.object(JSONObject([
            (key: "success", value: true),
            (key: "resultList", value: .array(list)),
            (key: "resultCount", value: .int(list.count)),
        ])))
    }

    /// `GET .../credentials/`: the credentials of the project (of every project through
    /// `admin`), in creation order, password always `null`.
    func listCredentials(project: String) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        return .ok(["success": true, "resultList": .array(credentials(through: project).map(\.listJSON))])
    }

    /// `POST .../credentials/`: create.
    ///
    /// Checks, in order: project; body (400 `bad_request`); empty username, password, full
    /// name, email (400, documented messages); username unused in every project (400 `There is
    /// already a credential has this name!`); formats of email, ipList, expireDate (400
    /// `validation_failed`, all at once); roles (400 `Credential role (X) was not found!`).
    mutating func createCredential(project: String, body: Data?, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        let input = try CredentialInput.parse(body)
        try CredentialInput.requireNonEmpty(input.username, "username")
        try CredentialInput.requireNonEmpty(input.password, "password")
        try CredentialInput.requireNonEmpty(input.fullName, "full name")
        try CredentialInput.requireNonEmpty(input.email, "email")
        let username = input.username!
        guard credentials[username] == nil else { throw .badRequest("There is already a credential has this name!") }
        let (problems, expireDate) = input.formatProblems()
        guard problems.isEmpty else { throw .validationFailed(problems) }
        let roleNames = try checkedRoles(input.roleNameList ?? [])
        put(SandboxCredential(project: project, username: username, password: input.password, email: input.email!,
                              fullName: input.fullName!, description: input.description, roleNameList: roleNames,
                              enabled: input.enabled ?? true, ipList: input.ipList ?? [], expireDate: expireDate))
        return deployed(undeploy: false, failingGateway: failingGateway)
    }

    /// `PUT .../credentials/`: replace every field of the credential the body's username names.
    ///
    /// All fields are required, password included: `description` and `expireDate` may be
    /// `null` (or left out, which means `null`); `roleNameList`, `enabled` and `ipList` missing
    /// or `null` fail validation. Checks, in order: project; body; empty username; the
    /// credential exists in this project (400 `Credential (username: X) was not found!`); empty
    /// password, full name, email; missing fields and formats (400 `validation_failed`); roles.
    mutating func updateCredential(project: String, body: Data?, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        let input = try CredentialInput.parse(body)
        try CredentialInput.requireNonEmpty(input.username, "username")
        let username = input.username!
        guard var credential = credential(username, through: project) else { throw .credentialNotFound(username) }
        try CredentialInput.requireNonEmpty(input.password, "password")
        try CredentialInput.requireNonEmpty(input.fullName, "full name")
        try CredentialInput.requireNonEmpty(input.email, "email")
        let (problems, expireDate) = input.formatProblems(requiredKeys: ["roleNameList", "enabled", "ipList"])
        guard problems.isEmpty else { throw .validationFailed(problems) }
        credential.roleNameList = try checkedRoles(input.roleNameList ?? [])
        credential.password = input.password
        credential.email = input.email!
        credential.fullName = input.fullName!
        credential.description = input.description
        credential.enabled = input.enabled ?? true
        credential.ipList = input.ipList ?? []
        credential.expireDate = expireDate
        put(credential)
        return deployed(undeploy: false, failingGateway: failingGateway)
    }

    /// `PATCH .../credentials/{username}/`: body `{"password": "..."}`.
    mutating func changePassword(project: String, username: String, body: Data?, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        guard var credential = credential(username, through: project) else { throw .credentialNotFound(username) }
        let object = try RequestBody.object(body)
        let password = try RequestBody.string(object, "password")
        try CredentialInput.requireNonEmpty(password, "password")
        credential.password = password
        put(credential)
        return deployed(undeploy: false, failingGateway: failingGateway)
    }

    /// `DELETE .../credentials/{username}/`: the credential and its grants.
    mutating func deleteCredential(project: String, username: String, failingGateway: String?) throws(APIError) -> SandboxAnswer {
        guard projectExists(project) else { throw .projectNotFound(project) }
        guard credential(username, through: project) != nil else { throw .credentialNotFound(username) }
        credentials[username] = nil
        return deployed(undeploy: true, failingGateway: failingGateway)
    }

    /// The deployment result of a stored change, over this state's gateways.
    func deployed(undeploy: Bool, failingGateway: String?) -> SandboxAnswer {
        .ok(DeploymentResult.json(gateways: gateways.names, undeploy: undeploy, failingGateway: failingGateway), committed: true)
    }

    /// `names` without repeats; 400 `Credential role (X) was not found!` for the first unknown one.
    private func checkedRoles(_ names: [String]) throws(APIError) -> [String] {
        var seen = Set<String>()
        var result: [String] = []
        for name in names where seen.insert(name).inserted {
            guard roles.contains(name) else { throw .badRequest("Credential role (\(name)) was not found!") }
            result.append(name)
        }
        return result
    }
}
