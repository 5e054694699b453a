/// An error answer of the emulated API: `{"error": code, "error_description": text}` plus
/// `validation_errors` when fields failed validation.
struct APIError: Error, Sendable {
    /// One field that failed validation.
    struct FieldError: Sendable, Equatable {
        var field: String
        var message: String
    }

    var status: Int
    var code: String
    var message: String
    var validationErrors: [FieldError] = []
    var headers: [(String, String)] = []

    /// 400 `bad_request`: the documented failures of the credential calls.
    static func badRequest(_ message: String) -> APIError {
        APIError(status: 400, code: "bad_request", message: message)
    }

    /// 400 `invalid_parameter`: the token call got something else than a client-credentials form.
    static func invalidParameter(_ message: String) -> APIError {
        APIError(status: 400, code: "invalid_parameter", message: message)
    }

    /// 400 `validation_failed` with every field that failed.
    static func validationFailed(_ errors: [FieldError]) -> APIError {
        let summary = errors.map { "\($0.field): \($0.message)" }.joined(separator: "; ")
        return APIError(status: 400, code: "validation_failed", message: "Validation failed: \(summary)", validationErrors: errors)
    }

    /// 404 `not_found`.
    static func notFound(_ message: String) -> APIError {
        APIError(status: 404, code: "not_found", message: message)
    }

    /// 404 for an unknown project, with the documented wording.
    static func projectNotFound(_ project: String) -> APIError {
        notFound("Project(\(project)) was not found or user does not have privilege to access it!")
    }

    /// 400 for an unknown username, with the documented wording.
    static func credentialNotFound(_ username: String) -> APIError {
        badRequest("Credential (username: \(username)) was not found!")
    }

    /// 401 with one of `unauthorized_client`, `invalid_token`, `token_expired`.
    static func unauthorized(_ code: String, _ message: String) -> APIError {
        APIError(status: 401, code: code, message: message)
    }

    /// 500 `internal_error`.
    static func internalError(_ message: String) -> APIError {
        APIError(status: 500, code: "internal_error", message: message)
    }

    /// The body as JSON.
    var body: JSONValue {
        var object = JSONObject([(key: "error", value: .string(code)), (key: "error_description", value: .string(message))])
        if !validationErrors.isEmpty {
            let list = validationErrors.map { JSONValue.object(JSONObject([(key: "field", value: .string($0.field)), (key: "message", value: .string($0.message))])) }
            object.members.append((key: "validation_errors", value: .array(list)))
        }
        return .object(object)
    }

    /// The answer carrying this error.
    var answer: SandboxAnswer {
        SandboxAnswer(status: status, body: body, headers: headers)
    }
}
