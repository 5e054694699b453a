import Foundation

extension JSONSchemaDocument {
    /// The JSON Schema of provider profiles (`kind: ProviderProfile`), for editors. The parser
    /// checks more (placeholders per namespace, names not taken); this is what an editor can.
    static func profile() -> [String: Any] {
        let pointer: [String: Any] = ["type": "string", "pattern": "^(/([^~]|~[01])*)*$", "description": "A JSON pointer: /data, /error/message, \"\" for the whole answer."]
        let path: [String: Any] = ["type": "string", "pattern": "^/(?!/)[^?#\\s\\\\]*$",
                                   "description": "A path on the environment's URL (never a host); placeholders {id} and {namespace} as whole segments."]
        let field: [String: Any] = [
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": [
                "name": ["type": "string", "pattern": "^[A-Za-z0-9_]+$"], "pointer": ["$ref": "#/definitions/pointer"],
                "type": ["enum": ParsedTypes.names], "required": ["type": "boolean"], "default": [:] as [String: Any],
                "minLength": ["type": "integer", "minimum": 0], "maxLength": ["type": "integer", "minimum": 1],
                "oneOf": ["type": "array", "items": ["type": "string"], "minItems": 1],
                "immutable": ["type": "boolean"], "readOnly": ["type": "boolean"], "expiry": ["type": "boolean"],
                "calls": [
                    "type": "object", "additionalProperties": false, "required": ["on", "off"],
                    "properties": ["method": ["enum": ["POST", "PUT", "PATCH"]], "on": ["type": "string"], "off": ["type": "string"]],
                ] as [String: Any],
            ],
        ]
        return [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://credops.dev/schema/profile.schema.json",
            "title": "credops provider profile (ProviderProfile)",
            "description": "How one REST API lays out its credentials. See README.md.",
            "type": "object", "additionalProperties": false,
            "required": ["apiVersion", "kind", "name", "paths", "identity", "key"],
            "properties": [
                "apiVersion": ["const": "credops/v1"], "kind": ["const": "ProviderProfile"],
                "name": ["type": "string", "pattern": "^[A-Za-z0-9_-]+$"], "description": ["type": "string"],
                "auth": ["type": "object", "additionalProperties": false, "required": ["allowed"], "properties": [
                    "allowed": ["type": "array", "minItems": 1, "items": ["enum": ProviderProfile.Auth.Kind.allCases.map(\.rawValue)]],
                    "tokenPath": ["$ref": "#/definitions/path"], "tokenBody": ["enum": ["form", "json"]],
                ]],
                "namespace": ["oneOf": [
                    ["enum": ["none", "pathSegment"]],
                    ["type": "object", "additionalProperties": false, "required": ["header"], "properties": ["header": ["type": "string"]]],
                    ["type": "object", "additionalProperties": false, "required": ["query"], "properties": ["query": ["type": "string"]]],
                    ["type": "object", "additionalProperties": false, "required": ["select"], "properties": ["select": [
                        "type": "object", "additionalProperties": false, "required": ["path", "bodyField", "cookie"],
                        "properties": ["path": ["$ref": "#/definitions/path"], "bodyField": ["type": "string"], "cookie": ["type": "string"]],
                    ]]],
                ]],
                "paths": ["type": "object", "additionalProperties": false, "required": ["collection", "item"],
                          "properties": ["collection": ["$ref": "#/definitions/path"], "item": ["$ref": "#/definitions/path"]]],
                "list": ["type": "object", "additionalProperties": false, "properties": [
                    "items": ["$ref": "#/definitions/pointer"],
                    "paging": ["oneOf": [
                        ["const": "none"],
                        ["type": "object", "additionalProperties": false, "required": ["pageNumber"], "properties": ["pageNumber": [
                            "type": "object", "additionalProperties": false,
                            "properties": ["parameter": ["type": "string"], "sizeParameter": ["type": "string"], "size": ["type": "integer", "minimum": 1]],
                        ]]],
                        ["type": "object", "additionalProperties": false, "required": ["cursor"], "properties": ["cursor": [
                            "type": "object", "additionalProperties": false, "required": ["next"],
                            "properties": ["parameter": ["type": "string"], "next": ["$ref": "#/definitions/pointer"]],
                        ]]],
                        ["type": "object", "additionalProperties": false, "required": ["nextLink"], "properties": ["nextLink": ["$ref": "#/definitions/pointer"]]],
                    ]],
                ]],
                "identity": ["type": "object", "additionalProperties": false, "required": ["id"],
                             "properties": ["id": ["$ref": "#/definitions/pointer"], "keyIsID": ["type": "boolean"]]],
                "update": ["enum": ["put", "patch"]],
                "key": ["type": "object", "additionalProperties": false, "required": ["name"], "properties": [
                    "name": ["type": "string"], "pointer": ["$ref": "#/definitions/pointer"],
                    "minLength": ["type": "integer", "minimum": 0], "maxLength": ["type": "integer", "minimum": 1],
                ]],
                "fields": ["type": "array", "items": ["$ref": "#/definitions/field"]],
                "secret": ["oneOf": [
                    ["const": "none"],
                    ["type": "object", "additionalProperties": false, "required": ["declared"], "properties": ["declared": [
                        "type": "object", "additionalProperties": false,
                        "properties": ["name": ["type": "string"], "pointer": ["$ref": "#/definitions/pointer"], "readable": ["type": "boolean"]],
                    ]]],
                    ["type": "object", "additionalProperties": false, "required": ["generated"], "properties": ["generated": [
                        "type": "object", "additionalProperties": false, "required": ["values", "secret"],
                        "properties": ["values": ["type": "object", "additionalProperties": ["$ref": "#/definitions/pointer"], "minProperties": 1],
                                       "secret": ["type": "array", "items": ["type": "string"], "minItems": 1]],
                    ]]],
                ]],
                "errors": ["type": "object", "additionalProperties": false, "properties": ["message": ["$ref": "#/definitions/pointer"]]],
                "rateLimit": ["type": "object", "additionalProperties": false, "properties": ["retryAfterHeader": ["type": "string"]]],
            ],
            "definitions": ["pointer": pointer, "path": path, "field": field],
        ]
    }

    enum ParsedTypes {
        static let names = ProfileParser.types.keys.sorted()
    }
}
