import Foundation

/// The fields of a credential request body, read so that "absent", `null` and "wrong type" can
/// be told apart (an update must carry every field).
struct CredentialInput: Sendable {
    /// The keys present in the body, `null` ones included.
    var keys: Set<String> = []
    var username: String?
    var password: String?
    var email: String?
    var fullName: String?
    var description: String?
    var roleNameList: [String]?
    var enabled: Bool?
    var ipList: [String]?
    var expireDate: String?

    /// Reads a JSON object body.
    ///
    /// - Throws: `APIError` 400 `bad_request` for a missing body, malformed JSON, a body that is
    ///   not an object, or a field of the wrong type.
    static func parse(_ body: Data?) throws(APIError) -> CredentialInput {
        let object = try RequestBody.object(body)
        var input = CredentialInput()
        input.keys = Set(object.keys)
        input.username = try RequestBody.string(object, "username")
        input.password = try RequestBody.string(object, "password")
        input.email = try RequestBody.string(object, "email")
        input.fullName = try RequestBody.string(object, "fullName")
        input.description = try RequestBody.string(object, "description")
        input.roleNameList = try RequestBody.strings(object, "roleNameList")
        input.enabled = try RequestBody.bool(object, "enabled")
        input.ipList = try RequestBody.strings(object, "ipList")
        input.expireDate = try RequestBody.string(object, "expireDate")
        return input
    }

    /// Throws the documented `Credential <label> can not be empty!` when `value` is absent,
    /// `null` or blank.
    static func requireNonEmpty(_ value: String?, _ label: String) throws(APIError) {
        guard let value, !value.allSatisfy(\.isWhitespace) else {
            throw .badRequest("Credential \(label) can not be empty!")
        }
    }

    /// Format problems of email, ipList and expireDate (all of them), and the normalised expiry.
    ///
    /// - Parameter requiredKeys: keys that must be present and not `null` (an update's).
    func formatProblems(requiredKeys: [String] = []) -> (errors: [APIError.FieldError], expireDate: String?) {
        var errors: [APIError.FieldError] = []
        let present: [String: Bool] = ["roleNameList": roleNameList != nil, "enabled": enabled != nil, "ipList": ipList != nil]
        for key in requiredKeys where present[key] != true {
            errors.append(.init(field: key, message: "must not be null"))
        }
        if let email, !FieldRules.isEmail(email) {
            errors.append(.init(field: "email", message: "must be a well-formed email address"))
        }
        for entry in ipList ?? [] where !FieldRules.isIPOrCIDR(entry) {
            errors.append(.init(field: "ipList", message: "'\(entry)' is not a valid IP address or CIDR range"))
        }
        var normalized: String?
        if let expireDate {
            normalized = ISO8601Timestamp.normalize(expireDate)
            if normalized == nil {
                errors.append(.init(field: "expireDate", message: "must be an ISO 8601 UTC date-time such as 2024-12-31T23:59:59.000Z, or null"))
            }
        }
        return (errors, normalized)
    }
}
