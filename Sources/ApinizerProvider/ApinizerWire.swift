import CredOps
import Foundation

/// JSON shapes of the Apinizer Management API and their mapping to `Resource`.
enum ApinizerWire {
    /// The body of a create or update: every field, the password included.
    static func credentialBody(_ resource: Resource, password: Secret) -> Data {
        var fields: [(String, JSONWriter.Value)] = [("username", .string(resource.id.rawValue))]
        for spec in ApinizerProvider.credentialSchema.fields {
            switch resource[spec.name] ?? spec.defaultValue {
            case .string(let s): fields.append((spec.name, .string(s)))
            case .bool(let b): fields.append((spec.name, .bool(b)))
            case .set(let items): fields.append((spec.name, .strings(items)))
            case .instant(let ms): fields.append((spec.name, ms.map { .string(Timestamp.format($0)) } ?? .null))
            }
        }
        // The only place the password leaves its `Secret`: the wire body.
        fields.append(("password", .string(password.reveal())))
        return JSONWriter.object(fields)
    }

    static func passwordBody(_ password: Secret) -> Data {
        JSONWriter.object([("password", .string(password.reveal()))])
    }

    static func accessBody(_ grants: [AccessGrant]) -> Data {
        JSONWriter.object([("credentialAccessList", .objects(grants.map { [("name", .string($0.name)), ("type", .string($0.type))] }))])
    }

    /// A credential as list answers carry it. Decoding is lenient per field: a field of an
    /// unexpected type reads as absent rather than failing the whole list.
    struct WireCredential: Decodable {
        var username: String
        var email: String?
        var fullName: String?
        var description: String?
        var roleNameList: [String]?
        var enabled: Bool?
        var ipList: [String]?
        var expireDate: String?

        enum CodingKeys: String, CodingKey {
            case username, email, fullName, description, roleNameList, enabled, ipList, expireDate
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            username = try c.decode(String.self, forKey: .username)
            email = try? c.decodeIfPresent(String.self, forKey: .email)
            fullName = try? c.decodeIfPresent(String.self, forKey: .fullName)
            description = try? c.decodeIfPresent(String.self, forKey: .description)
            roleNameList = try? c.decodeIfPresent([String].self, forKey: .roleNameList)
            enabled = try? c.decodeIfPresent(Bool.self, forKey: .enabled)
            ipList = try? c.decodeIfPresent([String].self, forKey: .ipList)
            expireDate = try? c.decodeIfPresent(String.self, forKey: .expireDate)
        }

        /// As a `Resource`: null description is "", null lists are empty, null enabled is true.
        var resource: Resource {
            let schema = ApinizerProvider.credentialSchema
            var fields: [String: FieldValue] = [
                "email": .string(email ?? ""),
                "fullName": .string(fullName ?? ""),
                "description": .string(description ?? ""),
                "roleNameList": .setOf(roleNameList ?? []),
                "enabled": .bool(enabled ?? true),
                "expireDate": .instant(nil),
            ]
            fields["ipList"] = schema.field(named: "ipList")!.canonical(.setOf(ipList ?? []))
            if let expireDate {
                // An unreadable date stays visible as text, so it shows as a difference.
                fields["expireDate"] = Timestamp.parse(expireDate).map { .instant($0) } ?? .string(expireDate)
            }
            return Resource(id: CredentialKey(username), fields: fields)
        }
    }

    struct ListAnswer<Item: Decodable>: Decodable {
        var success: Bool?
        var resultList: [Item]?
    }

    struct WireGrant: Decodable {
        var name: String
        var type: String
    }

    /// `{"error", "error_description", "validation_errors"}` of an error answer.
    struct ErrorBody {
        var code: String
        var description: String
        var validation: [(field: String, message: String)]
        var retryAfter: Double?
    }

    static func errorBody(_ data: Data) -> ErrorBody? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        let code = object["error"] as? String ?? ""
        let description = object["error_description"] as? String ?? object["message"] as? String ?? ""
        let validation = (object["validation_errors"] as? [[String: Any]] ?? []).map {
            (field: $0["field"] as? String ?? "", message: $0["message"] as? String ?? "")
        }
        guard !code.isEmpty || !description.isEmpty else { return nil }
        return ErrorBody(code: code, description: description, validation: validation,
                         retryAfter: (object["retry_after"] as? NSNumber)?.doubleValue)
    }

    /// A write's answer: `{"success", "deploymentResult": {"success", "environmentResults": [...]}}`.
    struct WriteAnswer: Decodable {
        struct Result: Decodable {
            struct Entry: Decodable {
                var environmentName: String?
                var success: Bool?
                var message: String?
            }

            var success: Bool?
            var environmentResults: [Entry]?
        }

        var success: Bool?
        var deploymentResult: Result?
    }

    /// The failed gateways of a write's `deploymentResult`, or nil when everything deployed.
    /// Returns `.some([])` when the answer says it failed without naming a gateway.
    static func failedGateways(_ data: Data) -> [(name: String, message: String)]? {
        // Every failure is a `"success": false` somewhere: an answer without the word has none,
        // and is not decoded (a write's answer is decoded for nothing else).
        guard data.range(of: Data("false".utf8)) != nil else { return nil }
        guard let answer = try? JSONDecoder().decode(WriteAnswer.self, from: data) else { return nil }
        let failed = (answer.deploymentResult?.environmentResults ?? []).filter { $0.success == false }
            .map { (name: $0.environmentName ?? "?", message: $0.message ?? "") }
        if !failed.isEmpty { return failed }
        if answer.deploymentResult?.success == false || answer.success == false { return [] }
        return nil
    }
}
