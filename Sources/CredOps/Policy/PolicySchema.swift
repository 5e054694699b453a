import Foundation

extension JSONSchemaDocument {
    /// The JSON Schema of policy files (`kind: Policies`), for editors. The parser checks more
    /// (fields of the covered providers, a rule in every policy).
    static func policy(schemas: [String: ResourceSchema]) -> [String: Any] {
        let fields = Set(schemas.values.flatMap { $0.declarableFields.map(\.name) }).sorted()
        let patterns: [String: Any] = [
            "description": "Glob patterns (* and ?); ! in front excludes. Absent: all.",
            "oneOf": [["type": "string"], ["type": "array", "items": ["type": "string"]]],
        ]
        let duration: [String: Any] = ["type": "string", "pattern": "^[0-9]+[dhms]?$", "description": "A duration: 365d, 12h, 30m."]
        let policy: [String: Any] = [
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": [
                "name": ["type": "string", "description": "Shown with every failure."],
                "level": ["enum": ["error", "warn"], "description": "error (default) stops plan and apply; warn is shown."],
                "environments": patterns, "providers": patterns, "projects": patterns,
                "require": ["type": "array", "items": ["enum": fields], "description": "Fields every credential must declare with a value."],
                "maxLifetime": duration,
                "forbid": ["type": "object", "propertyNames": ["enum": fields],
                           "additionalProperties": ["type": "array", "items": ["type": "string"], "minItems": 1],
                           "description": "Values a field may not hold."] as [String: Any],
                "maxRotateAfter": duration,
                "prune": ["type": "array", "items": ["enum": PruneMode.allCases.map(\.rawValue)], "minItems": 1],
                "maxDeletes": ["type": "integer", "minimum": 0],
                "allowedHosts": patterns,
            ] as [String: Any],
        ]
        return [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://credops.dev/schema/policy.schema.json",
            "title": "credops policies",
            "type": "object", "additionalProperties": false, "required": ["apiVersion", "kind", "policies"],
            "properties": [
                "apiVersion": ["const": ManifestParser.apiVersion], "kind": ["const": PolicyParser.kind],
                "policies": ["type": "array", "items": policy],
            ] as [String: Any],
        ]
    }
}
