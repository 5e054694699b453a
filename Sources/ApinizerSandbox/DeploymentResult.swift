/// The answer of every successful write: the manager stored the change and pushed it to each
/// gateway environment.
///
/// With a failing gateway (the `failingGateway` fault) the change is still stored, so the call
/// itself succeeded: top-level `success` stays true and the HTTP status 200, while
/// `deploymentResult.success` is false and that gateway's entry says why. This is how
/// apinizer-api.md describes a partial deployment ("stored but not live everywhere"), and it
/// lets a client tell "rejected" (4xx) from "stored, not deployed everywhere".
enum DeploymentResult {
    /// The message of a gateway entry that failed.
    static let gatewayFailureMessage = "Gateway connection refused"

    /// The deployment result for `gateways`.
    ///
    /// - Parameters:
    ///   - undeploy: true for deletes and revokes (`Undeployment ...` wording).
    ///   - failingGateway: the gateway whose entry fails, if it is one of `gateways`.
    static func json(gateways: [String], undeploy: Bool, failingGateway: String?) -> JSONValue {
        let verb = undeploy ? "Undeploy" : "Deploy"
        var allSucceeded = true
        var entries: [JSONValue] = []
        for gateway in gateways {
            let failed = gateway == failingGateway
            if failed { allSucceeded = false }
            entries.append(.object(JSONObject([
                (key: "environmentName", value: .string(gateway)),
                (key: "success", value: .bool(!failed)),
                (key: "message", value: .string(failed ? gatewayFailureMessage : "\(verb)ed successfully")),
            ])))
        }
        let message = allSucceeded ? "\(verb)ment completed successfully" : "\(verb)ment failed on some environments"
        return .object(JSONObject([
            (key: "success", value: true),
            (key: "deploymentResult", value: .object(JSONObject([
                (key: "success", value: .bool(allSucceeded)),
                (key: "message", value: .string(message)),
                (key: "environmentResults", value: .array(entries)),
            ]))),
        ]))
    }
}
